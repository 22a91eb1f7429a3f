"""Validate a CreateMediaJobs `<Request>` the way CI does, into a `JobSpec`.

Rules (notes §2.2), each refusal InvalidArgument 400 unless noted:

* `Tag` required and one of CI's job tags. MediaInfo and the typed media kinds of the job
  catalogue run (`media.validate` checks their Operation); a real tag the emulator does not
  run (VideoTag, Tts, ...) is NotImplemented 501: CI would accept it, so "invalid" would be a
  lie, and 501 tells the client the gap is the emulator's.
* `Input.Object` required, non-empty, and a key that can name a file in the bucket folder
  (Concat alone may omit `Input`: the Go SDK's example sends its clips as fragments).
* `Operation` optional (required in 2022-24 docs, optional in 2025's and the SDK examples:
  tolerant reading); several `Operation`s under a top-level `Tag` are NotImplemented (no CI
  document describes that form). CI's multi-operation form, without a top-level `Tag`, is read
  by `multi_submit` as one request of this form per Operation.
* `Operation.UserData` printable ASCII, at most 1024 characters.
* `Operation.JobLevel` `0`, `1` or `2` (empty = `0`).
* `QueueId` optional (UNCONFIRMED whether still required; tolerant: absent or empty means the
  bucket's default queue); when given it must be one of this bucket's queues.
* `CallBackFormat` `JSON` | `XML`; `CallBackType` `Url` | `TDMQ` | `Kafka`; `TDMQ` requires
  `CallBackMqConfig` with `MqRegion` in sh/bj/gz/cd/hk, `MqMode` `Topic` | `Queue` (default
  Queue), and a non-empty `MqName`. `Kafka` (with `CallBackKafkaConfig` `Region`, `InstanceId`,
  `Topic`) is in the Go and Java SDKs, not in CI's pages (notes §1): UNCONFIRMED, so the
  tolerant reading accepts it, as a queue's NotifyConfig `Type` Kafka is.

Unknown child nodes are ignored, as CI's XML binding does. Repeated scalar nodes are refused:
the answer would depend on which one a server reads.
"""

from __future__ import annotations

import copy
from typing import Final

from lxml import etree

from ci_emulator.config import BucketConfig
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.jobs import JobSpec
from ci_emulator.media.fields import BucketLookup
from ci_emulator.media.model import MediaRequest, ObjectRef
from ci_emulator.media.validate import INPUT_OPTIONAL_TAGS, MEDIA_TAGS, parse_media
from ci_emulator.objects import is_mappable_key
from ci_emulator.xmlbuild import Fields, element_fields
from ci_emulator.xmlread import child, children, text_of

SUPPORTED_TAGS: Final = frozenset({"MediaInfo", *MEDIA_TAGS})

KNOWN_TAGS: Final = frozenset(
    {
        "MediaInfo", "Transcode", "Snapshot", "Animation", "Concat", "Segment", "StreamExtract",
        "SmartCover", "VideoMontage", "VideoTag", "SDRtoHDR", "VideoProcess", "SuperResolution",
        "VideoEnhance", "QualityEstimate", "DigitalWatermark", "ExtractDigitalWatermark",
        "Watermark", "VoiceSeparate", "NoiseReduction", "Tts", "SpeechRecognition", "SoundHound",
        "VocalScore", "Translation", "WordsGeneralize", "VideoTargetRec", "SegmentVideoBody",
        "SplitVideoParts", "FillConcat", "VideoSynthesis", "GeneratePlayList", "DNA", "PicProcess",
        "PosterProduction", "ImageInspect", "ImageOCR",
    }
)  # fmt: skip
"""The job catalogue's §1.1 tags (37: the union of Tencent's SDK examples, which send every one
to `POST /jobs`). A tag outside it is InvalidArgument; one inside that the emulator does not run
is NotImplemented. DNA (dna.go) and PosterProduction (poster.go) come from SDK examples outside
jobs.go, which is why an earlier copy of this list missed them."""

MAX_USER_DATA = 1024
JOB_LEVELS: Final = {"0": 0, "1": 1, "2": 2}
CALLBACK_FORMATS: Final = frozenset({"JSON", "XML"})
CALLBACK_TYPES: Final = frozenset({"Url", "TDMQ", "Kafka"})
KAFKA_FIELDS: Final = ("Region", "InstanceId", "Topic")
MQ_REGIONS: Final = frozenset({"sh", "bj", "gz", "cd", "hk"})
MQ_MODES: Final = frozenset({"Topic", "Queue"})


def object_key(request: etree._Element) -> str:
    """`Request/Input/Object`, shared by CreateMediaJobs and GenerateMediaInfo."""
    input_node = child(request, "Input")
    if input_node is None:
        raise invalid_argument("Input is required")
    key = text_of(input_node, "Object", strip=False)
    if key is None:
        raise invalid_argument("Input.Object is required")
    return key


