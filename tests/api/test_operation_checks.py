"""`validation._operation` (one job's `Operation`) against the same rules written plainly, each
field read whether set or not: same violations, same order, for any operation of any kind
(hypothesis: hostile fields at any depth, any tag).

`_operation` reads the operation's set fields once and skips the checks of unset ones, and
hands what it read to `_output_only` and `kind_rules.check_kind` (session 14, to cut its
instructions per call); this keeps those shortcuts to the rules.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import kinds
from gateway._proto import media_pb2
from gateway.api import kind_rules, validation
from gateway.api.validation import MAX_USER_DATA, OUTPUT_ONLY
from gateway.errors import FieldViolation
from tests.api.hostile_requests import hostile

PATH = "request.operation"
TAGS = st.sampled_from([*kinds.KINDS, "", "NotAKind"])


def reference(tag: str, operation: media_pb2.Operation) -> list[FieldViolation]:
    errors = validation._Violations()
    if len(operation.user_data) > MAX_USER_DATA:
        errors.add(f"{PATH}.user_data", f"longer than {MAX_USER_DATA} characters")
    elif not (operation.user_data.isascii() and operation.user_data.isprintable()):
        errors.add(f"{PATH}.user_data", "must be printable ASCII")
    if not 0 <= operation.job_level <= 2:
        errors.add(f"{PATH}.job_level", "must be 0, 1 or 2")
    for dotted in OUTPUT_ONLY:
        *parents, leaf = dotted.split(".")
        holder = operation
        for name in parents:
            holder = getattr(holder, name)
        if any(field.name == leaf for field, _ in holder.ListFields()):
            errors.add(f"{PATH}.{dotted}", "is output only")
    kind_rules.check_kind(tag, operation, lambda where, why: errors.add(f"{PATH}.{where}", why))
    return errors.items


def checked(tag: str, operation: media_pb2.Operation) -> list[FieldViolation]:
    errors = validation._Violations()
    validation._operation(tag, operation, PATH, errors)
    return errors.items


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tag=TAGS, operation=hostile(media_pb2.Operation))
def test_an_operation_gets_what_the_plain_rules_give(
    tag: str, operation: media_pb2.Operation
) -> None:
    assert checked(tag, operation) == reference(tag, operation)


@settings(max_examples=100, deadline=None)
@given(
    tag=TAGS,
    user_data=st.text(max_size=MAX_USER_DATA + 2) | st.just("x" * (MAX_USER_DATA + 1)),
    job_level=st.integers(-3, 5),
    template_id=st.sampled_from(["", "t1"]),
)
def test_the_scalars_an_operation_may_leave_unset_are_judged_alike(
    tag: str, user_data: str, job_level: int, template_id: str
) -> None:
    operation = media_pb2.Operation(
        user_data=user_data, job_level=job_level, template_id=template_id
    )
    assert checked(tag, operation) == reference(tag, operation)


def test_the_reference_refuses_a_known_bad_operation() -> None:
    """The reference judged on a known case, so the comparisons above compare rules."""
    operation = media_pb2.Operation(user_data="\x00", job_level=3, template_name="t")
    paths = [violation.field for violation in reference("Transcode", operation)]
    assert paths == [
        f"{PATH}.user_data",
        f"{PATH}.job_level",
        f"{PATH}.template_name",
        f"{PATH}.template_id",
        f"{PATH}.output.region",
        f"{PATH}.output.bucket",
        f"{PATH}.output.object",
    ]
    assert paths == [violation.field for violation in checked("Transcode", operation)]
