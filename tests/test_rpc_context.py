"""`gateway.rpc_context`: the per-RPC scope that code inside a call writes to and the interceptor
reads, the request id it is keyed by, and what happens outside any RPC."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway import rpc_context
from gateway.rpc_context import REQUEST_ID_METADATA, RpcScope

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def test_outside_any_rpc_there_is_no_scope_and_nothing_to_note() -> None:
    assert rpc_context.current() is None
    rpc_context.note_answer(reason="INTERNAL", ci_request_id="ci-1")  # nobody to tell: no error
    assert rpc_context.trailing_metadata() == ()


def test_enter_and_leave_nest_and_restore() -> None:
    outer, inner = RpcScope("/s/Outer", "outer-id"), RpcScope("/s/Inner", "inner-id")
    outer_token = rpc_context.enter(outer)
    try:
        assert rpc_context.current() is outer
        inner_token = rpc_context.enter(inner)
        assert rpc_context.current() is inner
        rpc_context.leave(inner_token)
        assert rpc_context.current() is outer
    finally:
        rpc_context.leave(outer_token)
    assert rpc_context.current() is None


def test_note_answer_records_on_the_current_scope_and_keeps_what_it_is_not_given() -> None:
    scope = RpcScope("/s/M", "rid")
    token = rpc_context.enter(scope)
    try:
        rpc_context.note_answer(ci_request_id="ci-1")
        assert (scope.reason, scope.ci_request_id) == ("", "ci-1")
        rpc_context.note_answer(reason="UPSTREAM_NOT_FOUND")  # an error without CI's id
        assert (scope.reason, scope.ci_request_id) == ("UPSTREAM_NOT_FOUND", "ci-1")
        assert rpc_context.trailing_metadata() == ((REQUEST_ID_METADATA, "rid"),)
    finally:
        rpc_context.leave(token)


async def test_tasks_started_inside_a_call_share_its_scope() -> None:
    """A task copies the context, and with it the same mutable scope: what it counts, the
    call's access log sees."""
    scope = RpcScope("/s/M", "rid")
    token = rpc_context.enter(scope)
    try:

        async def attempt() -> None:
            current = rpc_context.current()
            assert current is scope
            current.attempts += 1

        await asyncio.gather(attempt(), asyncio.create_task(attempt()))
    finally:
        rpc_context.leave(token)
    assert scope.attempts == 2

    async def seen() -> RpcScope | None:
        return rpc_context.current()

    assert await asyncio.create_task(seen()) is None  # started after the call: no scope


@pytest.mark.parametrize("given", ["order-42", "a.b_c~d:e/f+g=h-1", "x" * 128])
def test_a_sane_request_id_is_kept(given: str) -> None:
    assert rpc_context.request_id_from(given) == given


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 129, "<script>", b"bytes-id"])
def test_anything_else_is_replaced_by_a_generated_id(given: str | bytes | None) -> None:
    generated = rpc_context.request_id_from(given)
    assert GENERATED.fullmatch(generated)
    assert generated != rpc_context.request_id_from(given)
