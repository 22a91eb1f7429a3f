"""`gateway/errors.py` is the one home of the exception tree, and its docstring draws that tree.

The drawing is what a reader (or a client author) looks at to learn what can go wrong, so it must
not drift from the code: a class added without a line in the drawing, a line left behind by a
removed class, a wrong parent or a wrong gRPC code all fail here. And since the drawing is only
complete if every `GatewayError` is defined in `gateway.errors`, a subclass defined in another
gateway module fails too.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

import grpc
import pytest

import gateway
from gateway import errors
from gateway.errors import GatewayError, Reason, RetryClass

# One drawn line: the tree's prefix (4 characters a level), the class, its gRPC code (`*` where
# instances choose it) and a description.
_LINE = re.compile(
    r"^(?P<prefix>(?:[│ ]   )*(?:[├└]── )?)(?P<name>[A-Z]\w*) +(?P<code>[A-Z_]+|\*) "
)


@dataclass(frozen=True)
class Drawn:
    name: str
    parent: str | None
    code: str


def drawn_tree(docstring: str) -> list[Drawn]:
    """The tree drawn in the `::` block of `docstring`, in drawing order."""
    block = docstring.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.removeprefix("    ") for line in block.splitlines()]
    drawn: list[Drawn] = []
    ancestors: list[str] = []  # ancestors[d] is the latest class drawn at depth d
    for line in lines:
        match = _LINE.match(line)
        assert match is not None, f"not a tree line: {line!r}"
        depth = len(match["prefix"]) // 4
        assert depth <= len(ancestors), f"{match['name']} skips a level"
        del ancestors[depth:]
        parent = ancestors[-1] if ancestors else None
        drawn.append(Drawn(match["name"], parent, match["code"]))
        ancestors.append(match["name"])
    return drawn


def gateway_error_classes() -> list[type[GatewayError]]:
    """Every `GatewayError` subclass the gateway package defines (tests' own ones left out)."""
    for module in pkgutil.walk_packages(gateway.__path__, f"{gateway.__name__}."):
        if not module.name.endswith("__main__"):  # importing it would run the CLI
            importlib.import_module(module.name)
    found: list[type[GatewayError]] = []
    todo: list[type[GatewayError]] = [GatewayError]
    while todo:  # bounded: a finite class tree, each class visited once
        cls = todo.pop()
        if cls.__module__.split(".")[0] == gateway.__name__:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_gateway_error_is_defined_in_gateway_errors() -> None:
    elsewhere = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in gateway_error_classes()
        if cls.__module__ != errors.__name__
    }
    assert elsewhere == set()


def test_the_docstring_draws_the_class_tree() -> None:
    assert errors.__doc__ is not None
    drawn = {entry.name: entry.parent for entry in drawn_tree(errors.__doc__)}
    real = {
        cls.__name__: None if cls is GatewayError else cls.__bases__[0].__name__
        for cls in gateway_error_classes()
    }
    assert drawn == real


def test_the_drawn_grpc_codes_are_the_classes_codes() -> None:
    assert errors.__doc__ is not None
    for entry in drawn_tree(errors.__doc__):
        if entry.code != "*":
            assert getattr(errors, entry.name).status.name == entry.code, entry.name


def test_the_tree_parser_sees_a_missing_or_misplaced_class() -> None:
    """The parser the two tests above rely on reads depth and parents, not just names."""
    doc = "\n".join(
        [
            "x",
            "",
            "::",
            "",
            "    A            INTERNAL   a",
            "    ├── B        INTERNAL   b",
            "    │   └── C    *          c",
            "    └── D        NOT_FOUND  d",
            "",
            "end",
        ]
    )
    assert drawn_tree(doc) == [
        Drawn("A", None, "INTERNAL"),
        Drawn("B", "A", "INTERNAL"),
        Drawn("C", "B", "*"),
        Drawn("D", "A", "NOT_FOUND"),
    ]


def test_an_error_without_its_own_reason_is_an_internal_one() -> None:
    """A subclass that forgets its reason must not pose as a CI failure."""

    class Forgetful(GatewayError):
        pass

    error = Forgetful("a bug")
    assert (error.status, error.reason) == (grpc.StatusCode.INTERNAL, Reason.INTERNAL)


