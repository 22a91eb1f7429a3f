"""Checks on RPC input, before anything is sent to CI.

Each check names the field by its path in the RPC request (`request.operation.user_data`), so a
caller in any language sees exactly what to fix (`google.rpc.BadRequest` field violations). The
rules are CI's documented constraints; checking them here saves a signed round trip and gives a
clearer message than CI's `InvalidArgument`. All violations are reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from datetime import datetime
from urllib.parse import urlsplit

from google.protobuf import duration_pb2
from google.protobuf.message import Message

from gateway import kinds
from gateway._proto import media_pb2, service_pb2
from gateway.access.places import named_places
from gateway.api import kind_rules
from gateway.api.kind_rules import has_dot_segment
from gateway.api.tree_checks import check_tree
from gateway.config.settings import Settings
from gateway.errors import FieldViolation, InvalidRequest
from gateway.jobs.describe import MAX_JOB_IDS_PER_RPC
from gateway.jobs.multi_submit import MAX_OPERATIONS
from gateway.jobs.submit import MARKER_LEN, REQUEST_ID, new_request_id
from gateway.model import Target, is_valid_bucket, is_valid_region, known_target
from gateway.status import MAX_FIELD_CHARS
from gateway.upstream import xml_codec

# Operation fields only CI's answers carry (paths below `Operation`).
OUTPUT_ONLY = ("media_info", "media_result", "template_name", "digital_watermark.state")
UNKNOWN_TAG = 'not a CI job kind (tags are case-sensitive); the README\'s "Job kinds" lists them'
CALL_BACK_FORMATS = frozenset({"XML", "JSON"})
# Kafka is in the Go and Java SDKs (with CallBackKafkaConfig), not in CI's pages (notes §1):
# UNCONFIRMED, so the tolerant reading lets it through, as a queue's NotifyConfig Type Kafka.
CALL_BACK_TYPES = frozenset({"Url", "TDMQ", "Kafka"})
# The types whose callback goes to a message queue rather than to `CallBack`'s URL.
QUEUE_CALL_BACK_TYPES = CALL_BACK_TYPES - {"Url"}
MQ_REGIONS = frozenset({"sh", "bj", "gz", "cd", "hk"})
MQ_MODES = frozenset({"Topic", "Queue"})
# CI allows 1024 characters; the gateway keeps MARKER_LEN of them for its exactly-once marker.
MAX_USER_DATA = 1024 - MARKER_LEN
MAX_OBJECT_KEY_BYTES = 850  # COS's limit on an object key
# Dot segments (`a/../b`) and empty ones (`a//b`) are refused in every object key: why, at
# `kind_rules.DOT_SEGMENTS`, beside the test (`has_dot_segment`) both modules apply.
MAX_LIST_SIZE = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NON_CHARACTER = re.compile("[\ufffe\uffff]")
# CI job ids are `j` + 32 hex in every sample; accept any short token without separators so a
# future id format still works, but never a comma (it would split into several ids) or a slash.
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUEUE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CREATION_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# CI's paging token is opaque, but it is CI's own short ASCII text: anything else (control
# characters, kilobytes of it) could never be one, and CI would answer it with a bare 400 that
# names no field.
MAX_PAGE_TOKEN_CHARS = 1024
_PAGE_TOKEN = re.compile(r"^[\x21-\x7e]*$")


class _Violations:
    """One violation per field, the first (the most specific check runs first), and only as many
    as a status carries (`InvalidRequest.MAX_REPORTED`): the rest are noted, not kept. Each `add`
    costs the same however many came before: a request with a million bad items used to make
    every `add` scan the list, hours of the event loop for one call."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []
        self._fields: set[str] = set()
        self.more = False

    def add(self, field: str, description: str) -> None:
        if len(field) > MAX_FIELD_CHARS:
            field, below = _cut_path(field)
            description = f"{description} (at {below})" if below else description
        if field in self._fields:
            return
        if len(self.items) < InvalidRequest.MAX_REPORTED:
            self._fields.add(field)
            self.items.append(FieldViolation(field, description))
        else:
            self.more = True

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidRequest(self.items, more=self.more)


