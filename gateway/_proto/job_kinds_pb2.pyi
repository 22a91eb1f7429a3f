from gateway._proto import xml_pb2 as _xml_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Output(_message.Message):
    __slots__ = ("region", "bucket", "object", "sprite_object", "au_object", "bass_object", "drum_object", "stream_extract", "force", "extra_nodes")
    REGION_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SPRITE_OBJECT_FIELD_NUMBER: _ClassVar[int]
    AU_OBJECT_FIELD_NUMBER: _ClassVar[int]
    BASS_OBJECT_FIELD_NUMBER: _ClassVar[int]
    DRUM_OBJECT_FIELD_NUMBER: _ClassVar[int]
    STREAM_EXTRACT_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    region: str
    bucket: str
    object: str
    sprite_object: str
    au_object: str
    bass_object: str
    drum_object: str
    stream_extract: _containers.RepeatedCompositeFieldContainer[StreamExtract]
    force: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, region: _Optional[str] = ..., bucket: _Optional[str] = ..., object: _Optional[str] = ..., sprite_object: _Optional[str] = ..., au_object: _Optional[str] = ..., bass_object: _Optional[str] = ..., drum_object: _Optional[str] = ..., stream_extract: _Optional[_Iterable[_Union[StreamExtract, _Mapping]]] = ..., force: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class StreamExtract(_message.Message):
    __slots__ = ("index", "object", "extra_nodes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    index: str
    object: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, index: _Optional[str] = ..., object: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("format", "clip_config", "extra_nodes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CLIP_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    format: str
    clip_config: ClipConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, format: _Optional[str] = ..., clip_config: _Optional[_Union[ClipConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ClipConfig(_message.Message):
    __slots__ = ("duration", "extra_nodes")
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    duration: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, duration: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TimeInterval(_message.Message):
    __slots__ = ("start", "duration", "extra_nodes")
    START_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    start: str
    duration: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, start: _Optional[str] = ..., duration: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TranscodeVideo(_message.Message):
    __slots__ = ("codec", "width", "height", "fps", "remove", "profile", "bitrate", "crf", "gop", "preset", "bufsize", "maxrate", "hls_ts_time", "dash_segment", "pixfmt", "long_short_mode", "rotate", "scan_mode", "interlaced", "quality", "roi", "crop", "animate_only_keep_key_frame", "animate_time_interval_of_frame", "animate_frames_per_second", "std_ext_info", "color_param", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    CRF_FIELD_NUMBER: _ClassVar[int]
    GOP_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    BUFSIZE_FIELD_NUMBER: _ClassVar[int]
    MAXRATE_FIELD_NUMBER: _ClassVar[int]
    HLS_TS_TIME_FIELD_NUMBER: _ClassVar[int]
    DASH_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    PIXFMT_FIELD_NUMBER: _ClassVar[int]
    LONG_SHORT_MODE_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    SCAN_MODE_FIELD_NUMBER: _ClassVar[int]
    INTERLACED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_ONLY_KEEP_KEY_FRAME_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_TIME_INTERVAL_OF_FRAME_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STD_EXT_INFO_FIELD_NUMBER: _ClassVar[int]
    COLOR_PARAM_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    width: str
    height: str
    fps: str
    remove: str
    profile: str
    bitrate: str
    crf: str
    gop: str
    preset: str
    bufsize: str
    maxrate: str
    hls_ts_time: str
    dash_segment: str
    pixfmt: str
    long_short_mode: str
    rotate: str
    scan_mode: str
    interlaced: str
    quality: str
    roi: str
    crop: str
    animate_only_keep_key_frame: str
    animate_time_interval_of_frame: str
    animate_frames_per_second: str
    std_ext_info: str
    color_param: ColorParam
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., fps: _Optional[str] = ..., remove: _Optional[str] = ..., profile: _Optional[str] = ..., bitrate: _Optional[str] = ..., crf: _Optional[str] = ..., gop: _Optional[str] = ..., preset: _Optional[str] = ..., bufsize: _Optional[str] = ..., maxrate: _Optional[str] = ..., hls_ts_time: _Optional[str] = ..., dash_segment: _Optional[str] = ..., pixfmt: _Optional[str] = ..., long_short_mode: _Optional[str] = ..., rotate: _Optional[str] = ..., scan_mode: _Optional[str] = ..., interlaced: _Optional[str] = ..., quality: _Optional[str] = ..., roi: _Optional[str] = ..., crop: _Optional[str] = ..., animate_only_keep_key_frame: _Optional[str] = ..., animate_time_interval_of_frame: _Optional[str] = ..., animate_frames_per_second: _Optional[str] = ..., std_ext_info: _Optional[str] = ..., color_param: _Optional[_Union[ColorParam, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ColorParam(_message.Message):
    __slots__ = ("color_range", "color_space", "color_trc", "color_primaries", "extra_nodes")
    COLOR_RANGE_FIELD_NUMBER: _ClassVar[int]
    COLOR_SPACE_FIELD_NUMBER: _ClassVar[int]
    COLOR_TRC_FIELD_NUMBER: _ClassVar[int]
    COLOR_PRIMARIES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    color_range: str
    color_space: str
    color_trc: str
    color_primaries: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, color_range: _Optional[str] = ..., color_space: _Optional[str] = ..., color_trc: _Optional[str] = ..., color_primaries: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TranscodeAudio(_message.Message):
    __slots__ = ("codec", "samplerate", "bitrate", "channels", "remove", "keep_two_tracks", "switch_track", "sample_format", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLERATE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    KEEP_TWO_TRACKS_FIELD_NUMBER: _ClassVar[int]
    SWITCH_TRACK_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    samplerate: str
    bitrate: str
    channels: str
    remove: str
    keep_two_tracks: str
    switch_track: str
    sample_format: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., samplerate: _Optional[str] = ..., bitrate: _Optional[str] = ..., channels: _Optional[str] = ..., remove: _Optional[str] = ..., keep_two_tracks: _Optional[str] = ..., switch_track: _Optional[str] = ..., sample_format: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TransConfig(_message.Message):
    __slots__ = ("adj_dar_method", "is_check_reso", "reso_adj_method", "is_check_video_bitrate", "video_bitrate_adj_method", "is_check_audio_bitrate", "audio_bitrate_adj_method", "is_check_video_fps", "video_fps_adj_method", "delete_metadata", "is_hdr2sdr", "trans_mode", "hls_encrypt", "aigc_metadata", "extra_nodes")
    ADJ_DAR_METHOD_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_RESO_FIELD_NUMBER: _ClassVar[int]
    RESO_ADJ_METHOD_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_VIDEO_BITRATE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_BITRATE_ADJ_METHOD_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_AUDIO_BITRATE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BITRATE_ADJ_METHOD_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_VIDEO_FPS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FPS_ADJ_METHOD_FIELD_NUMBER: _ClassVar[int]
    DELETE_METADATA_FIELD_NUMBER: _ClassVar[int]
    IS_HDR2SDR_FIELD_NUMBER: _ClassVar[int]
    TRANS_MODE_FIELD_NUMBER: _ClassVar[int]
    HLS_ENCRYPT_FIELD_NUMBER: _ClassVar[int]
    AIGC_METADATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    adj_dar_method: str
    is_check_reso: str
    reso_adj_method: str
    is_check_video_bitrate: str
    video_bitrate_adj_method: str
    is_check_audio_bitrate: str
    audio_bitrate_adj_method: str
    is_check_video_fps: str
    video_fps_adj_method: str
    delete_metadata: str
    is_hdr2sdr: str
    trans_mode: str
    hls_encrypt: HlsEncrypt
    aigc_metadata: AigcMetadata
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, adj_dar_method: _Optional[str] = ..., is_check_reso: _Optional[str] = ..., reso_adj_method: _Optional[str] = ..., is_check_video_bitrate: _Optional[str] = ..., video_bitrate_adj_method: _Optional[str] = ..., is_check_audio_bitrate: _Optional[str] = ..., audio_bitrate_adj_method: _Optional[str] = ..., is_check_video_fps: _Optional[str] = ..., video_fps_adj_method: _Optional[str] = ..., delete_metadata: _Optional[str] = ..., is_hdr2sdr: _Optional[str] = ..., trans_mode: _Optional[str] = ..., hls_encrypt: _Optional[_Union[HlsEncrypt, _Mapping]] = ..., aigc_metadata: _Optional[_Union[AigcMetadata, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class HlsEncrypt(_message.Message):
    __slots__ = ("is_hls_encrypt", "uri_key", "extra_nodes")
    IS_HLS_ENCRYPT_FIELD_NUMBER: _ClassVar[int]
    URI_KEY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    is_hls_encrypt: str
    uri_key: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, is_hls_encrypt: _Optional[str] = ..., uri_key: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class AigcMetadata(_message.Message):
    __slots__ = ("label", "content_producer", "produce_id", "reserved_code1", "content_propagator", "propagate_id", "reserved_code2", "extra_nodes")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_PRODUCER_FIELD_NUMBER: _ClassVar[int]
    PRODUCE_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CODE1_FIELD_NUMBER: _ClassVar[int]
    CONTENT_PROPAGATOR_FIELD_NUMBER: _ClassVar[int]
    PROPAGATE_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CODE2_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    label: str
    content_producer: str
    produce_id: str
    reserved_code1: str
    content_propagator: str
    propagate_id: str
    reserved_code2: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, label: _Optional[str] = ..., content_producer: _Optional[str] = ..., produce_id: _Optional[str] = ..., reserved_code1: _Optional[str] = ..., content_propagator: _Optional[str] = ..., propagate_id: _Optional[str] = ..., reserved_code2: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class AudioMix(_message.Message):
    __slots__ = ("audio_source", "mix_mode", "replace", "effect_config", "extra_nodes")
    AUDIO_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MIX_MODE_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    EFFECT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    audio_source: str
    mix_mode: str
    replace: str
    effect_config: EffectConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, audio_source: _Optional[str] = ..., mix_mode: _Optional[str] = ..., replace: _Optional[str] = ..., effect_config: _Optional[_Union[EffectConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class EffectConfig(_message.Message):
    __slots__ = ("enable_start_fadein", "start_fadein_time", "enable_end_fadeout", "end_fadeout_time", "enable_bgm_fade", "bgm_fade_time", "extra_nodes")
    ENABLE_START_FADEIN_FIELD_NUMBER: _ClassVar[int]
    START_FADEIN_TIME_FIELD_NUMBER: _ClassVar[int]
    ENABLE_END_FADEOUT_FIELD_NUMBER: _ClassVar[int]
    END_FADEOUT_TIME_FIELD_NUMBER: _ClassVar[int]
    ENABLE_BGM_FADE_FIELD_NUMBER: _ClassVar[int]
    BGM_FADE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    enable_start_fadein: str
    start_fadein_time: str
    enable_end_fadeout: str
    end_fadeout_time: str
    enable_bgm_fade: str
    bgm_fade_time: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, enable_start_fadein: _Optional[str] = ..., start_fadein_time: _Optional[str] = ..., enable_end_fadeout: _Optional[str] = ..., end_fadeout_time: _Optional[str] = ..., enable_bgm_fade: _Optional[str] = ..., bgm_fade_time: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Watermark(_message.Message):
    __slots__ = ("type", "pos", "loc_mode", "dx", "dy", "start_time", "end_time", "slide_config", "image", "text", "extra_nodes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    LOC_MODE_FIELD_NUMBER: _ClassVar[int]
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SLIDE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    type: str
    pos: str
    loc_mode: str
    dx: str
    dy: str
    start_time: str
    end_time: str
    slide_config: SlideConfig
    image: WatermarkImage
    text: WatermarkText
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, type: _Optional[str] = ..., pos: _Optional[str] = ..., loc_mode: _Optional[str] = ..., dx: _Optional[str] = ..., dy: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., slide_config: _Optional[_Union[SlideConfig, _Mapping]] = ..., image: _Optional[_Union[WatermarkImage, _Mapping]] = ..., text: _Optional[_Union[WatermarkText, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SlideConfig(_message.Message):
    __slots__ = ("slide_mode", "x_slide_speed", "y_slide_speed", "extra_nodes")
    SLIDE_MODE_FIELD_NUMBER: _ClassVar[int]
    X_SLIDE_SPEED_FIELD_NUMBER: _ClassVar[int]
    Y_SLIDE_SPEED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    slide_mode: str
    x_slide_speed: str
    y_slide_speed: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, slide_mode: _Optional[str] = ..., x_slide_speed: _Optional[str] = ..., y_slide_speed: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WatermarkImage(_message.Message):
    __slots__ = ("url", "mode", "width", "height", "transparency", "background", "extra_nodes")
    URL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    url: str
    mode: str
    width: str
    height: str
    transparency: str
    background: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, url: _Optional[str] = ..., mode: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., transparency: _Optional[str] = ..., background: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class WatermarkText(_message.Message):
    __slots__ = ("font_size", "font_type", "font_color", "transparency", "text", "extra_nodes")
    FONT_SIZE_FIELD_NUMBER: _ClassVar[int]
    FONT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FONT_COLOR_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    font_size: str
    font_type: str
    font_color: str
    transparency: str
    text: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, font_size: _Optional[str] = ..., font_type: _Optional[str] = ..., font_color: _Optional[str] = ..., transparency: _Optional[str] = ..., text: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class DigitalWatermark(_message.Message):
    __slots__ = ("message", "type", "version", "ignore_error", "state", "extra_nodes")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IGNORE_ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    message: str
    type: str
    version: str
    ignore_error: str
    state: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, message: _Optional[str] = ..., type: _Optional[str] = ..., version: _Optional[str] = ..., ignore_error: _Optional[str] = ..., state: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ExtractDigitalWatermark(_message.Message):
    __slots__ = ("type", "version", "extra_nodes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    type: str
    version: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, type: _Optional[str] = ..., version: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Transcode(_message.Message):
    __slots__ = ("container", "video", "audio", "time_interval", "trans_config", "audio_mix", "audio_mix_array", "subtitle", "extra_nodes")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TIME_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TRANS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_ARRAY_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    container: Container
    video: TranscodeVideo
    audio: TranscodeAudio
    time_interval: TimeInterval
    trans_config: TransConfig
    audio_mix: AudioMix
    audio_mix_array: _containers.RepeatedCompositeFieldContainer[AudioMix]
    subtitle: TargetSubtitle
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, container: _Optional[_Union[Container, _Mapping]] = ..., video: _Optional[_Union[TranscodeVideo, _Mapping]] = ..., audio: _Optional[_Union[TranscodeAudio, _Mapping]] = ..., time_interval: _Optional[_Union[TimeInterval, _Mapping]] = ..., trans_config: _Optional[_Union[TransConfig, _Mapping]] = ..., audio_mix: _Optional[_Union[AudioMix, _Mapping]] = ..., audio_mix_array: _Optional[_Iterable[_Union[AudioMix, _Mapping]]] = ..., subtitle: _Optional[_Union[TargetSubtitle, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class TargetSubtitle(_message.Message):
    __slots__ = ("remove", "extra_nodes")
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    remove: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, remove: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class RemoveWatermark(_message.Message):
    __slots__ = ("dx", "dy", "width", "height", "extra_nodes")
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    dx: str
    dy: str
    width: str
    height: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, dx: _Optional[str] = ..., dy: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Subtitles(_message.Message):
    __slots__ = ("subtitle", "extra_nodes")
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    subtitle: _containers.RepeatedCompositeFieldContainer[SubtitleFile]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, subtitle: _Optional[_Iterable[_Union[SubtitleFile, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SubtitleFile(_message.Message):
    __slots__ = ("url", "embed", "font_type", "font_size", "font_color", "outline_color", "v_margin", "extra_nodes")
    URL_FIELD_NUMBER: _ClassVar[int]
    EMBED_FIELD_NUMBER: _ClassVar[int]
    FONT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FONT_SIZE_FIELD_NUMBER: _ClassVar[int]
    FONT_COLOR_FIELD_NUMBER: _ClassVar[int]
    OUTLINE_COLOR_FIELD_NUMBER: _ClassVar[int]
    V_MARGIN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    url: str
    embed: str
    font_type: str
    font_size: str
    font_color: str
    outline_color: str
    v_margin: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, url: _Optional[str] = ..., embed: _Optional[str] = ..., font_type: _Optional[str] = ..., font_size: _Optional[str] = ..., font_color: _Optional[str] = ..., outline_color: _Optional[str] = ..., v_margin: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("mode", "start", "time_interval", "count", "width", "height", "ci_param", "is_check_count", "is_check_black", "black_level", "pixel_black_threshold", "snapshot_out_mode", "sprite_snapshot_config", "extra_nodes")
    MODE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    TIME_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CI_PARAM_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_COUNT_FIELD_NUMBER: _ClassVar[int]
    IS_CHECK_BLACK_FIELD_NUMBER: _ClassVar[int]
    BLACK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    PIXEL_BLACK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_OUT_MODE_FIELD_NUMBER: _ClassVar[int]
    SPRITE_SNAPSHOT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    mode: str
    start: str
    time_interval: str
    count: str
    width: str
    height: str
    ci_param: str
    is_check_count: str
    is_check_black: str
    black_level: str
    pixel_black_threshold: str
    snapshot_out_mode: str
    sprite_snapshot_config: SpriteSnapshotConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, mode: _Optional[str] = ..., start: _Optional[str] = ..., time_interval: _Optional[str] = ..., count: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., ci_param: _Optional[str] = ..., is_check_count: _Optional[str] = ..., is_check_black: _Optional[str] = ..., black_level: _Optional[str] = ..., pixel_black_threshold: _Optional[str] = ..., snapshot_out_mode: _Optional[str] = ..., sprite_snapshot_config: _Optional[_Union[SpriteSnapshotConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SpriteSnapshotConfig(_message.Message):
    __slots__ = ("cell_height", "cell_width", "color", "columns", "lines", "margin", "padding", "scale_method", "extra_nodes")
    CELL_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CELL_WIDTH_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    SCALE_METHOD_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    cell_height: str
    cell_width: str
    color: str
    columns: str
    lines: str
    margin: str
    padding: str
    scale_method: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, cell_height: _Optional[str] = ..., cell_width: _Optional[str] = ..., color: _Optional[str] = ..., columns: _Optional[str] = ..., lines: _Optional[str] = ..., margin: _Optional[str] = ..., padding: _Optional[str] = ..., scale_method: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Animation(_message.Message):
    __slots__ = ("container", "video", "time_interval", "extra_nodes")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    TIME_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    container: Container
    video: AnimationVideo
    time_interval: TimeInterval
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, container: _Optional[_Union[Container, _Mapping]] = ..., video: _Optional[_Union[AnimationVideo, _Mapping]] = ..., time_interval: _Optional[_Union[TimeInterval, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class AnimationVideo(_message.Message):
    __slots__ = ("codec", "width", "height", "fps", "animate_only_keep_key_frame", "animate_time_interval_of_frame", "animate_frames_per_second", "quality", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_ONLY_KEEP_KEY_FRAME_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_TIME_INTERVAL_OF_FRAME_FIELD_NUMBER: _ClassVar[int]
    ANIMATE_FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    width: str
    height: str
    fps: str
    animate_only_keep_key_frame: str
    animate_time_interval_of_frame: str
    animate_frames_per_second: str
    quality: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., fps: _Optional[str] = ..., animate_only_keep_key_frame: _Optional[str] = ..., animate_time_interval_of_frame: _Optional[str] = ..., animate_frames_per_second: _Optional[str] = ..., quality: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ConcatTemplate(_message.Message):
    __slots__ = ("concat_fragment", "container", "video", "audio", "index", "direct_concat", "audio_mix", "audio_mix_array", "scene_change_info", "extra_nodes")
    CONCAT_FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DIRECT_CONCAT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_ARRAY_FIELD_NUMBER: _ClassVar[int]
    SCENE_CHANGE_INFO_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    concat_fragment: _containers.RepeatedCompositeFieldContainer[ConcatFragment]
    container: Container
    video: TranscodeVideo
    audio: TranscodeAudio
    index: str
    direct_concat: str
    audio_mix: AudioMix
    audio_mix_array: _containers.RepeatedCompositeFieldContainer[AudioMix]
    scene_change_info: SceneChangeInfo
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, concat_fragment: _Optional[_Iterable[_Union[ConcatFragment, _Mapping]]] = ..., container: _Optional[_Union[Container, _Mapping]] = ..., video: _Optional[_Union[TranscodeVideo, _Mapping]] = ..., audio: _Optional[_Union[TranscodeAudio, _Mapping]] = ..., index: _Optional[str] = ..., direct_concat: _Optional[str] = ..., audio_mix: _Optional[_Union[AudioMix, _Mapping]] = ..., audio_mix_array: _Optional[_Iterable[_Union[AudioMix, _Mapping]]] = ..., scene_change_info: _Optional[_Union[SceneChangeInfo, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ConcatFragment(_message.Message):
    __slots__ = ("url", "mode", "start_time", "end_time", "fragment_index", "duration", "extra_nodes")
    URL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FRAGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    url: str
    mode: str
    start_time: str
    end_time: str
    fragment_index: str
    duration: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, url: _Optional[str] = ..., mode: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., fragment_index: _Optional[str] = ..., duration: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SceneChangeInfo(_message.Message):
    __slots__ = ("mode", "time", "transition_type", "extra_nodes")
    MODE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    mode: str
    time: str
    transition_type: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, mode: _Optional[str] = ..., time: _Optional[str] = ..., transition_type: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("format", "duration", "transcode_index", "hls_encrypt", "start_time", "end_time", "aigc_metadata", "extra_nodes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    TRANSCODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    HLS_ENCRYPT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    AIGC_METADATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    format: str
    duration: str
    transcode_index: str
    hls_encrypt: HlsEncrypt
    start_time: str
    end_time: str
    aigc_metadata: AigcMetadata
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, format: _Optional[str] = ..., duration: _Optional[str] = ..., transcode_index: _Optional[str] = ..., hls_encrypt: _Optional[_Union[HlsEncrypt, _Mapping]] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., aigc_metadata: _Optional[_Union[AigcMetadata, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SmartCover(_message.Message):
    __slots__ = ("format", "width", "height", "count", "delete_duplicates", "extra_nodes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETE_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    format: str
    width: str
    height: str
    count: str
    delete_duplicates: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, format: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., count: _Optional[str] = ..., delete_duplicates: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VoiceSeparate(_message.Message):
    __slots__ = ("audio_mode", "audio_config", "extra_nodes")
    AUDIO_MODE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    audio_mode: str
    audio_config: AudioConfig
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, audio_mode: _Optional[str] = ..., audio_config: _Optional[_Union[AudioConfig, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class AudioConfig(_message.Message):
    __slots__ = ("codec", "samplerate", "bitrate", "channels", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLERATE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    samplerate: str
    bitrate: str
    channels: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., samplerate: _Optional[str] = ..., bitrate: _Optional[str] = ..., channels: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VideoMontage(_message.Message):
    __slots__ = ("container", "video", "audio", "duration", "scene", "audio_mix", "audio_mix_array", "extra_nodes")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MIX_ARRAY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    container: Container
    video: VideoMontageVideo
    audio: TranscodeAudio
    duration: str
    scene: str
    audio_mix: AudioMix
    audio_mix_array: _containers.RepeatedCompositeFieldContainer[AudioMix]
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, container: _Optional[_Union[Container, _Mapping]] = ..., video: _Optional[_Union[VideoMontageVideo, _Mapping]] = ..., audio: _Optional[_Union[TranscodeAudio, _Mapping]] = ..., duration: _Optional[str] = ..., scene: _Optional[str] = ..., audio_mix: _Optional[_Union[AudioMix, _Mapping]] = ..., audio_mix_array: _Optional[_Iterable[_Union[AudioMix, _Mapping]]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VideoMontageVideo(_message.Message):
    __slots__ = ("codec", "width", "height", "fps", "remove", "bitrate", "crf", "extra_nodes")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    CRF_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    codec: str
    width: str
    height: str
    fps: str
    remove: str
    bitrate: str
    crf: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, codec: _Optional[str] = ..., width: _Optional[str] = ..., height: _Optional[str] = ..., fps: _Optional[str] = ..., remove: _Optional[str] = ..., bitrate: _Optional[str] = ..., crf: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SdrToHdr(_message.Message):
    __slots__ = ("hdr_mode", "extra_nodes")
    HDR_MODE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    hdr_mode: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, hdr_mode: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VideoProcess(_message.Message):
    __slots__ = ("color_enhance", "ms_sharpen", "extra_nodes")
    COLOR_ENHANCE_FIELD_NUMBER: _ClassVar[int]
    MS_SHARPEN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    color_enhance: ColorEnhance
    ms_sharpen: MsSharpen
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, color_enhance: _Optional[_Union[ColorEnhance, _Mapping]] = ..., ms_sharpen: _Optional[_Union[MsSharpen, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class ColorEnhance(_message.Message):
    __slots__ = ("enable", "contrast", "correction", "saturation", "extra_nodes")
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    enable: str
    contrast: str
    correction: str
    saturation: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, enable: _Optional[str] = ..., contrast: _Optional[str] = ..., correction: _Optional[str] = ..., saturation: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MsSharpen(_message.Message):
    __slots__ = ("enable", "sharpen_level", "extra_nodes")
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    SHARPEN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    enable: str
    sharpen_level: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, enable: _Optional[str] = ..., sharpen_level: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class SuperResolution(_message.Message):
    __slots__ = ("resolution", "enable_scale_up", "version", "extra_nodes")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ENABLE_SCALE_UP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    resolution: str
    enable_scale_up: str
    version: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, resolution: _Optional[str] = ..., enable_scale_up: _Optional[str] = ..., version: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class VideoEnhance(_message.Message):
    __slots__ = ("transcode", "super_resolution", "color_enhance", "ms_sharpen", "sdr_to_hdr", "frame_enhance", "extra_nodes")
    TRANSCODE_FIELD_NUMBER: _ClassVar[int]
    SUPER_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    COLOR_ENHANCE_FIELD_NUMBER: _ClassVar[int]
    MS_SHARPEN_FIELD_NUMBER: _ClassVar[int]
    SDR_TO_HDR_FIELD_NUMBER: _ClassVar[int]
    FRAME_ENHANCE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    transcode: Transcode
    super_resolution: SuperResolution
    color_enhance: ColorEnhance
    ms_sharpen: MsSharpen
    sdr_to_hdr: SdrToHdr
    frame_enhance: FrameEnhance
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, transcode: _Optional[_Union[Transcode, _Mapping]] = ..., super_resolution: _Optional[_Union[SuperResolution, _Mapping]] = ..., color_enhance: _Optional[_Union[ColorEnhance, _Mapping]] = ..., ms_sharpen: _Optional[_Union[MsSharpen, _Mapping]] = ..., sdr_to_hdr: _Optional[_Union[SdrToHdr, _Mapping]] = ..., frame_enhance: _Optional[_Union[FrameEnhance, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class FrameEnhance(_message.Message):
    __slots__ = ("frame_doubling", "extra_nodes")
    FRAME_DOUBLING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    frame_doubling: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, frame_doubling: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class MediaResult(_message.Message):
    __slots__ = ("output_file", "extra_nodes")
    OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    output_file: OutputFile
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, output_file: _Optional[_Union[OutputFile, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class OutputFile(_message.Message):
    __slots__ = ("bucket", "region", "object_prefix", "object_name", "md5_info", "sprite_output_file", "extra_nodes")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    MD5_INFO_FIELD_NUMBER: _ClassVar[int]
    SPRITE_OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    object_prefix: str
    object_name: _containers.RepeatedScalarFieldContainer[str]
    md5_info: _containers.RepeatedCompositeFieldContainer[Md5Info]
    sprite_output_file: OutputFile
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., object_prefix: _Optional[str] = ..., object_name: _Optional[_Iterable[str]] = ..., md5_info: _Optional[_Iterable[_Union[Md5Info, _Mapping]]] = ..., sprite_output_file: _Optional[_Union[OutputFile, _Mapping]] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...

class Md5Info(_message.Message):
    __slots__ = ("object_name", "md5", "extra_nodes")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    EXTRA_NODES_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    md5: str
    extra_nodes: _containers.RepeatedCompositeFieldContainer[_xml_pb2.XmlNode]
    def __init__(self, object_name: _Optional[str] = ..., md5: _Optional[str] = ..., extra_nodes: _Optional[_Iterable[_Union[_xml_pb2.XmlNode, _Mapping]]] = ...) -> None: ...