def parse_submit(
    request: etree._Element,
    *,
    default_queue_id: str,
    bucket: BucketConfig | None = None,
    buckets: BucketLookup | None = None,
    sent: etree._Element | None = None,
) -> JobSpec:
    """The job a `<Request>` asks for. `bucket` (the one addressed) and `buckets` (every
    bound bucket, for outputs and URLs) are needed by the media kinds only. `sent` is the
    request's Operation as the client sent it (`sent_operation`, taken before templates were
    merged in); the job echoes that (`_echo`). None: `request` is as it was sent."""
    tag = text_of(request, "Tag")
    if tag is None:
        raise invalid_argument("Tag is required")
    if tag not in KNOWN_TAGS:
        raise invalid_argument(f"Tag {tag} is not a CI job type")
    if tag not in SUPPORTED_TAGS:
        raise CiError("NotImplemented", f"the CI emulator does not run {tag} jobs")
    if tag in INPUT_OPTIONAL_TAGS and child(request, "Input") is None:
        key = ""
    else:
        key = object_key(request)
        if not is_mappable_key(key):
            raise invalid_argument(f"Input.Object {key!r} is not a valid object key")
    user_data, job_level = _operation(request)
    media: MediaRequest | None = None
    echo: Fields = []
    if tag in MEDIA_TAGS:
        if bucket is None or buckets is None:
            raise CiError("NotImplemented", f"{tag} jobs need the bucket configuration")
        operation = child(request, "Operation")
        input_ref = ObjectRef(bucket.name, bucket.region, key) if key else None
        media = parse_media(tag, operation, input_ref=input_ref, buckets=buckets)
        echo = _echo(operation, sent)
    callback_type = _one_of(request, "CallBackType", CALLBACK_TYPES)
    return JobSpec(
        tag=tag,
        object_key=key,
        queue_id=text_of(request, "QueueId") or default_queue_id,
        user_data=user_data,
        job_level=job_level,
        callback=text_of(request, "CallBack"),
        callback_format=_one_of(request, "CallBackFormat", CALLBACK_FORMATS),
        callback_type=callback_type,
        callback_mq=_mq_config(request)
        if callback_type == "TDMQ"
        else _kafka_config(request)
        if callback_type == "Kafka"
        else (),
        media=media,
        operation_echo=echo,
    )


def sent_operation(request: etree._Element) -> etree._Element | None:
    """A copy of a request's one `Operation` as the client sent it (None if it has none or
    several: `parse_submit` answers for those), taken before templates are merged into it."""
    operations = children(request, "Operation")
    return copy.deepcopy(operations[0]) if len(operations) == 1 else None


def _echo(operation: etree._Element | None, sent: etree._Element | None) -> Fields:
    """The Operation children CI echoes in JobsDetail (UserData and JobLevel are rendered by
    the job itself, JobLevel always). CI echoes the request (catalogue §1.3, "TemplateName,
    echo of request"), so a job that named a template shows its `TemplateId` (and
    `TranscodeTemplateId`, `WatermarkTemplateId`) as `sent`, with the `TemplateName` it was
    resolved to (which `operation`, resolved, holds) beside it: not the parameters the
    emulator merged in to run it."""
    if operation is None:
        return []
    if sent is None:
        return _echoed(operation)
    echo = _echoed(sent)
    names = [item for item in element_fields(operation) if item[0] == "TemplateName"]
    if names:
        at = next((i + 1 for i, item in enumerate(echo) if item[0] == "TemplateId"), len(echo))
        echo[at:at] = names
    return echo


def _echoed(operation: etree._Element) -> Fields:
    return [item for item in element_fields(operation) if item[0] not in ("UserData", "JobLevel")]


def _operation(request: etree._Element) -> tuple[str | None, int]:
    operations = children(request, "Operation")
    if len(operations) > 1:
        raise CiError("NotImplemented", "the CI emulator does not run multi-operation requests")
    if not operations:
        return None, 0
    operation = operations[0]
    user_data = text_of(operation, "UserData", strip=False)
    if user_data is not None:
        if len(user_data) > MAX_USER_DATA:
            raise invalid_argument(f"Operation.UserData is longer than {MAX_USER_DATA}")
        if not all(" " <= char <= "~" for char in user_data):
            raise invalid_argument("Operation.UserData must be printable ASCII")
    level_text = text_of(operation, "JobLevel")
    level = JOB_LEVELS.get(level_text or "0")
    if level is None:
        raise invalid_argument("Operation.JobLevel must be 0, 1 or 2")
    return user_data, level


def _one_of(request: etree._Element, name: str, allowed: frozenset[str]) -> str | None:
    value = text_of(request, name)
    if value is not None and value not in allowed:
        raise invalid_argument(f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def _mq_config(request: etree._Element) -> tuple[tuple[str, str], ...]:
    config = child(request, "CallBackMqConfig")
    if config is None:
        raise invalid_argument("CallBackMqConfig is required when CallBackType is TDMQ")
    region = _one_of(config, "MqRegion", MQ_REGIONS)
    # Documented as required with a default of Queue: the tolerant reading applies the default.
    mode = _one_of(config, "MqMode", MQ_MODES) or "Queue"
    name = text_of(config, "MqName")
    if region is None or name is None:
        raise invalid_argument("CallBackMqConfig needs MqRegion, MqMode and MqName")
    return (("MqRegion", region), ("MqMode", mode), ("MqName", name))


def kafka_config(node: etree._Element, name: str) -> tuple[tuple[str, str], ...]:
    """The Region, InstanceId and Topic of `node`'s child `name` (a job's
    `CallBackKafkaConfig`, a NotifyConfig's `KafkaConfig`) that are present, in that order."""
    config = child(node, name)
    if config is None:
        return ()
    values = [(field, text_of(config, field)) for field in KAFKA_FIELDS]
    return tuple((field, value) for field, value in values if value)


def _kafka_config(request: etree._Element) -> tuple[tuple[str, str], ...]:
    values = kafka_config(request, "CallBackKafkaConfig")
    if len(values) != len(KAFKA_FIELDS):
        raise invalid_argument("CallBackKafkaConfig needs Region, InstanceId and Topic")
    return values
