from gateway._proto import job_kinds_pb2 as _job_kinds_pb2
from gateway._proto import outputs_pb2 as _outputs_pb2
from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_SUBMITTED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCESS: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_PAUSE: _ClassVar[JobState]
    JOB_STATE_CANCEL: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_SUBMITTED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCESS: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_PAUSE: JobState
JOB_STATE_CANCEL: JobState

class Input(_message.Message):
    __slots__ = ("object", "bucket_id", "region", "url", "vod", "lang", "type", "basic_type", "cos_headers", "extra_nodes")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    VOD_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BASIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    COS_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    object: str
    bucket_id: str
    region: str
    url: str
    vod: Vod
    lang: str
    type: str
    basic_type: str
    cos_headers: _containers.RepeatedCompositeFieldContainer[CosHeader]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, object: _Optional[str] = ..., bucket_id: _Optional[str] = ..., region: _Optional[str] = ..., url: _Optional[str] = ..., vod: _Optional[_Union[Vod, _Mapping]] = ..., lang: _Optional[str] = ..., type: _Optional[str] = ..., basic_type: _Optional[str] = ..., cos_headers: _Optional[_Iterable[_Union[CosHeader, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CallBackMqConfig(_message.Message):
    __slots__ = ("mq_region", "mq_mode", "mq_name", "extra_nodes")
    MQ_REGION_FIELD_NUMBER: _ClassVar[int]
    MQ_MODE_FIELD_NUMBER: _ClassVar[int]
    MQ_NAME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    mq_region: str
    mq_mode: str
    mq_name: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, mq_region: _Optional[str] = ..., mq_mode: _Optional[str] = ..., mq_name: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("user_data", "job_level", "media_info", "tag", "template_id", "template_name", "transcode_template_id", "watermark_template_id", "watermark", "digital_watermark", "output", "free_transcode", "custom_id", "snapshot_prefix", "media_result", "transcode", "remove_watermark", "subtitles", "snapshot", "animation", "concat_template", "segment", "smart_cover", "voice_separate", "video_montage", "extract_digital_watermark", "sdr_to_hdr", "video_process", "super_resolution", "video_enhance", "extra_nodes")
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    JOB_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MEDIA_INFO_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    DIGITAL_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FREE_TRANSCODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MEDIA_RESULT_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    SUBTITLES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ANIMATION_FIELD_NUMBER: _ClassVar[int]
    CONCAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SMART_COVER_FIELD_NUMBER: _ClassVar[int]
    VOICE_SEPARATE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_MONTAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_DIGITAL_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    SDR_TO_HDR_FIELD_NUMBER: _ClassVar[int]
    VIDEO_PROCESS_FIELD_NUMBER: _ClassVar[int]
    SUPER_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ENHANCE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    user_data: str
    job_level: int
    media_info: MediaInfo
    tag: str
    template_id: str
    template_name: str
    transcode_template_id: str
    watermark_template_id: _containers.RepeatedScalarFieldContainer[str]
    watermark: _containers.RepeatedCompositeFieldContainer[_job_kinds_pb2.Watermark]
    digital_watermark: _job_kinds_pb2.DigitalWatermark
    output: _job_kinds_pb2.Output
    free_transcode: str
    custom_id: str
    snapshot_prefix: str
    media_result: _job_kinds_pb2.MediaResult
    transcode: _job_kinds_pb2.Transcode
    remove_watermark: _job_kinds_pb2.RemoveWatermark
    subtitles: _job_kinds_pb2.Subtitles
    snapshot: _job_kinds_pb2.Snapshot
    animation: _job_kinds_pb2.Animation
    concat_template: _job_kinds_pb2.ConcatTemplate
    segment: _job_kinds_pb2.Segment
    smart_cover: _job_kinds_pb2.SmartCover
    voice_separate: _job_kinds_pb2.VoiceSeparate
    video_montage: _job_kinds_pb2.VideoMontage
    extract_digital_watermark: _job_kinds_pb2.ExtractDigitalWatermark
    sdr_to_hdr: _job_kinds_pb2.SdrToHdr
    video_process: _job_kinds_pb2.VideoProcess
    super_resolution: _job_kinds_pb2.SuperResolution
    video_enhance: _job_kinds_pb2.VideoEnhance
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, user_data: _Optional[str] = ..., job_level: _Optional[int] = ..., media_info: _Optional[_Union[MediaInfo, _Mapping]] = ..., tag: _Optional[str] = ..., template_id: _Optional[str] = ..., template_name: _Optional[str] = ..., transcode_template_id: _Optional[str] = ..., watermark_template_id: _Optional[_Iterable[str]] = ..., watermark: _Optional[_Iterable[_Union[_job_kinds_pb2.Watermark, _Mapping]]] = ..., digital_watermark: _Optional[_Union[_job_kinds_pb2.DigitalWatermark, _Mapping]] = ..., output: _Optional[_Union[_job_kinds_pb2.Output, _Mapping]] = ..., free_transcode: _Optional[str] = ..., custom_id: _Optional[str] = ..., snapshot_prefix: _Optional[str] = ..., media_result: _Optional[_Union[_job_kinds_pb2.MediaResult, _Mapping]] = ..., transcode: _Optional[_Union[_job_kinds_pb2.Transcode, _Mapping]] = ..., remove_watermark: _Optional[_Union[_job_kinds_pb2.RemoveWatermark, _Mapping]] = ..., subtitles: _Optional[_Union[_job_kinds_pb2.Subtitles, _Mapping]] = ..., snapshot: _Optional[_Union[_job_kinds_pb2.Snapshot, _Mapping]] = ..., animation: _Optional[_Union[_job_kinds_pb2.Animation, _Mapping]] = ..., concat_template: _Optional[_Union[_job_kinds_pb2.ConcatTemplate, _Mapping]] = ..., segment: _Optional[_Union[_job_kinds_pb2.Segment, _Mapping]] = ..., smart_cover: _Optional[_Union[_job_kinds_pb2.SmartCover, _Mapping]] = ..., voice_separate: _Optional[_Union[_job_kinds_pb2.VoiceSeparate, _Mapping]] = ..., video_montage: _Optional[_Union[_job_kinds_pb2.VideoMontage, _Mapping]] = ..., extract_digital_watermark: _Optional[_Union[_job_kinds_pb2.ExtractDigitalWatermark, _Mapping]] = ..., sdr_to_hdr: _Optional[_Union[_job_kinds_pb2.SdrToHdr, _Mapping]] = ..., video_process: _Optional[_Union[_job_kinds_pb2.VideoProcess, _Mapping]] = ..., super_resolution: _Optional[_Union[_job_kinds_pb2.SuperResolution, _Mapping]] = ..., video_enhance: _Optional[_Union[_job_kinds_pb2.VideoEnhance, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("tag", "input", "operation", "queue_id", "call_back_format", "call_back_type", "call_back", "call_back_mq_config", "queue_type", "call_back_kafka_config", "extra_nodes")
    TAG_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_MQ_CONFIG_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_KAFKA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    tag: str
    input: Input
    operation: Operation
    queue_id: str
    call_back_format: str
    call_back_type: str
    call_back: str
    call_back_mq_config: CallBackMqConfig
    queue_type: str
    call_back_kafka_config: CallBackKafkaConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, tag: _Optional[str] = ..., input: _Optional[_Union[Input, _Mapping]] = ..., operation: _Optional[_Union[Operation, _Mapping]] = ..., queue_id: _Optional[str] = ..., call_back_format: _Optional[str] = ..., call_back_type: _Optional[str] = ..., call_back: _Optional[str] = ..., call_back_mq_config: _Optional[_Union[CallBackMqConfig, _Mapping]] = ..., queue_type: _Optional[str] = ..., call_back_kafka_config: _Optional[_Union[CallBackKafkaConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MultiOperationRequest(_message.Message):
    __slots__ = ("input", "operation", "queue_id", "call_back_format", "call_back_type", "call_back", "call_back_mq_config", "queue_type", "call_back_kafka_config", "extra_nodes")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_MQ_CONFIG_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALL_BACK_KAFKA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    input: Input
    operation: _containers.RepeatedCompositeFieldContainer[Operation]
    queue_id: str
    call_back_format: str
    call_back_type: str
    call_back: str
    call_back_mq_config: CallBackMqConfig
    queue_type: str
    call_back_kafka_config: CallBackKafkaConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, input: _Optional[_Union[Input, _Mapping]] = ..., operation: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., queue_id: _Optional[str] = ..., call_back_format: _Optional[str] = ..., call_back_type: _Optional[str] = ..., call_back: _Optional[str] = ..., call_back_mq_config: _Optional[_Union[CallBackMqConfig, _Mapping]] = ..., queue_type: _Optional[str] = ..., call_back_kafka_config: _Optional[_Union[CallBackKafkaConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class JobsDetail(_message.Message):
    __slots__ = ("code", "message", "job_id", "tag", "state", "state_text", "creation_time", "start_time", "end_time", "queue_id", "progress", "sub_tag", "input", "operation", "workflow", "raw_xml", "outputs", "extra_nodes")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUB_TAG_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    RAW_XML_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    job_id: str
    tag: str
    state: JobState
    state_text: str
    creation_time: str
    start_time: str
    end_time: str
    queue_id: str
    progress: str
    sub_tag: str
    input: Input
    operation: Operation
    workflow: _containers.RepeatedCompositeFieldContainer[JobWorkflow]
    raw_xml: str
    outputs: _containers.RepeatedCompositeFieldContainer[_outputs_pb2.OutputObject]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., job_id: _Optional[str] = ..., tag: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., state_text: _Optional[str] = ..., creation_time: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., queue_id: _Optional[str] = ..., progress: _Optional[str] = ..., sub_tag: _Optional[str] = ..., input: _Optional[_Union[Input, _Mapping]] = ..., operation: _Optional[_Union[Operation, _Mapping]] = ..., workflow: _Optional[_Iterable[_Union[JobWorkflow, _Mapping]]] = ..., raw_xml: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_outputs_pb2.OutputObject, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class JobCallback(_message.Message):
    __slots__ = ("event_name", "jobs_detail", "extra_nodes")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    JOBS_DETAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    jobs_detail: _containers.RepeatedCompositeFieldContainer[JobsDetail]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, event_name: _Optional[str] = ..., jobs_detail: _Optional[_Iterable[_Union[JobsDetail, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaInfo(_message.Message):
    __slots__ = ("format", "stream", "extra_nodes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    format: Format
    stream: Stream
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, format: _Optional[_Union[Format, _Mapping]] = ..., stream: _Optional[_Union[Stream, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Format(_message.Message):
    __slots__ = ("num_stream", "num_program", "format_name", "format_long_name", "start_time", "duration", "bitrate", "size", "extra_nodes")
    NUM_STREAM_FIELD_NUMBER: _ClassVar[int]
    NUM_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FORMAT_NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_LONG_NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    num_stream: str
    num_program: str
    format_name: str
    format_long_name: str
    start_time: str
    duration: str
    bitrate: str
    size: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, num_stream: _Optional[str] = ..., num_program: _Optional[str] = ..., format_name: _Optional[str] = ..., format_long_name: _Optional[str] = ..., start_time: _Optional[str] = ..., duration: _Optional[str] = ..., bitrate: _Optional[str] = ..., size: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Stream(_message.Message):
    __slots__ = ("video", "audio", "subtitle", "extra_nodes")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    video: _containers.RepeatedCompositeFieldContainer[Video]
    audio: _containers.RepeatedCompositeFieldContainer[Audio]
    subtitle: _containers.RepeatedCompositeFieldContainer[Subtitle]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, video: _Optional[_Iterable[_Union[Video, _Mapping]]] = ..., audio: _Optional[_Iterable[_Union[Audio, _Mapping]]] = ..., subtitle: _Optional[_Iterable[_Union[Subtitle, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("index", "codec_name", "codec_long_name", "codec_time_base", "codec_tag_string", "codec_tag", "color_primaries", "color_range", "color_transfer", "profile", "height", "width", "has_b_frame", "ref_frames", "sar", "dar", "pix_format", "field_order", "level", "fps", "avg_fps", "timebase", "start_time", "duration", "bitrate", "num_frames", "language", "rotation", "extra_nodes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODEC_NAME_FIELD_NUMBER: _ClassVar[int]
    CODEC_LONG_NAME_FIELD_NUMBER: _ClassVar[int]
    CODEC_TIME_BASE_FIELD_NUMBER: _ClassVar[int]
    CODEC_TAG_STRING_FIELD_NUMBER: _ClassVar[int]
    CODEC_TAG_FIELD_NUMBER: _ClassVar[int]
    COLOR_PRIMARIES_FIELD_NUMBER: _ClassVar[int]
    COLOR_RANGE_FIELD_NUMBER: _ClassVar[int]
    COLOR_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HAS_B_FRAME_FIELD_NUMBER: _ClassVar[int]
    REF_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SAR_FIELD_NUMBER: _ClassVar[int]
    DAR_FIELD_NUMBER: _ClassVar[int]
    PIX_FORMAT_FIELD_NUMBER: _ClassVar[int]
    FIELD_ORDER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    AVG_FPS_FIELD_NUMBER: _ClassVar[int]
    TIMEBASE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    index: str
    codec_name: str
    codec_long_name: str
    codec_time_base: str
    codec_tag_string: str
    codec_tag: str
    color_primaries: str
    color_range: str
    color_transfer: str
    profile: str
    height: str
    width: str
    has_b_frame: str
    ref_frames: str
    sar: str
    dar: str
    pix_format: str
    field_order: str
    level: str
    fps: str
    avg_fps: str
    timebase: str
    start_time: str
    duration: str
    bitrate: str
    num_frames: str
    language: str
    rotation: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, index: _Optional[str] = ..., codec_name: _Optional[str] = ..., codec_long_name: _Optional[str] = ..., codec_time_base: _Optional[str] = ..., codec_tag_string: _Optional[str] = ..., codec_tag: _Optional[str] = ..., color_primaries: _Optional[str] = ..., color_range: _Optional[str] = ..., color_transfer: _Optional[str] = ..., profile: _Optional[str] = ..., height: _Optional[str] = ..., width: _Optional[str] = ..., has_b_frame: _Optional[str] = ..., ref_frames: _Optional[str] = ..., sar: _Optional[str] = ..., dar: _Optional[str] = ..., pix_format: _Optional[str] = ..., field_order: _Optional[str] = ..., level: _Optional[str] = ..., fps: _Optional[str] = ..., avg_fps: _Optional[str] = ..., timebase: _Optional[str] = ..., start_time: _Optional[str] = ..., duration: _Optional[str] = ..., bitrate: _Optional[str] = ..., num_frames: _Optional[str] = ..., language: _Optional[str] = ..., rotation: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Audio(_message.Message):
    __slots__ = ("index", "codec_name", "codec_long_name", "codec_time_base", "codec_tag_string", "codec_tag", "sample_fmt", "sample_rate", "channel", "channel_layout", "timebase", "start_time", "duration", "bitrate", "language", "extra_nodes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODEC_NAME_FIELD_NUMBER: _ClassVar[int]
    CODEC_LONG_NAME_FIELD_NUMBER: _ClassVar[int]
    CODEC_TIME_BASE_FIELD_NUMBER: _ClassVar[int]
    CODEC_TAG_STRING_FIELD_NUMBER: _ClassVar[int]
    CODEC_TAG_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FMT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    TIMEBASE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    index: str
    codec_name: str
    codec_long_name: str
    codec_time_base: str
    codec_tag_string: str
    codec_tag: str
    sample_fmt: str
    sample_rate: str
    channel: str
    channel_layout: str
    timebase: str
    start_time: str
    duration: str
    bitrate: str
    language: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, index: _Optional[str] = ..., codec_name: _Optional[str] = ..., codec_long_name: _Optional[str] = ..., codec_time_base: _Optional[str] = ..., codec_tag_string: _Optional[str] = ..., codec_tag: _Optional[str] = ..., sample_fmt: _Optional[str] = ..., sample_rate: _Optional[str] = ..., channel: _Optional[str] = ..., channel_layout: _Optional[str] = ..., timebase: _Optional[str] = ..., start_time: _Optional[str] = ..., duration: _Optional[str] = ..., bitrate: _Optional[str] = ..., language: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Subtitle(_message.Message):
    __slots__ = ("index", "language", "extra_nodes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    index: str
    language: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, index: _Optional[str] = ..., language: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Vod(_message.Message):
    __slots__ = ("file_id", "sub_app_id", "extra_nodes")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    SUB_APP_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    sub_app_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, file_id: _Optional[str] = ..., sub_app_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CosHeader(_message.Message):
    __slots__ = ("key", "value", "extra_nodes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CallBackKafkaConfig(_message.Message):
    __slots__ = ("region", "instance_id", "topic", "extra_nodes")
    REGION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    region: str
    instance_id: str
    topic: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, region: _Optional[str] = ..., instance_id: _Optional[str] = ..., topic: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class JobWorkflow(_message.Message):
    __slots__ = ("name", "run_id", "workflow_id", "workflow_name", "extra_nodes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    name: str
    run_id: str
    workflow_id: str
    workflow_name: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, name: _Optional[str] = ..., run_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...
