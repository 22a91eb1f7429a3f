"""DescribeMediaQueues (`GET /queue`) and UpdateMediaQueue (`PUT /queue/<id>`): parse, render.

Query of `GET /queue` (notes §8.1), each bad value InvalidArgument 400:

* `queueIds`: comma list, at most 10; ids this bucket does not have are answered in
  `<NonExistPIDs><QueueID>…</QueueID></NonExistPIDs>` (200, like describe's NonExistJobIds).
* `state`: `Active`, `Paused`, or `All`/empty (the Python SDK sends `All`, which the docs do not
  list: tolerant reading).
* `category`: `CateAll`, `Transcoding`, `SpeedTranscoding`; empty means `Transcoding` (the
  documented default). The emulator's queues are all `Transcoding`.
* `pageNumber` / `pageSize`: positive integers, default 1 / 10; empty means the default (the SDK
  sends both, empty). CI documents no maximum page size (UNCONFIRMED): none is imposed.

The answer always carries `TotalCount`, `PageNumber` and `PageSize` (documented as present "when
paging params given"; the SDK always gives them, so always is the reading every client accepts).

Body of `PUT /queue/<id>` (notes §8.2): `Name` required, at most 128 bytes; `State` required,
`Active` | `Paused`; `QueueID` accepted (the old doc and Go send it) and must then name the same
queue as the path, since an answer could not say which one it changed. `NotifyConfig` is
optional (the newer doc; the old one required it): absent keeps the queue's current one,
present replaces it whole, each child optional with the defaults of `queues.NotifyConfig`:
`State` On | Off, `Type` Url | TDMQ | Kafka (with `KafkaConfig` `Region`, `InstanceId`, `Topic`,
each required), `Event` a comma list of TaskFinish / WorkflowFinish / TransCodingFinish
(legacy) / WorkflowStart (in CI's DescribeMediaWorkflows sample), `ResultFormat` JSON | XML,
`MqMode` Topic | Queue, `MqRegion` sh | bj | gz | cd | hk, `MqName` text. `On` needs a `Url`
for type Url, `MqRegion` and `MqName` for TDMQ: a switched-on callback with nowhere to go is
refused rather than silently dropped.
A `Url` without a scheme (the Go SDK's test sends `test.com`) is kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lxml import etree

from ci_emulator.errors import invalid_argument
from ci_emulator.query import positive
from ci_emulator.queues import MediaQueue, NotifyConfig, QueueState
from ci_emulator.submit import KAFKA_FIELDS, MQ_MODES, MQ_REGIONS, kafka_config
from ci_emulator.timefmt import format_ci_time
from ci_emulator.xmlbuild import Fields
from ci_emulator.xmlread import child, text_of

MAX_QUEUE_IDS = 10
MAX_NAME_BYTES = 128
DEFAULT_PAGE_SIZE = 10
CATEGORIES: Final = frozenset({"CateAll", "Transcoding", "SpeedTranscoding"})
NOTIFY_STATES: Final = frozenset({"On", "Off"})
NOTIFY_TYPES: Final = frozenset({"Url", "TDMQ", "Kafka"})
NOTIFY_EVENTS: Final = frozenset(
    # WorkflowStart: in CI's own DescribeMediaWorkflows sample (`TaskFinish,WorkflowFinish,
    # WorkflowStart`), so CI takes it back; the emulator sends no callback for it.
    {"TaskFinish", "WorkflowFinish", "TransCodingFinish", "WorkflowStart"}
)
RESULT_FORMATS: Final = frozenset({"JSON", "XML"})
QUEUE_STATES: Final = frozenset(state.value for state in QueueState)


@dataclass(frozen=True)
class QueueQuery:
    queue_ids: tuple[str, ...] = ()
    state: QueueState | None = None
    category: str = "Transcoding"
    page_number: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class QueueUpdate:
    name: str
    state: QueueState
    notify: NotifyConfig | None
    queue_id: str | None


def parse_queue_query(params: Mapping[str, str]) -> QueueQuery:
    ids = tuple(
        dict.fromkeys(i.strip() for i in params.get("queueIds", "").split(",") if i.strip())
    )
    if len(ids) > MAX_QUEUE_IDS:
        raise invalid_argument(f"at most {MAX_QUEUE_IDS} queueIds may be given")
    state_text = params.get("state", "")
    if state_text not in {"", "All", *QUEUE_STATES}:
        raise invalid_argument("state must be Active, Paused or All")
    category = params.get("category", "") or "Transcoding"
    if category not in CATEGORIES:
        raise invalid_argument(f"category must be one of {', '.join(sorted(CATEGORIES))}")
    return QueueQuery(
        queue_ids=ids,
        state=QueueState(state_text) if state_text in QUEUE_STATES else None,
        category=category,
        page_number=positive(params, "pageNumber", 1),
        page_size=positive(params, "pageSize", DEFAULT_PAGE_SIZE),
    )


def select_queues(
    queues: list[MediaQueue], query: QueueQuery
) -> tuple[list[MediaQueue], int, list[str]]:
    """(this page's queues, the total that matched, requested ids that do not exist)."""
    by_id = {queue.queue_id: queue for queue in queues}
    missing = [queue_id for queue_id in query.queue_ids if queue_id not in by_id]
    candidates = [by_id[i] for i in query.queue_ids if i in by_id] if query.queue_ids else queues
    matching = [
        queue
        for queue in candidates
        if (query.state is None or queue.state is query.state)
        and (query.category == "CateAll" or queue.category == query.category)
    ]
    start = (query.page_number - 1) * query.page_size
    return matching[start : start + query.page_size], len(matching), missing


def parse_queue_update(request: etree._Element) -> QueueUpdate:
    name = text_of(request, "Name", strip=False)
    if name is None:
        raise invalid_argument("Name is required")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise invalid_argument(f"Name is longer than {MAX_NAME_BYTES} bytes")
    state = text_of(request, "State")
    if state is None or state not in QUEUE_STATES:
        raise invalid_argument("State is required and must be Active or Paused")
    notify_node = child(request, "NotifyConfig")
    return QueueUpdate(
        name=name,
        state=QueueState(state),
        notify=None if notify_node is None else parse_notify_config(notify_node),
        queue_id=_queue_id(request),
    )


def queue_fields(queue: MediaQueue) -> Fields:
    """A `QueueList` / `Queue` entry, in the order of the doc's sample."""
    notify = queue.notify
    return [
        ("QueueId", queue.queue_id),
        ("Name", queue.name),
        ("State", str(queue.state)),
        (
            "NotifyConfig",
            [
                ("Url", notify.url or None),
                ("Event", notify.event),
                ("Type", notify.type),
                ("State", notify.state),
                ("ResultFormat", notify.result_format),
                ("MqMode", notify.mq_mode or None),
                ("MqName", notify.mq_name or None),
                ("MqRegion", notify.mq_region or None),
                *([("KafkaConfig", _fields(notify.kafka))] if notify.kafka else []),
            ],
        ),
        ("MaxSize", str(queue.max_size)),
        ("MaxConcurrent", str(queue.max_concurrent)),
        ("UpdateTime", format_ci_time(queue.updated_at or queue.created_at)),
        ("CreateTime", format_ci_time(queue.created_at)),
        ("Category", queue.category),
    ]


def _queue_id(request: etree._Element) -> str | None:
    # Old docs and Go spell it QueueID; current samples QueueId. Accept either, not both.
    ids = [text_of(request, name) for name in ("QueueID", "QueueId")]
    given = [value for value in ids if value]
    if len(given) > 1:
        raise invalid_argument("give the queue id once, as QueueID or QueueId")
    return given[0] if given else None


def parse_notify_config(node: etree._Element, *, default_state: str = "Off") -> NotifyConfig:
    """A `NotifyConfig` node, a queue's or a workflow Start node's (the same node, notes §8.1,
    catalogue A.13), checked as described above; `State` absent is `default_state`."""

    def pick(name: str, allowed: frozenset[str], default: str) -> str:
        value = text_of(node, name)
        if value is None:
            return default
        if value not in allowed:
            raise invalid_argument(
                f"NotifyConfig.{name} must be one of {', '.join(sorted(allowed))}"
            )
        return value

    event = text_of(node, "Event") or "TaskFinish"
    events = [name.strip() for name in event.split(",") if name.strip()]
    if not events or any(name not in NOTIFY_EVENTS for name in events):
        raise invalid_argument("NotifyConfig.Event names an unknown event")
    config = NotifyConfig(
        url=text_of(node, "Url") or "",
        state=pick("State", NOTIFY_STATES, default_state),
        type=pick("Type", NOTIFY_TYPES, "Url"),
        event=",".join(events),
        result_format=pick("ResultFormat", RESULT_FORMATS, "XML"),
        mq_mode=pick("MqMode", MQ_MODES, ""),
        mq_name=text_of(node, "MqName") or "",
        mq_region=pick("MqRegion", MQ_REGIONS, ""),
        kafka=kafka_config(node, "KafkaConfig"),
    )
    if config.state == "On":
        if config.type == "Url" and not config.url:
            raise invalid_argument("NotifyConfig.Url is required when the callback is On")
        if config.type == "TDMQ" and not (config.mq_region and config.mq_name):
            raise invalid_argument("NotifyConfig needs MqRegion and MqName for TDMQ")
        if config.type == "Kafka" and len(config.kafka) != len(KAFKA_FIELDS):
            raise invalid_argument("NotifyConfig needs KafkaConfig Region, InstanceId, Topic")
    return config


def _fields(pairs: tuple[tuple[str, str], ...]) -> Fields:
    return [(name, value) for name, value in pairs]