def _cut_path(field: str) -> tuple[str, str]:
    """`field` cut at its last segment boundary (a `.` outside a quoted map key) that leaves at
    most MAX_FIELD_CHARS, and the rest. A status cuts a longer path anywhere (`status.clip`),
    and a path cut mid-segment names no field; a path's prefix up to a segment's end names the
    field that holds the rest (a node 32 levels down under a long workflow node name)."""
    cut, quote, escaped = 0, "", False
    for index, char in enumerate(field[: MAX_FIELD_CHARS + 1]):
        if escaped:
            escaped = False
        elif quote:
            escaped = char == "\\"
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ".":
            cut = index
    if not cut:
        return field, ""  # no boundary to cut at: the status clips it
    return field[:cut], field[cut:]


def _target(bucket: str, region: str, settings: Settings, errors: _Violations) -> Target:
    # A default is valid when set: `Settings` refuses to start with an invalid one, so only the
    # caller's own names are checked (a regex each, on every call that names them).
    checked = True
    if bucket:
        if not is_valid_bucket(bucket):
            errors.add("bucket", "must be 'name-APPID' (lower-case letters, digits, dashes)")
            checked = False
    else:
        bucket = settings.default_bucket
        if not bucket:
            errors.add("bucket", "required: no default bucket is configured")
    if region:
        if not is_valid_region(region):
            errors.add("region", "must be a region name such as 'ap-guangzhou'")
            checked = False
    else:
        region = settings.default_region
        if not region:
            errors.add("region", "required: no default region is configured")
    # Names that failed their check are the caller's text, of any length: not remembered.
    return known_target(bucket, region) if checked else Target(bucket, region)


def _printable_ascii(text: str) -> bool:
    """`^[\x20-\x7e]*$` as two checks in C (printable ASCII is exactly that range)."""
    return text.isascii() and text.isprintable()


def _object_key(key: str, field: str, errors: _Violations) -> None:
    # A printable ASCII key (the usual) is its own UTF-8 and holds no control character or
    # non-character: the checks for those are skipped, not their order.
    plain = _printable_ascii(key)
    if not key:
        errors.add(field, "required")
    elif key[0] == "/":  # `startswith` parses its arguments: twice the instructions
        errors.add(field, "must not start with '/' (write 'input/a.mp4', not '/input/a.mp4')")
    elif (len(key) if plain else len(key.encode())) > MAX_OBJECT_KEY_BYTES:
        errors.add(field, f"longer than {MAX_OBJECT_KEY_BYTES} bytes")
    elif not plain and _CONTROL.search(key):
        errors.add(field, "must not contain control characters")
    elif not plain and _NON_CHARACTER.search(key):
        # XML cannot carry them: a key with one could never be written into a body.
        errors.add(field, "must not contain U+FFFE or U+FFFF")
    elif has_dot_segment(key):
        errors.add(field, "must not contain '.' or '..' path segments")
    elif "//" in key:
        errors.add(field, "must not contain empty path segments ('//')")


def _page_token(token: str, field: str, errors: _Violations) -> None:
    if len(token) > MAX_PAGE_TOKEN_CHARS:
        errors.add(field, f"longer than {MAX_PAGE_TOKEN_CHARS} characters")
    elif not _PAGE_TOKEN.fullmatch(token):
        errors.add(field, "must be the next_token of a previous answer (printable ASCII)")


def _job_id(job_id: str, field: str, errors: _Violations) -> None:
    if not job_id:
        errors.add(field, "required")
    elif not _JOB_ID.fullmatch(job_id):
        errors.add(field, "must be a CI job id (letters, digits, '-', '_'; at most 64)")