@pytest.mark.parametrize(
    ("error", "status", "reason", "retry"),
    [
        # Shutting down is neither overload nor a CI failure: watch again, at once.
        (
            errors.TrackerClosed(),
            grpc.StatusCode.UNAVAILABLE,
            Reason.SHUTTING_DOWN,
            RetryClass.TRANSIENT,
        ),
        # The poller's crash is the gateway's bug, not something CI said.
        (errors.TrackerFailed(), grpc.StatusCode.INTERNAL, Reason.INTERNAL, RetryClass.TERMINAL),
        (
            errors.JobNotFound("jb1"),
            grpc.StatusCode.NOT_FOUND,
            Reason.UPSTREAM_NOT_FOUND,
            RetryClass.TERMINAL,
        ),
        (
            errors.NoCredentialsError("none yet"),
            grpc.StatusCode.UNAVAILABLE,
            Reason.CREDENTIALS_UNAVAILABLE,
            RetryClass.TERMINAL,
        ),
        (
            # The gateway's own dependency, not CI: a reason of its own (UPSTREAM_* means CI).
            errors.SubmitStoreUnavailable(ConnectionError("redis://:pw@host")),
            grpc.StatusCode.UNAVAILABLE,
            Reason.SUBMIT_STORE_UNAVAILABLE,
            RetryClass.TRANSIENT,
        ),
    ],
)
def test_moved_errors_keep_their_meaning(
    error: GatewayError, status: grpc.StatusCode, reason: Reason, retry: RetryClass
) -> None:
    assert (error.status, error.reason, error.retry) == (status, reason, retry)


def test_submit_store_unavailable_never_shows_the_cause_text() -> None:
    """A Redis error's text may carry its URL, password included: only its class is shown."""
    error = errors.SubmitStoreUnavailable(ConnectionError("redis://:hunter2@redis:6379"))
    assert "hunter2" not in str(error)
    assert "ConnectionError" in str(error)


def test_errors_raised_before_ci_is_asked_report_no_upstream_attempt() -> None:
    """`attempts` says how many requests CI saw: none, for what the gateway refused itself."""
    for error in (
        errors.InvalidRequest([errors.FieldViolation("job_ids[0]", "not a job id")]),
        errors.RequestIdReused("rid-1"),
        errors.SubmitStoreUnavailable(ConnectionError("refused")),
        errors.Overloaded("RPCs in flight", 3),
    ):
        assert error.attempts == 0, type(error).__name__


def test_access_errors_report_no_upstream_attempt() -> None:
    for error in (
        errors.ClientNotAuthenticated("who are you"),
        errors.AccessDenied(Reason.BUCKET_NOT_ALLOWED, "not this bucket", {"bucket": "b-1"}),
        errors.ClientRateLimited(0.25),
    ):
        assert error.attempts == 0


@pytest.mark.parametrize(
    ("code", "http_status", "refuses"),
    [
        ("SecretidNotExist", 401, True),  # CI's host: a key that does not exist (or disabled)
        ("InvalidAccessKeyId", 403, True),  # COS's host: the same
        ("SignatureDoesNotMatch", 403, True),
        ("ExpiredToken", 403, True),
        ("AccessDenied", 401, True),  # CI's "no permission"; COS's expired or missing signature
        ("AccessDenied", 403, True),
        ("", 401, True),  # a refusal without a code CI documents
        ("SecretidNotExist", 200, False),  # an <Error> under a 2xx: CI accepted something
        ("ResourceAccessDenied", 400, False),  # CI cannot read the input, whatever our keys
        ("QueuePaused", 403, False),
        ("InvalidArgument", 400, False),
        ("InternalError", 500, False),
    ],
)
def test_which_answers_refuse_the_keys_a_request_was_signed_with(
    code: str, http_status: int, refuses: bool
) -> None:
    """Only these may be resent after a rotation: CI refused them before acting on them."""
    error = errors.UpstreamError(http_status=http_status, code=code, message="m")
    assert error.refuses_credentials is refuses
    assert error.credentials_replaced is False  # the client sets it, after asking the provider
