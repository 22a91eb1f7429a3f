from gateway._proto import job_kinds_pb2 as _job_kinds_pb2
from gateway._proto import media_pb2 as _media_pb2
from gateway._proto import queues_pb2 as _queues_pb2
from gateway._proto import service_pb2 as _service_pb2
from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_STATE_UNSPECIFIED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_ACTIVE: _ClassVar[WorkflowState]
    WORKFLOW_STATE_PAUSED: _ClassVar[WorkflowState]
WORKFLOW_STATE_UNSPECIFIED: WorkflowState
WORKFLOW_STATE_ACTIVE: WorkflowState
WORKFLOW_STATE_PAUSED: WorkflowState

class ExtFilter(_message.Message):
    __slots__ = ("state", "video", "audio", "image", "content_type", "custom", "custom_exts", "all_file", "auto_content_type", "extra_nodes")
    STATE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_EXTS_FIELD_NUMBER: _ClassVar[int]
    ALL_FILE_FIELD_NUMBER: _ClassVar[int]
    AUTO_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    state: str
    video: str
    audio: str
    image: str
    content_type: str
    custom: str
    custom_exts: str
    all_file: str
    auto_content_type: _containers.RepeatedScalarFieldContainer[str]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, state: _Optional[str] = ..., video: _Optional[str] = ..., audio: _Optional[str] = ..., image: _Optional[str] = ..., content_type: _Optional[str] = ..., custom: _Optional[str] = ..., custom_exts: _Optional[str] = ..., all_file: _Optional[str] = ..., auto_content_type: _Optional[_Iterable[str]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SamplingConfig(_message.Message):
    __slots__ = ("state", "mode", "ratio", "extra_nodes")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    state: str
    mode: str
    ratio: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, state: _Optional[str] = ..., mode: _Optional[str] = ..., ratio: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowNodeInput(_message.Message):
    __slots__ = ("queue_id", "object_prefix", "notify_config", "ext_filter", "sampling_config", "extra_nodes")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXT_FILTER_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    object_prefix: str
    notify_config: _queues_pb2.QueueNotifyConfig
    ext_filter: ExtFilter
    sampling_config: SamplingConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, queue_id: _Optional[str] = ..., object_prefix: _Optional[str] = ..., notify_config: _Optional[_Union[_queues_pb2.QueueNotifyConfig, _Mapping]] = ..., ext_filter: _Optional[_Union[ExtFilter, _Mapping]] = ..., sampling_config: _Optional[_Union[SamplingConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DelogoParam(_message.Message):
    __slots__ = ("switch", "dx", "dy", "width", "height", "extra_nodes")
    SWITCH_FIELD_NUMBER: _ClassVar[int]
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    switch: str
    dx: str
    dy: str
    width: str
    height: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, switch: _Optional[str] = ..., dx: _Optional[str] = ..., dy: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ScfConfig(_message.Message):
    __slots__ = ("region", "function_name", "namespace", "extra_nodes")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    region: str
    function_name: str
    namespace: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, region: _Optional[str] = ..., function_name: _Optional[str] = ..., namespace: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VideoStreamConfig(_message.Message):
    __slots__ = ("video_stream_name", "band_width", "extra_nodes")
    VIDEO_STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    BAND_WIDTH_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    video_stream_name: str
    band_width: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, video_stream_name: _Optional[str] = ..., band_width: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class StreamPackInfo(_message.Message):
    __slots__ = ("video_stream_config", "extra_nodes")
    VIDEO_STREAM_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    video_stream_config: _containers.RepeatedCompositeFieldContainer[VideoStreamConfig]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, video_stream_config: _Optional[_Iterable[_Union[VideoStreamConfig, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class StreamPackConfig(_message.Message):
    __slots__ = ("pack_type", "ignore_failed_stream", "reserve_all_stream_node", "extra_nodes")
    PACK_TYPE_FIELD_NUMBER: _ClassVar[int]
    IGNORE_FAILED_STREAM_FIELD_NUMBER: _ClassVar[int]
    RESERVE_ALL_STREAM_NODE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    pack_type: str
    ignore_failed_stream: str
    reserve_all_stream_node: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, pack_type: _Optional[str] = ..., ignore_failed_stream: _Optional[str] = ..., reserve_all_stream_node: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowCondition(_message.Message):
    __slots__ = ("express", "extra_nodes")
    EXPRESS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    express: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, express: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowTranscodeConfig(_message.Message):
    __slots__ = ("free_transcode", "extra_nodes")
    FREE_TRANSCODE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    free_transcode: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, free_transcode: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowNodeOperation(_message.Message):
    __slots__ = ("template_id", "transcode_template_id", "watermark_template_id", "output", "delogo_param", "sdr_to_hdr", "smart_cover", "segment", "digital_watermark", "scf", "hls_pack_info", "stream_pack_config", "stream_pack_info", "condition", "transcode_config", "extra_nodes")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DELOGO_PARAM_FIELD_NUMBER: _ClassVar[int]
    SDR_TO_HDR_FIELD_NUMBER: _ClassVar[int]
    SMART_COVER_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    DIGITAL_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    SCF_FIELD_NUMBER: _ClassVar[int]
    HLS_PACK_INFO_FIELD_NUMBER: _ClassVar[int]
    STREAM_PACK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STREAM_PACK_INFO_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    transcode_template_id: str
    watermark_template_id: _containers.RepeatedScalarFieldContainer[str]
    output: _job_kinds_pb2.Output
    delogo_param: DelogoParam
    sdr_to_hdr: _job_kinds_pb2.SdrToHdr
    smart_cover: _job_kinds_pb2.SmartCover
    segment: _job_kinds_pb2.Segment
    digital_watermark: _job_kinds_pb2.DigitalWatermark
    scf: ScfConfig
    hls_pack_info: StreamPackInfo
    stream_pack_config: StreamPackConfig
    stream_pack_info: StreamPackInfo
    condition: WorkflowCondition
    transcode_config: WorkflowTranscodeConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, template_id: _Optional[str] = ..., transcode_template_id: _Optional[str] = ..., watermark_template_id: _Optional[_Iterable[str]] = ..., output: _Optional[_Union[_job_kinds_pb2.Output, _Mapping]] = ..., delogo_param: _Optional[_Union[DelogoParam, _Mapping]] = ..., sdr_to_hdr: _Optional[_Union[_job_kinds_pb2.SdrToHdr, _Mapping]] = ..., smart_cover: _Optional[_Union[_job_kinds_pb2.SmartCover, _Mapping]] = ..., segment: _Optional[_Union[_job_kinds_pb2.Segment, _Mapping]] = ..., digital_watermark: _Optional[_Union[_job_kinds_pb2.DigitalWatermark, _Mapping]] = ..., scf: _Optional[_Union[ScfConfig, _Mapping]] = ..., hls_pack_info: _Optional[_Union[StreamPackInfo, _Mapping]] = ..., stream_pack_config: _Optional[_Union[StreamPackConfig, _Mapping]] = ..., stream_pack_info: _Optional[_Union[StreamPackInfo, _Mapping]] = ..., condition: _Optional[_Union[WorkflowCondition, _Mapping]] = ..., transcode_config: _Optional[_Union[WorkflowTranscodeConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowNode(_message.Message):
    __slots__ = ("type", "input", "operation", "extra_nodes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    type: str
    input: WorkflowNodeInput
    operation: WorkflowNodeOperation
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, type: _Optional[str] = ..., input: _Optional[_Union[WorkflowNodeInput, _Mapping]] = ..., operation: _Optional[_Union[WorkflowNodeOperation, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowTopology(_message.Message):
    __slots__ = ("dependencies", "nodes", "extra_nodes")
    class DependenciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class NodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WorkflowNode
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WorkflowNode, _Mapping]] = ...) -> None: ...
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    dependencies: _containers.ScalarMap[str, str]
    nodes: _containers.MessageMap[str, WorkflowNode]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, dependencies: _Optional[_Mapping[str, str]] = ..., nodes: _Optional[_Mapping[str, WorkflowNode]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaWorkflow(_message.Message):
    __slots__ = ("name", "workflow_id", "state", "state_text", "topology", "create_time", "update_time", "bucket_id", "extra_nodes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    name: str
    workflow_id: str
    state: WorkflowState
    state_text: str
    topology: WorkflowTopology
    create_time: str
    update_time: str
    bucket_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, name: _Optional[str] = ..., workflow_id: _Optional[str] = ..., state: _Optional[_Union[WorkflowState, str]] = ..., state_text: _Optional[str] = ..., topology: _Optional[_Union[WorkflowTopology, _Mapping]] = ..., create_time: _Optional[str] = ..., update_time: _Optional[str] = ..., bucket_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaWorkflowBody(_message.Message):
    __slots__ = ("media_workflow", "extra_nodes")
    MEDIA_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    media_workflow: MediaWorkflow
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, media_workflow: _Optional[_Union[MediaWorkflow, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowTaskResult(_message.Message):
    __slots__ = ("object_count", "sprite_object_count", "extra_nodes")
    OBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SPRITE_OBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    object_count: str
    sprite_object_count: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, object_count: _Optional[str] = ..., sprite_object_count: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowTask(_message.Message):
    __slots__ = ("type", "create_time", "end_time", "state", "state_text", "job_id", "name", "template_id", "template_name", "transcode_template_id", "transcode_template_name", "hdr_mode", "result_info", "extra_nodes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_TEMPLATE_NAME_FIELD_NUMBER: _ClassVar[int]
    HDR_MODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_INFO_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    type: str
    create_time: str
    end_time: str
    state: _media_pb2.JobState
    state_text: str
    job_id: str
    name: str
    template_id: str
    template_name: str
    transcode_template_id: str
    transcode_template_name: str
    hdr_mode: str
    result_info: WorkflowTaskResult
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, type: _Optional[str] = ..., create_time: _Optional[str] = ..., end_time: _Optional[str] = ..., state: _Optional[_Union[_media_pb2.JobState, str]] = ..., state_text: _Optional[str] = ..., job_id: _Optional[str] = ..., name: _Optional[str] = ..., template_id: _Optional[str] = ..., template_name: _Optional[str] = ..., transcode_template_id: _Optional[str] = ..., transcode_template_name: _Optional[str] = ..., hdr_mode: _Optional[str] = ..., result_info: _Optional[_Union[WorkflowTaskResult, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowExecution(_message.Message):
    __slots__ = ("run_id", "workflow_id", "workflow_name", "state", "state_text", "create_time", "creation_time", "object", "bucket_id", "topology", "tasks", "cos_headers", "extra_nodes")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    COS_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    workflow_id: str
    workflow_name: str
    state: _media_pb2.JobState
    state_text: str
    create_time: str
    creation_time: str
    object: str
    bucket_id: str
    topology: WorkflowTopology
    tasks: _containers.RepeatedCompositeFieldContainer[WorkflowTask]
    cos_headers: _containers.RepeatedCompositeFieldContainer[_media_pb2.CosHeader]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, run_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., state: _Optional[_Union[_media_pb2.JobState, str]] = ..., state_text: _Optional[str] = ..., create_time: _Optional[str] = ..., creation_time: _Optional[str] = ..., object: _Optional[str] = ..., bucket_id: _Optional[str] = ..., topology: _Optional[_Union[WorkflowTopology, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[WorkflowTask, _Mapping]]] = ..., cos_headers: _Optional[_Iterable[_Union[_media_pb2.CosHeader, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WorkflowCallback(_message.Message):
    __slots__ = ("event_name", "workflow_execution", "extra_nodes")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    workflow_execution: WorkflowExecution
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, event_name: _Optional[str] = ..., workflow_execution: _Optional[_Union[WorkflowExecution, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CreateMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "media_workflow")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    media_workflow: MediaWorkflow
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., media_workflow: _Optional[_Union[MediaWorkflow, _Mapping]] = ...) -> None: ...

class CreateMediaWorkflowResponse(_message.Message):
    __slots__ = ("request_id", "media_workflow", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    media_workflow: MediaWorkflow
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., media_workflow: _Optional[_Union[MediaWorkflow, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class UpdateMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id", "media_workflow")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    media_workflow: MediaWorkflow
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ..., media_workflow: _Optional[_Union[MediaWorkflow, _Mapping]] = ...) -> None: ...

class UpdateMediaWorkflowResponse(_message.Message):
    __slots__ = ("request_id", "media_workflow", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    media_workflow: MediaWorkflow
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., media_workflow: _Optional[_Union[MediaWorkflow, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DescribeMediaWorkflowsRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_ids", "name", "page_number", "page_size")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_ids: _containers.RepeatedScalarFieldContainer[str]
    name: str
    page_number: int
    page_size: int
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_ids: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., page_number: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class DescribeMediaWorkflowsResponse(_message.Message):
    __slots__ = ("request_id", "total_count", "page_number", "page_size", "media_workflow_list", "non_exist_ids", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WORKFLOW_LIST_FIELD_NUMBER: _ClassVar[int]
    NON_EXIST_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    total_count: str
    page_number: str
    page_size: str
    media_workflow_list: _containers.RepeatedCompositeFieldContainer[MediaWorkflow]
    non_exist_ids: _containers.RepeatedScalarFieldContainer[str]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., total_count: _Optional[str] = ..., page_number: _Optional[str] = ..., page_size: _Optional[str] = ..., media_workflow_list: _Optional[_Iterable[_Union[MediaWorkflow, _Mapping]]] = ..., non_exist_ids: _Optional[_Iterable[str]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DeleteMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class DeleteMediaWorkflowResponse(_message.Message):
    __slots__ = ("request_id", "workflow_id", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    workflow_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ActivateMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class ActivateMediaWorkflowResponse(_message.Message):
    __slots__ = ("request_id", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class PauseMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class PauseMediaWorkflowResponse(_message.Message):
    __slots__ = ("request_id", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TriggerMediaWorkflowRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id", "object", "name")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    object: str
    name: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ..., object: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class TriggerMediaWorkflowResponse(_message.Message):
    __slots__ = ("instance_id", "request_id", "extra_nodes")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    request_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, instance_id: _Optional[str] = ..., request_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ListWorkflowExecutionsRequest(_message.Message):
    __slots__ = ("bucket", "region", "workflow_id", "object", "order_by_time", "states", "start_creation_time", "end_creation_time", "next_token", "size")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_TIME_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    START_CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    END_CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    workflow_id: str
    object: str
    order_by_time: _service_pb2.OrderByTime
    states: _containers.RepeatedScalarFieldContainer[_media_pb2.JobState]
    start_creation_time: str
    end_creation_time: str
    next_token: str
    size: int
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., workflow_id: _Optional[str] = ..., object: _Optional[str] = ..., order_by_time: _Optional[_Union[_service_pb2.OrderByTime, str]] = ..., states: _Optional[_Iterable[_Union[_media_pb2.JobState, str]]] = ..., start_creation_time: _Optional[str] = ..., end_creation_time: _Optional[str] = ..., next_token: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ListWorkflowExecutionsResponse(_message.Message):
    __slots__ = ("request_id", "workflow_execution_list", "next_token", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_EXECUTION_LIST_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    workflow_execution_list: _containers.RepeatedCompositeFieldContainer[WorkflowExecution]
    next_token: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., workflow_execution_list: _Optional[_Iterable[_Union[WorkflowExecution, _Mapping]]] = ..., next_token: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DescribeWorkflowExecutionRequest(_message.Message):
    __slots__ = ("bucket", "region", "run_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    run_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class DescribeWorkflowExecutionResponse(_message.Message):
    __slots__ = ("request_id", "workflow_execution", "next_token", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    workflow_execution: _containers.RepeatedCompositeFieldContainer[WorkflowExecution]
    next_token: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., workflow_execution: _Optional[_Iterable[_Union[WorkflowExecution, _Mapping]]] = ..., next_token: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WatchWorkflowExecutionRequest(_message.Message):
    __slots__ = ("bucket", "region", "run_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    run_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class WatchWorkflowExecutionResponse(_message.Message):
    __slots__ = ("workflow_execution",)
    WORKFLOW_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    workflow_execution: WorkflowExecution
    def __init__(self, workflow_execution: _Optional[_Union[WorkflowExecution, _Mapping]] = ...) -> None: ...