def validate_submit(
    rpc: service_pb2.SubmitMediaJobRequest, settings: Settings
) -> tuple[Target, media_pb2.Request, str]:
    """Return the target, the CI `<Request>` to send (with `Tag` defaulted) and the request_id
    (the caller's, or a new one)."""
    errors = _Violations()
    request_id = rpc.request_id
    _request_id(request_id, errors)
    target = _target(rpc.bucket, rpc.region, settings, errors)
    request = media_pb2.Request()
    request.CopyFrom(rpc.request)
    # Each field read once: every read of a protobuf attribute is a call into upb, and a
    # string's a new str.
    tag = request.tag
    if not tag:
        request.tag = tag = kinds.DEFAULT_TAG
    elif kinds.kind(tag) is None:
        errors.add("request.tag", UNKNOWN_TAG)
    key = request.input.object
    if key or kind_rules.needs_input(tag):
        _object_key(key, "request.input.object", errors)
    operation = request.operation
    if operation.tag:
        errors.add(
            "request.operation.tag",
            "only for multi-operation submits (SubmitMediaJobs): set request.tag",
        )
    _operation(tag, operation, "request.operation", errors)
    # Every string of every kind's parameters, and every unknown node, must be encodable XML.
    check_tree(request, "request", errors.add)
    _envelope(request, errors)
    _places(request, errors)
    errors.raise_if_any()
    return target, request, request_id or new_request_id()


def validate_submit_jobs(
    rpc: service_pb2.SubmitMediaJobsRequest, settings: Settings
) -> tuple[Target, media_pb2.MultiOperationRequest, str]:
    """The multi-operation form: each operation is checked as a single submit of its own `tag`
    would be (its paths `request.operation[i]....`), the envelope once. Returns the target, the
    CI `<Request>` to send and the request_id (the caller's, or a new one)."""
    errors = _Violations()
    _request_id(rpc.request_id, errors)
    target = _target(rpc.bucket, rpc.region, settings, errors)
    request = media_pb2.MultiOperationRequest()
    request.CopyFrom(rpc.request)
    count = len(request.operation)
    if not 1 <= count <= MAX_OPERATIONS:
        errors.add(
            "request.operation", f"1 to {MAX_OPERATIONS} operations (one job each), not {count}"
        )
    needs_input = False
    for index, operation in enumerate(request.operation):
        path = f"request.operation[{index}]"
        if not operation.tag:
            errors.add(f"{path}.tag", "required: each operation names its job kind")
        elif kinds.kind(operation.tag) is None:
            errors.add(f"{path}.tag", UNKNOWN_TAG)
        else:
            needs_input = needs_input or kind_rules.needs_input(operation.tag)
        _operation(operation.tag, operation, path, errors)
    if request.input.object or needs_input:
        _object_key(request.input.object, "request.input.object", errors)
    check_tree(request, "request", errors.add)
    _envelope(request, errors)
    _places(request, errors)
    errors.raise_if_any()
    return target, request, rpc.request_id or new_request_id()


def _places(request: Message, errors: _Violations) -> None:
    """Every bucket and region the request names below its target (input, outputs, the buckets
    in COS URLs, raw nodes) has CI's form: the same walk the access policy authorizes them by, so
    a name the policy sees is one CI would accept, and a typo is the caller's INVALID_ARGUMENT
    naming the field rather than CI's error after the call."""
    for place in named_places(request):
        if place.kind == "bucket" and not is_valid_bucket(place.value):
            errors.add(
                f"request.{place.field}",
                "must be 'name-APPID' (lower-case letters, digits, dashes)",
            )
        elif place.kind == "region" and not is_valid_region(place.value):
            errors.add(f"request.{place.field}", "must be a region name such as 'ap-guangzhou'")


def _request_id(request_id: str, errors: _Violations) -> None:
    if request_id and not REQUEST_ID.fullmatch(request_id):
        errors.add("request_id", "must be 1-128 of letters, digits and . _ : - (a UUID is ideal)")


def _operation(tag: str, operation: media_pb2.Operation, path: str, errors: _Violations) -> None:
    """One job's `Operation` (at `path`), whichever form carries it. The fields it sets are read
    once (`ListFields`) for every check here, `_output_only`'s and `check_kind`'s: a field left
    at its default passes its own checks, and most operations set few fields."""
    set_here = {field.name for field, _ in operation.ListFields()}
    if "user_data" in set_here:
        user_data = operation.user_data
        if len(user_data) > MAX_USER_DATA:
            errors.add(f"{path}.user_data", f"longer than {MAX_USER_DATA} characters")
        elif not _printable_ascii(user_data):
            errors.add(f"{path}.user_data", "must be printable ASCII")
    if "job_level" in set_here and not 0 <= operation.job_level <= 2:
        errors.add(f"{path}.job_level", "must be 0, 1 or 2")
    _output_only(operation, path, errors, set_here)
    kind_rules.check_kind(
        tag, operation, lambda where, why: errors.add(f"{path}.{where}", why), set_here
    )


