from gateway._proto import media_pb2 as _media_pb2
from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueueState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_STATE_UNSPECIFIED: _ClassVar[QueueState]
    QUEUE_STATE_ACTIVE: _ClassVar[QueueState]
    QUEUE_STATE_PAUSED: _ClassVar[QueueState]

class QueueCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_CATEGORY_UNSPECIFIED: _ClassVar[QueueCategory]
    QUEUE_CATEGORY_CATE_ALL: _ClassVar[QueueCategory]
    QUEUE_CATEGORY_TRANSCODING: _ClassVar[QueueCategory]
    QUEUE_CATEGORY_SPEED_TRANSCODING: _ClassVar[QueueCategory]
QUEUE_STATE_UNSPECIFIED: QueueState
QUEUE_STATE_ACTIVE: QueueState
QUEUE_STATE_PAUSED: QueueState
QUEUE_CATEGORY_UNSPECIFIED: QueueCategory
QUEUE_CATEGORY_CATE_ALL: QueueCategory
QUEUE_CATEGORY_TRANSCODING: QueueCategory
QUEUE_CATEGORY_SPEED_TRANSCODING: QueueCategory

class QueueNotifyConfig(_message.Message):
    __slots__ = ("url", "event", "type", "state", "result_format", "mq_mode", "mq_name", "mq_region", "kafka_config", "extra_nodes")
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MQ_MODE_FIELD_NUMBER: _ClassVar[int]
    MQ_NAME_FIELD_NUMBER: _ClassVar[int]
    MQ_REGION_FIELD_NUMBER: _ClassVar[int]
    KAFKA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    url: str
    event: str
    type: str
    state: str
    result_format: str
    mq_mode: str
    mq_name: str
    mq_region: str
    kafka_config: _media_pb2.CallBackKafkaConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, url: _Optional[str] = ..., event: _Optional[str] = ..., type: _Optional[str] = ..., state: _Optional[str] = ..., result_format: _Optional[str] = ..., mq_mode: _Optional[str] = ..., mq_name: _Optional[str] = ..., mq_region: _Optional[str] = ..., kafka_config: _Optional[_Union[_media_pb2.CallBackKafkaConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaQueue(_message.Message):
    __slots__ = ("queue_id", "name", "state", "state_text", "notify_config", "max_size", "max_concurrent", "update_time", "create_time", "category", "bucket_id", "extra_nodes")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    name: str
    state: QueueState
    state_text: str
    notify_config: QueueNotifyConfig
    max_size: str
    max_concurrent: str
    update_time: str
    create_time: str
    category: str
    bucket_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, queue_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[QueueState, str]] = ..., state_text: _Optional[str] = ..., notify_config: _Optional[_Union[QueueNotifyConfig, _Mapping]] = ..., max_size: _Optional[str] = ..., max_concurrent: _Optional[str] = ..., update_time: _Optional[str] = ..., create_time: _Optional[str] = ..., category: _Optional[str] = ..., bucket_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class QueueIdList(_message.Message):
    __slots__ = ("queue_id", "extra_nodes")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    queue_id: _containers.RepeatedScalarFieldContainer[str]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, queue_id: _Optional[_Iterable[str]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DescribeMediaQueuesRequest(_message.Message):
    __slots__ = ("bucket", "region", "queue_ids", "state", "category", "page_number", "page_size")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_IDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    queue_ids: _containers.RepeatedScalarFieldContainer[str]
    state: QueueState
    category: QueueCategory
    page_number: int
    page_size: int
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., queue_ids: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[QueueState, str]] = ..., category: _Optional[_Union[QueueCategory, str]] = ..., page_number: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class DescribeMediaQueuesResponse(_message.Message):
    __slots__ = ("request_id", "total_count", "page_number", "page_size", "queue_list", "non_exist_pids", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LIST_FIELD_NUMBER: _ClassVar[int]
    NON_EXIST_PIDS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    total_count: str
    page_number: str
    page_size: str
    queue_list: _containers.RepeatedCompositeFieldContainer[MediaQueue]
    non_exist_pids: QueueIdList
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., total_count: _Optional[str] = ..., page_number: _Optional[str] = ..., page_size: _Optional[str] = ..., queue_list: _Optional[_Iterable[_Union[MediaQueue, _Mapping]]] = ..., non_exist_pids: _Optional[_Union[QueueIdList, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class UpdateMediaQueueRequest(_message.Message):
    __slots__ = ("bucket", "region", "queue")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    queue: MediaQueue
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., queue: _Optional[_Union[MediaQueue, _Mapping]] = ...) -> None: ...

class UpdateMediaQueueResponse(_message.Message):
    __slots__ = ("request_id", "queue", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    queue: MediaQueue
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., queue: _Optional[_Union[MediaQueue, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...
