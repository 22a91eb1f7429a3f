"""Defaults are declared once, as the settings' field defaults; the objects built from settings
elsewhere take theirs from there, so a changed default cannot leave a stale copy behind."""

from __future__ import annotations

import inspect
from dataclasses import fields

from gateway.config import settings as settings_module
from gateway.config.settings import OPTIONS, Retry, ServerLimits, Settings, Timeouts, Tracking
from gateway.jobs.tracking import JobTracker, PollSchedule, TrackedJob, WatchLimits
from gateway.resources.executions import ExecutionFollower
from gateway.upstream.retry import (
    READ_ONLY,
    Backoff,
    RetryBudget,
    RetryPolicy,
    Settle,
    read_only_policy,
    submit_settle,
)


def test_the_settings_module_keeps_no_parallel_default_constants() -> None:
    assert [name for name in vars(settings_module) if name.startswith("DEFAULT_")] == []


def test_every_option_default_is_its_field_default() -> None:
    defaults = Settings()
    for option in OPTIONS:
        value: object = defaults
        for part in option.key.split("."):
            value = getattr(value, part)
        assert value == option.default, option.key


def test_retry_objects_default_to_the_retry_settings() -> None:
    retry = Retry()
    assert RetryPolicy().max_attempts == retry.max_attempts
    assert Backoff() == Backoff(retry.transient_base_s, retry.throttled_base_s, retry.backoff_cap_s)
    budget = RetryBudget()
    assert (budget.capacity, budget.retry_cost, budget.timeout_cost, budget.success_refund) == (
        retry.budget_capacity,
        retry.budget_retry_cost,
        retry.budget_timeout_cost,
        retry.budget_success_refund,
    )
    assert read_only_policy(retry) == READ_ONLY
    assert submit_settle(retry) == Settle()


def test_tracking_objects_default_to_the_tracking_settings() -> None:
    tracking = Tracking()
    schedule = PollSchedule()
    assert (schedule.initial_s, schedule.max_s) == (tracking.poll_initial_s, tracking.poll_max_s)
    assert WatchLimits() == WatchLimits(tracking.max_watchers, tracking.max_watchers_per_client)
    for follower in (JobTracker, TrackedJob, ExecutionFollower):
        default = inspect.signature(follower).parameters["unreachable_s"].default
        assert default == tracking.unreachable_s, follower


def test_derived_defaults_follow_what_they_derive_from() -> None:
    # The grace lets the slowest RPC under the default deadline finish on an aged connection.
    assert ServerLimits().max_connection_age_grace_s == Timeouts().rpc_deadline_s + 10.0


def test_the_class_attribute_is_the_declared_default() -> None:
    """What `Retry.max_attempts` (read by other modules) means: the field's default."""
    for cls in (Timeouts, ServerLimits, Retry, Tracking):
        for field in fields(cls):
            assert getattr(cls, field.name) == field.default