def _envelope(
    request: media_pb2.Request | media_pb2.MultiOperationRequest, errors: _Violations
) -> None:
    """What every job of a submit shares: its queue and where its callback goes."""
    queue_id, call_back_format = request.queue_id, request.call_back_format
    if queue_id and not _QUEUE_ID.fullmatch(queue_id):
        errors.add("request.queue_id", "must be a CI queue id")
    if call_back_format and call_back_format not in CALL_BACK_FORMATS:
        errors.add("request.call_back_format", "must be 'XML' or 'JSON'")
    call_back_type = request.call_back_type
    if call_back_type and call_back_type not in CALL_BACK_TYPES:
        errors.add("request.call_back_type", "must be 'Url', 'TDMQ' or 'Kafka'")
    call_back = request.call_back
    if call_back and call_back != "no" and not _is_http_url(call_back):
        errors.add("request.call_back", "must be an http(s) URL, or 'no'")
    if call_back_type == "TDMQ":
        if not request.HasField("call_back_mq_config"):
            errors.add("request.call_back_mq_config", "required when call_back_type is 'TDMQ'")
        else:
            mq = request.call_back_mq_config
            if mq.mq_region not in MQ_REGIONS:
                errors.add(
                    "request.call_back_mq_config.mq_region",
                    f"must be one of {', '.join(sorted(MQ_REGIONS))}",
                )
            if mq.mq_mode not in MQ_MODES:
                errors.add("request.call_back_mq_config.mq_mode", "must be 'Topic' or 'Queue'")
            if not mq.mq_name:
                errors.add("request.call_back_mq_config.mq_name", "required")
    if call_back_type == "Kafka":
        kafka_config(
            request.call_back_kafka_config,
            "request.call_back_kafka_config",
            errors,
            why="required when call_back_type is 'Kafka'",
        )


def kafka_config(config: Message, path: str, errors: _Violations, *, why: str) -> None:
    """A Kafka callback's address (a job's `CallBackKafkaConfig`, a NotifyConfig's
    `KafkaConfig`): region, instance and topic, each required."""
    for name in ("region", "instance_id", "topic"):
        if not getattr(config, name):
            errors.add(f"{path}.{name}", why)


