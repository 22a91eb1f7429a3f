import datetime

from gateway._proto import media_pb2 as _media_pb2
from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderByTime(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_BY_TIME_UNSPECIFIED: _ClassVar[OrderByTime]
    ORDER_BY_TIME_DESC: _ClassVar[OrderByTime]
    ORDER_BY_TIME_ASC: _ClassVar[OrderByTime]
ORDER_BY_TIME_UNSPECIFIED: OrderByTime
ORDER_BY_TIME_DESC: OrderByTime
ORDER_BY_TIME_ASC: OrderByTime

class SubmitMediaJobRequest(_message.Message):
    __slots__ = ("bucket", "region", "request", "request_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    request: _media_pb2.Request
    request_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., request: _Optional[_Union[_media_pb2.Request, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitMediaJobResponse(_message.Message):
    __slots__ = ("jobs_detail", "extra_nodes")
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _media_pb2.JobsDetail
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, jobs_detail: _Optional[_Union[_media_pb2.JobsDetail, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SubmitMediaJobsRequest(_message.Message):
    __slots__ = ("bucket", "region", "request", "request_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    request: _media_pb2.MultiOperationRequest
    request_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., request: _Optional[_Union[_media_pb2.MultiOperationRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitMediaJobsResponse(_message.Message):
    __slots__ = ("jobs_detail", "extra_nodes")
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _containers.RepeatedCompositeFieldContainer[_media_pb2.JobsDetail]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, jobs_detail: _Optional[_Iterable[_Union[_media_pb2.JobsDetail, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DescribeMediaJobsRequest(_message.Message):
    __slots__ = ("bucket", "region", "job_ids", "include_raw_xml")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RAW_XML_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    include_raw_xml: bool
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., include_raw_xml: _Optional[bool] = ...) -> None: ...

class DescribeMediaJobsResponse(_message.Message):
    __slots__ = ("jobs_detail", "non_exist_job_ids", "extra_nodes")
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    NON_EXIST_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _containers.RepeatedCompositeFieldContainer[_media_pb2.JobsDetail]
    non_exist_job_ids: _containers.RepeatedScalarFieldContainer[str]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, jobs_detail: _Optional[_Iterable[_Union[_media_pb2.JobsDetail, _Mapping]]] = ..., non_exist_job_ids: _Optional[_Iterable[str]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ListMediaJobsRequest(_message.Message):
    __slots__ = ("bucket", "region", "queue_id", "tag", "states", "order_by_time", "next_token", "size", "start_creation_time", "end_creation_time", "input_object", "workflow_id", "inventory_trigger_job_id", "include_raw_xml")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    START_CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    END_CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    INPUT_OBJECT_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_TRIGGER_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RAW_XML_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    queue_id: str
    tag: str
    states: _containers.RepeatedScalarFieldContainer[_media_pb2.JobState]
    order_by_time: OrderByTime
    next_token: str
    size: int
    start_creation_time: str
    end_creation_time: str
    input_object: str
    workflow_id: str
    inventory_trigger_job_id: str
    include_raw_xml: bool
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., queue_id: _Optional[str] = ..., tag: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_media_pb2.JobState, str]]] = ..., order_by_time: _Optional[_Union[OrderByTime, str]] = ..., next_token: _Optional[str] = ..., size: _Optional[int] = ..., start_creation_time: _Optional[str] = ..., end_creation_time: _Optional[str] = ..., input_object: _Optional[str] = ..., workflow_id: _Optional[str] = ..., inventory_trigger_job_id: _Optional[str] = ..., include_raw_xml: _Optional[bool] = ...) -> None: ...

class ListMediaJobsResponse(_message.Message):
    __slots__ = ("jobs_detail", "next_token", "extra_nodes")
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _containers.RepeatedCompositeFieldContainer[_media_pb2.JobsDetail]
    next_token: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, jobs_detail: _Optional[_Iterable[_Union[_media_pb2.JobsDetail, _Mapping]]] = ..., next_token: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CancelMediaJobRequest(_message.Message):
    __slots__ = ("bucket", "region", "job_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    job_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class CancelMediaJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GenerateMediaInfoRequest(_message.Message):
    __slots__ = ("bucket", "region", "input")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    input: _media_pb2.Input
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., input: _Optional[_Union[_media_pb2.Input, _Mapping]] = ...) -> None: ...

class GetMediaInfoRequest(_message.Message):
    __slots__ = ("bucket", "region", "object", "version_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    object: str
    version_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., object: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class MediaInfoResponse(_message.Message):
    __slots__ = ("media_info", "extra_nodes")
    MEDIA_INFO_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    media_info: _media_pb2.MediaInfo
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, media_info: _Optional[_Union[_media_pb2.MediaInfo, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WatchMediaJobRequest(_message.Message):
    __slots__ = ("bucket", "region", "job_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    job_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class WatchMediaJobResponse(_message.Message):
    __slots__ = ("jobs_detail",)
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _media_pb2.JobsDetail
    def __init__(self, jobs_detail: _Optional[_Union[_media_pb2.JobsDetail, _Mapping]] = ...) -> None: ...

class WaitMediaJobRequest(_message.Message):
    __slots__ = ("bucket", "region", "job_id", "timeout")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    job_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., job_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WaitMediaJobResponse(_message.Message):
    __slots__ = ("jobs_detail",)
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    jobs_detail: _media_pb2.JobsDetail
    def __init__(self, jobs_detail: _Optional[_Union[_media_pb2.JobsDetail, _Mapping]] = ...) -> None: ...
