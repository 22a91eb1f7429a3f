from gateway._proto import job_kinds_pb2 as _job_kinds_pb2
from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TemplateCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_CATEGORY_UNSPECIFIED: _ClassVar[TemplateCategory]
    TEMPLATE_CATEGORY_CUSTOM: _ClassVar[TemplateCategory]
    TEMPLATE_CATEGORY_OFFICIAL: _ClassVar[TemplateCategory]
TEMPLATE_CATEGORY_UNSPECIFIED: TemplateCategory
TEMPLATE_CATEGORY_CUSTOM: TemplateCategory
TEMPLATE_CATEGORY_OFFICIAL: TemplateCategory
TEMPLATE_PARAMS_FIELD_NUMBER: _ClassVar[int]
template_params: _descriptor.FieldDescriptor

class TemplateContainer(_message.Message):
    __slots__ = ("tag", "at_request_root")
    TAG_FIELD_NUMBER: _ClassVar[int]
    AT_REQUEST_ROOT_FIELD_NUMBER: _ClassVar[int]
    tag: str
    at_request_root: bool
    def __init__(self, tag: _Optional[str] = ..., at_request_root: _Optional[bool] = ...) -> None: ...

class TranscodeProVideo(_message.Message):
    __slots__ = ("codec", "profile", "width", "height", "interlaced", "fps", "bitrate", "rotate", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INTERLACED_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    profile: str
    width: str
    height: str
    interlaced: str
    fps: str
    bitrate: str
    rotate: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., profile: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., interlaced: _Optional[str] = ..., fps: _Optional[str] = ..., bitrate: _Optional[str] = ..., rotate: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TranscodeProAudio(_message.Message):
    __slots__ = ("codec", "remove", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    remove: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., remove: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TranscodePro(_message.Message):
    __slots__ = ("container", "video", "audio", "time_interval", "trans_config", "extra_nodes")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TIME_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TRANS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    container: _job_kinds_pb2.Container
    video: TranscodeProVideo
    audio: TranscodeProAudio
    time_interval: _job_kinds_pb2.TimeInterval
    trans_config: _job_kinds_pb2.TransConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, container: _Optional[_Union[_job_kinds_pb2.Container, _Mapping]] = ..., video: _Optional[_Union[TranscodeProVideo, _Mapping]] = ..., audio: _Optional[_Union[TranscodeProAudio, _Mapping]] = ..., time_interval: _Optional[_Union[_job_kinds_pb2.TimeInterval, _Mapping]] = ..., trans_config: _Optional[_Union[_job_kinds_pb2.TransConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaTemplate(_message.Message):
    __slots__ = ("template_id", "tag", "name", "bucket_id", "category", "create_time", "update_time", "trans_tpl", "trans_pro_tpl", "snapshot", "animation", "concat_template", "watermark", "video_process", "video_montage", "voice_separate", "super_resolution", "smart_cover", "video_enhance", "extra_nodes")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANS_TPL_FIELD_NUMBER: _ClassVar[int]
    TRANS_PRO_TPL_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ANIMATION_FIELD_NUMBER: _ClassVar[int]
    CONCAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    VIDEO_PROCESS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_MONTAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_SEPARATE_FIELD_NUMBER: _ClassVar[int]
    SUPER_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    SMART_COVER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ENHANCE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    tag: str
    name: str
    bucket_id: str
    category: str
    create_time: str
    update_time: str
    trans_tpl: _job_kinds_pb2.Transcode
    trans_pro_tpl: TranscodePro
    snapshot: _job_kinds_pb2.Snapshot
    animation: _job_kinds_pb2.Animation
    concat_template: _job_kinds_pb2.ConcatTemplate
    watermark: _job_kinds_pb2.Watermark
    video_process: _job_kinds_pb2.VideoProcess
    video_montage: _job_kinds_pb2.VideoMontage
    voice_separate: _job_kinds_pb2.VoiceSeparate
    super_resolution: _job_kinds_pb2.SuperResolution
    smart_cover: _job_kinds_pb2.SmartCover
    video_enhance: _job_kinds_pb2.VideoEnhance
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, template_id: _Optional[str] = ..., tag: _Optional[str] = ..., name: _Optional[str] = ..., bucket_id: _Optional[str] = ..., category: _Optional[str] = ..., create_time: _Optional[str] = ..., update_time: _Optional[str] = ..., trans_tpl: _Optional[_Union[_job_kinds_pb2.Transcode, _Mapping]] = ..., trans_pro_tpl: _Optional[_Union[TranscodePro, _Mapping]] = ..., snapshot: _Optional[_Union[_job_kinds_pb2.Snapshot, _Mapping]] = ..., animation: _Optional[_Union[_job_kinds_pb2.Animation, _Mapping]] = ..., concat_template: _Optional[_Union[_job_kinds_pb2.ConcatTemplate, _Mapping]] = ..., watermark: _Optional[_Union[_job_kinds_pb2.Watermark, _Mapping]] = ..., video_process: _Optional[_Union[_job_kinds_pb2.VideoProcess, _Mapping]] = ..., video_montage: _Optional[_Union[_job_kinds_pb2.VideoMontage, _Mapping]] = ..., voice_separate: _Optional[_Union[_job_kinds_pb2.VoiceSeparate, _Mapping]] = ..., super_resolution: _Optional[_Union[_job_kinds_pb2.SuperResolution, _Mapping]] = ..., smart_cover: _Optional[_Union[_job_kinds_pb2.SmartCover, _Mapping]] = ..., video_enhance: _Optional[_Union[_job_kinds_pb2.VideoEnhance, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CreateMediaTemplateRequest(_message.Message):
    __slots__ = ("bucket", "region", "template", "parameters")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    template: MediaTemplate
    parameters: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., template: _Optional[_Union[MediaTemplate, _Mapping]] = ..., parameters: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class CreateMediaTemplateResponse(_message.Message):
    __slots__ = ("request_id", "template", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    template: MediaTemplate
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., template: _Optional[_Union[MediaTemplate, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class UpdateMediaTemplateRequest(_message.Message):
    __slots__ = ("bucket", "region", "template_id", "template", "parameters")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    template_id: str
    template: MediaTemplate
    parameters: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., template_id: _Optional[str] = ..., template: _Optional[_Union[MediaTemplate, _Mapping]] = ..., parameters: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class UpdateMediaTemplateResponse(_message.Message):
    __slots__ = ("request_id", "template", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    template: MediaTemplate
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., template: _Optional[_Union[MediaTemplate, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DescribeMediaTemplatesRequest(_message.Message):
    __slots__ = ("bucket", "region", "tag", "category", "template_ids", "name", "page_number", "page_size")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_IDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    tag: str
    category: TemplateCategory
    template_ids: _containers.RepeatedScalarFieldContainer[str]
    name: str
    page_number: int
    page_size: int
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., tag: _Optional[str] = ..., category: _Optional[_Union[TemplateCategory, str]] = ..., template_ids: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., page_number: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class DescribeMediaTemplatesResponse(_message.Message):
    __slots__ = ("request_id", "total_count", "page_number", "page_size", "template_list", "non_exist_tids", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_LIST_FIELD_NUMBER: _ClassVar[int]
    NON_EXIST_TIDS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    total_count: str
    page_number: str
    page_size: str
    template_list: _containers.RepeatedCompositeFieldContainer[MediaTemplate]
    non_exist_tids: TemplateIdList
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., total_count: _Optional[str] = ..., page_number: _Optional[str] = ..., page_size: _Optional[str] = ..., template_list: _Optional[_Iterable[_Union[MediaTemplate, _Mapping]]] = ..., non_exist_tids: _Optional[_Union[TemplateIdList, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TemplateIdList(_message.Message):
    __slots__ = ("template_id", "extra_nodes")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    template_id: _containers.RepeatedScalarFieldContainer[str]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, template_id: _Optional[_Iterable[str]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DeleteMediaTemplateRequest(_message.Message):
    __slots__ = ("bucket", "region", "template_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    template_id: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., template_id: _Optional[str] = ...) -> None: ...

class DeleteMediaTemplateResponse(_message.Message):
    __slots__ = ("request_id", "template_id", "extra_nodes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    template_id: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, request_id: _Optional[str] = ..., template_id: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...