def _is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host CI could call: no whitespace or control characters
    (no URL has them, and urlsplit silently drops some), and a host and port urlsplit can read:
    it raises ValueError for `http://[::1` (which escaped as INTERNAL) and for port 99999 (which
    reached CI)."""
    if any(char.isspace() for char in url) or _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _output_only(
    operation: media_pb2.Operation, path: str, errors: _Violations, set_here: AbstractSet[str]
) -> None:
    """CI fills these in its answers; a submit that sets one is echoing an answer back.
    `set_here`: the fields `operation` sets."""
    if set_here.isdisjoint(_OUTPUT_ONLY_ROOTS):
        return  # none of their parents set (the usual): none of them is
    for dotted, parents, leaf in _OUTPUT_ONLY_PATHS:
        if parents and parents[0] not in set_here:
            continue  # an unset message sets nothing below it
        message: Message = operation
        for name in parents:
            message = getattr(message, name)
        names = set_here if not parents else {field.name for field, _ in message.ListFields()}
        if leaf in names:
            errors.add(f"{path}.{dotted}", "is output only")


# OUTPUT_ONLY split once: (dotted path, its parents, its leaf).
_OUTPUT_ONLY_PATHS = tuple(
    (dotted, tuple(dotted.split(".")[:-1]), dotted.split(".")[-1]) for dotted in OUTPUT_ONLY
)
# The `Operation` fields they are in (the first part of each path).
_OUTPUT_ONLY_ROOTS = frozenset(dotted.split(".")[0] for dotted in OUTPUT_ONLY)


def validate_describe(
    rpc: service_pb2.DescribeMediaJobsRequest, settings: Settings
) -> tuple[Target, list[str]]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    # A list by one slice: each loop over the repeated field itself would end in an IndexError
    # formatted and dropped inside protobuf (~1,900 instructions).
    job_ids = rpc.job_ids[:]
    if not job_ids:
        errors.add("job_ids", "at least one job id is required")
    elif len(job_ids) > MAX_JOB_IDS_PER_RPC:
        # CI takes ten a request; more are sent in batches (`gateway.jobs.describe`), up to this.
        errors.add("job_ids", f"at most {MAX_JOB_IDS_PER_RPC} ids per call, got {len(job_ids)}")
    for index, job_id in enumerate(job_ids):
        if not _JOB_ID.fullmatch(job_id):  # the path is written only for an id refused
            _job_id(job_id, f"job_ids[{index}]", errors)
    errors.raise_if_any()
    # CI answers a repeated id once; asking once keeps the answer aligned with the request.
    return target, list(dict.fromkeys(job_ids))


def _creation_time(value: str, field: str, errors: _Violations) -> str:
    """`value` in CI's form (notes §5.2: `2001-01-01T00:00:00+0800`, an offset without a colon),
    as sent to CI. `strptime` also reads `Z`, `+08:00` and unpadded fields, which CI's form is
    not: those are written back in it, so CI gets only what it documents."""
    if not value:
        return ""
    try:
        parsed = datetime.strptime(value, CREATION_TIME_FORMAT)
    except ValueError:
        parsed = None
    offset = parsed.utcoffset() if parsed is not None else None
    if parsed is None or offset is None or offset.seconds % 60 or offset.microseconds:
        errors.add(field, "must look like 2001-01-01T00:00:00+0800")
        return ""
    # The year written out by hand: strftime's `%Y` drops the zeros of a year before 1000 on
    # glibc (`1-01-01T...`), which is not CI's form.
    return f"{parsed.year:04d}-" + parsed.strftime(CREATION_TIME_FORMAT.removeprefix("%Y-"))


# The enums' values, as sets once (`EnumTypeWrapper.values()` builds a list per call).
_JOB_STATES = frozenset(media_pb2.JobState.values())
_ORDERS_BY_TIME = frozenset(service_pb2.OrderByTime.values())


def validate_list(
    rpc: service_pb2.ListMediaJobsRequest, settings: Settings
) -> tuple[Target, dict[str, str]]:
    """Return the target and CI's query parameters (lower-camel names, as CI spells them)."""
    # Each field read once (a upb read is ~300-600 instructions), the states by one slice.
    queue_id, order_by_time, size = rpc.queue_id, rpc.order_by_time, rpc.size
    input_object, workflow_id = rpc.input_object, rpc.workflow_id
    inventory_trigger_job_id, next_token = rpc.inventory_trigger_job_id, rpc.next_token
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    if queue_id and not _QUEUE_ID.fullmatch(queue_id):
        errors.add("queue_id", "must be a CI queue id")
    tag = rpc.tag or kinds.DEFAULT_TAG
    if kinds.kind(tag) is None:
        errors.add("tag", UNKNOWN_TAG)
    states: list[str] = []
    for index, state in enumerate(rpc.states[:]):
        if state == media_pb2.JOB_STATE_UNSPECIFIED or state not in _JOB_STATES:
            errors.add(f"states[{index}]", "must be a known job state")
        else:
            states.append(xml_codec.enum_wire_name(media_pb2.JobState.DESCRIPTOR, state))
    if order_by_time not in _ORDERS_BY_TIME:
        errors.add("order_by_time", "must be ORDER_BY_TIME_DESC or ORDER_BY_TIME_ASC")
    if not 0 <= size <= MAX_LIST_SIZE:
        errors.add("size", f"must be between 1 and {MAX_LIST_SIZE} (0 = CI's default)")
    start_creation_time = _creation_time(rpc.start_creation_time, "start_creation_time", errors)
    end_creation_time = _creation_time(rpc.end_creation_time, "end_creation_time", errors)
    if input_object:
        _object_key(input_object, "input_object", errors)
    for field, value in (
        ("workflow_id", workflow_id),
        ("inventory_trigger_job_id", inventory_trigger_job_id),
    ):
        if value and not _JOB_ID.fullmatch(value):
            errors.add(field, "must be a CI id (letters, digits, '-', '_'; at most 64)")
    _page_token(next_token, "next_token", errors)
    errors.raise_if_any()
    params = {"tag": tag}
    optional = {
        "queueId": queue_id,
        "states": ",".join(dict.fromkeys(states)),
        "orderByTime": xml_codec.enum_wire_name(service_pb2.OrderByTime.DESCRIPTOR, order_by_time)
        if order_by_time
        else "",
        "size": str(size) if size else "",
        "startCreationTime": start_creation_time,
        "endCreationTime": end_creation_time,
        "inputObject": input_object,
        "workflowId": workflow_id,
        "inventoryTriggerJobId": inventory_trigger_job_id,
    }
    params.update({name: value for name, value in optional.items() if value})
    # Sent even when empty, as the official SDK does: CI treats it as "first page".
    params["nextToken"] = next_token
    return target, params


