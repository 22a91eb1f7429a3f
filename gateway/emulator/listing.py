"""DescribeMediaJobs (`GET /jobs?...`): parse the query like CI, filter, order and page.

Parameters (notes §5.2), each bad value InvalidArgument 400:

* `tag` required (the SDK always sends it); any value is accepted and filters by it.
* `queueId` optional (documented as required, but the SDK omits it when unset: tolerant); when
  given it must be one of this bucket's queues, as on submit.
* `states`: comma list of `All` and the job states; empty means `All`.
* `orderByTime`: `Desc` (default) or `Asc`. Jobs are ordered by creation sequence, which agrees
  with CreationTime and breaks its one-second ties.
* `size`: 1..100, default 10.
* `nextToken`: empty = first page. Otherwise an opaque cursor this emulator issued (base64 of
  the last returned job's sequence number and the order it was issued for); anything else is
  InvalidArgument.
* `startCreationTime` / `endCreationTime`: `%Y-%m-%dT%H:%M:%S%z`, inclusive bounds.
* `inputObject`: exact match on `Input.Object`.
* `workflowId` / `inventoryTriggerJobId`: accepted; the emulator creates no workflow or batch
  jobs, so a non-empty value matches nothing.

Unknown parameters are ignored (they still count for the signature if signed).
`NextToken` is non-empty exactly when more jobs match; the last page carries an empty
`<NextToken></NextToken>` (UNCONFIRMED: CI's end-of-list signal is undocumented; an empty element
is the reading that both "absent" and "empty" parsers accept).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.emulator.errors import invalid_argument
from gateway.emulator.jobs import ALL_STATES, Job, JobState
from gateway.emulator.timefmt import parse_ci_time

DEFAULT_SIZE = 10
MAX_SIZE = 100
_CURSOR_PREFIX = "ci-emulator:v1:"


@dataclass(frozen=True)
class ListQuery:
    tag: str
    queue_id: str | None = None
    states: frozenset[JobState] = ALL_STATES
    ascending: bool = False
    size: int = DEFAULT_SIZE
    after_seq: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    input_object: str | None = None
    only_workflow_jobs: bool = False


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    tag = params.get("tag", "")
    if not tag:
        raise invalid_argument("tag is required")
    ascending = _order(params.get("orderByTime", ""))
    return ListQuery(
        tag=tag,
        queue_id=params.get("queueId") or None,
        states=_states(params.get("states", "")),
        ascending=ascending,
        size=_size(params.get("size", "")),
        after_seq=_decode_token(params.get("nextToken", ""), ascending),
        start_time=_time(params, "startCreationTime"),
        end_time=_time(params, "endCreationTime"),
        input_object=params.get("inputObject") or None,
        only_workflow_jobs=bool(params.get("workflowId") or params.get("inventoryTriggerJobId")),
    )


def page(jobs: Sequence[Job], query: ListQuery) -> tuple[list[Job], str]:
    """The jobs of one page, and the token for the next ("" on the last page)."""
    matching = sorted(
        (job for job in jobs if _matches(job, query)),
        key=lambda job: job.seq,
        reverse=not query.ascending,
    )
    if query.after_seq is not None:
        after = query.after_seq
        matching = [
            job for job in matching if (job.seq > after if query.ascending else job.seq < after)
        ]
    selected = matching[: query.size]
    more = len(matching) > query.size
    return selected, _encode_token(selected[-1].seq, query.ascending) if more else ""


def _matches(job: Job, query: ListQuery) -> bool:
    return (
        not query.only_workflow_jobs
        and job.spec.tag == query.tag
        and (query.queue_id is None or job.spec.queue_id == query.queue_id)
        and job.state in query.states
        and (query.start_time is None or int(job.created_at) >= query.start_time)
        and (query.end_time is None or int(job.created_at) <= query.end_time)
        and (query.input_object is None or job.spec.object_key == query.input_object)
    )


def _order(value: str) -> bool:
    if value in ("", "Desc"):
        return False
    if value == "Asc":
        return True
    raise invalid_argument("orderByTime must be Desc or Asc")


def _states(value: str) -> frozenset[JobState]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if any(name != "All" and name not in ALL_STATES for name in names):
        raise invalid_argument(f"states {value!r} names an unknown state")
    if not names or "All" in names:
        return ALL_STATES
    return frozenset(JobState(name) for name in names)


def _size(value: str) -> int:
    if value == "":
        return DEFAULT_SIZE
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_SIZE:
        raise invalid_argument(f"size must be an integer from 1 to {MAX_SIZE}")
    return int(value)


def _time(params: Mapping[str, str], name: str) -> float | None:
    value = params.get(name, "")
    if not value:
        return None
    try:
        return parse_ci_time(value)
    except ValueError as exc:
        raise invalid_argument(f"{name} must look like 2001-01-01T00:00:00+0800") from exc


def _encode_token(seq: int, ascending: bool) -> str:
    raw = f"{_CURSOR_PREFIX}{'asc' if ascending else 'desc'}:{seq}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str, ascending: bool) -> int | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise invalid_argument("nextToken is not a token this service issued") from exc
    order, _, seq = raw.removeprefix(_CURSOR_PREFIX).partition(":")
    expected_order = "asc" if ascending else "desc"
    valid = raw.startswith(_CURSOR_PREFIX) and order == expected_order and seq.isdigit()
    if not valid:
        raise invalid_argument("nextToken is not a token this service issued")
    return int(seq)
