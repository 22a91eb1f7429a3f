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
* `workflowId`: only the jobs that runs of that workflow started (`JobSpec.workflow`, notes
  §5.2 "jobs triggered by this workflow"); an id the bucket has no workflow of (or a deleted
  workflow's) is no error, it filters like any other value: CI documents no refusal for it.
  Without it, the listing includes workflow-started jobs like any other job of the tag and
  queue: UNCONFIRMED (the docs list `workflowId` as an optional filter and say nothing of a
  plain listing leaving them out); the tolerant reading, since a client must then cope with
  jobs it did not submit, and one that wants only a workflow's jobs has the filter.
* `inventoryTriggerJobId`: accepted; the emulator creates no batch jobs, so a non-empty value
  matches nothing.

Unknown parameters are ignored (they still count for the signature if signed).
`NextToken` is non-empty exactly when more jobs match; the last page carries an empty
`<NextToken></NextToken>` (UNCONFIRMED: CI's end-of-list signal is undocumented; an empty element
is the reading that both "absent" and "empty" parsers accept).

How a listing is served (`select`): from the bucket's indexes (`job_index.BucketJobs`), never by
walking every job. The candidates are the shortest of the tag's, the input object's, the
queue's and the workflow's job lists (each in creation order), or, when that is smaller, the
jobs in the asked states (sorted then). The walk starts at the cursor (bisection on `seq`),
runs in the asked order, applies the full filter to each job and stops at one match beyond
the page. Every candidate list holds every job that can match, and the same predicate decides,
so the answer is the full scan's (`scan_page`, kept as the reference; a property test holds the
two equal). `Page.examined` counts the jobs a listing looked at, for tests and the admin counters.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ci_emulator.errors import invalid_argument
from ci_emulator.job_index import BucketJobs
from ci_emulator.jobs import ALL_STATES, Job, JobState
from ci_emulator.timefmt import parse_ci_time

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
    workflow_id: str | None = None
    batch_only: bool = False
    """`inventoryTriggerJobId` given: the emulator runs no batch jobs, so nothing matches."""
    listed_until: float | None = None
    """Not a parameter: jobs created after this (emulator clock) are not listed yet, the
    injected listing lag (`faults.FaultPlan.listed_until`)."""


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
        workflow_id=params.get("workflowId") or None,
        batch_only=bool(params.get("inventoryTriggerJobId")),
    )


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_token: str
    """The cursor for the next page; "" on the last one."""
    examined: int
    """Jobs this listing looked at (the rest of the bucket it never touched)."""


def select(index: BucketJobs, query: ListQuery) -> Page:
    """One page of `query` over one bucket's indexed jobs; see the module docstring."""
    if query.batch_only:
        return Page([], "", 0)
    lists = [index.by_tag.get(query.tag, [])]
    if query.workflow_id is not None:
        lists.append(index.by_workflow.get(query.workflow_id, []))
    if query.input_object is not None:
        lists.append(index.by_object.get(query.input_object, []))
    if query.queue_id is not None:
        lists.append(index.by_queue.get(query.queue_id, []))
    shortest = min(lists, key=len)
    if query.states != ALL_STATES:
        in_states = [index.by_state[state] for state in query.states]
        touched = sum(len(jobs) for jobs in in_states)
        if touched < len(shortest):
            after = query.after_seq
            candidates = sorted(
                (
                    job
                    for jobs in in_states
                    for job in jobs.values()
                    if after is None or (job.seq > after if query.ascending else job.seq < after)
                ),
                key=_seq,
                reverse=not query.ascending,
            )
            jobs, token, _ = _collect(candidates, query)
            return Page(jobs, token, touched)
    return Page(*_collect(_walk(shortest, query), query))


def _seq(job: Job) -> int:
    return job.seq


def _walk(jobs: Sequence[Job], query: ListQuery) -> Iterator[Job]:
    """`jobs` (in seq order) beyond the cursor, in the asked order, without copying them."""
    after = query.after_seq
    if query.ascending:
        start = 0 if after is None else bisect.bisect_right(jobs, after, key=_seq)
        for position in range(start, len(jobs)):
            yield jobs[position]
    else:
        end = len(jobs) if after is None else bisect.bisect_left(jobs, after, key=_seq)
        for position in range(end - 1, -1, -1):
            yield jobs[position]


def _collect(candidates: Iterable[Job], query: ListQuery) -> tuple[list[Job], str, int]:
    """The first `size` matches, the token (one more match exists) and the jobs examined."""
    selected: list[Job] = []
    examined = 0
    for job in candidates:
        examined += 1
        if _matches(job, query):
            if len(selected) == query.size:
                return selected, _encode_token(selected[-1].seq, query.ascending), examined
            selected.append(job)
    return selected, "", examined


def scan_page(jobs: Sequence[Job], query: ListQuery) -> tuple[list[Job], str]:
    """The reference answer: filter, sort and cut every job given. `select` must equal it."""
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
        not query.batch_only
        and job.spec.tag == query.tag
        and (query.queue_id is None or job.spec.queue_id == query.queue_id)
        and job.state in query.states
        and (query.start_time is None or int(job.created_at) >= query.start_time)
        and (query.end_time is None or int(job.created_at) <= query.end_time)
        and (query.input_object is None or job.spec.object_key == query.input_object)
        and (query.workflow_id is None or _workflow_id(job) == query.workflow_id)
        and (query.listed_until is None or job.created_at <= query.listed_until)
    )


def _workflow_id(job: Job) -> str | None:
    return None if job.spec.workflow is None else job.spec.workflow.workflow_id


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