JobRef = (
    service_pb2.CancelMediaJobRequest
    | service_pb2.WatchMediaJobRequest
    | service_pb2.WaitMediaJobRequest
)
# google.protobuf.Duration's documented range (duration.proto): about 10,000 years either way.
MAX_DURATION_SECONDS = 315_576_000_000
MAX_DURATION_NANOS = 999_999_999


def validate_job_ref(rpc: JobRef, settings: Settings) -> tuple[Target, str]:
    """The RPCs that name one job (cancel, watch, wait) share these fields and rules."""
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _job_id(rpc.job_id, "job_id", errors)
    errors.raise_if_any()
    return target, rpc.job_id


def validate_wait(
    rpc: service_pb2.WaitMediaJobRequest, settings: Settings
) -> tuple[Target, str, float | None]:
    """A job reference and the longest wait: the target, the job id and `timeout` in seconds
    (None when unset)."""
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _job_id(rpc.job_id, "job_id", errors)
    timeout = _duration(rpc.timeout, "timeout", errors) if rpc.HasField("timeout") else None
    errors.raise_if_any()
    return target, rpc.job_id, timeout


def _duration(value: duration_pb2.Duration, field: str, errors: _Violations) -> float | None:
    """A Duration as seconds, when it is one: within the type's range, its nanos of its seconds'
    sign. Outside it `ToTimedelta` raised OverflowError (INTERNAL) for seconds a client may well
    send (2**63 - 1, "forever"), and mixed signs were read as some other duration."""
    seconds, nanos = value.seconds, value.nanos
    if (
        abs(seconds) > MAX_DURATION_SECONDS
        or abs(nanos) > MAX_DURATION_NANOS
        or (seconds < 0 < nanos)
        or (nanos < 0 < seconds)
    ):
        errors.add(
            field,
            f"not a Duration: seconds within +-{MAX_DURATION_SECONDS}, "
            "nanos within +-999999999 and of the seconds' sign",
        )
        return None
    if seconds < 0 or nanos < 0:
        errors.add(field, "must not be negative")
        return None
    return seconds + nanos / 1e9


def validate_generate_media_info(
    rpc: service_pb2.GenerateMediaInfoRequest, settings: Settings
) -> tuple[Target, str]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _object_key(rpc.input.object, "input.object", errors)
    # CI probes an object of the bucket the call is addressed to; its body carries only the key.
    # Another bucket or region here would be silently dropped, and the answer be about an
    # object of the caller's own bucket: refused, naming where to put them instead.
    if rpc.input.bucket_id and rpc.input.bucket_id != target.bucket:
        errors.add("input.bucket_id", "not supported here: name the bucket in 'bucket'")
    if rpc.input.region and rpc.input.region != target.region:
        errors.add("input.region", "not supported here: name the region in 'region'")
    errors.raise_if_any()
    return target, rpc.input.object


def validate_get_media_info(
    rpc: service_pb2.GetMediaInfoRequest, settings: Settings
) -> tuple[Target, str, str]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _object_key(rpc.object, "object", errors)
    if len(rpc.version_id) > 128:
        errors.add("version_id", "longer than 128 characters")
    elif _CONTROL.search(rpc.version_id):
        # COS's version ids are short printable tokens; a NUL or CR/LF would otherwise go to CI
        # percent-encoded in the query, which no version can match.
        errors.add("version_id", "must not contain control characters")
    errors.raise_if_any()
    return target, rpc.object, rpc.version_id
