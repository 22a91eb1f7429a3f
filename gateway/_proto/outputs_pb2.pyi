from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_ROLE_UNSPECIFIED: _ClassVar[OutputRole]
    OUTPUT_ROLE_MAIN: _ClassVar[OutputRole]
    OUTPUT_ROLE_SPRITE: _ClassVar[OutputRole]
    OUTPUT_ROLE_AUDIO: _ClassVar[OutputRole]
    OUTPUT_ROLE_BASS: _ClassVar[OutputRole]
    OUTPUT_ROLE_DRUM: _ClassVar[OutputRole]
    OUTPUT_ROLE_STREAM: _ClassVar[OutputRole]
OUTPUT_ROLE_UNSPECIFIED: OutputRole
OUTPUT_ROLE_MAIN: OutputRole
OUTPUT_ROLE_SPRITE: OutputRole
OUTPUT_ROLE_AUDIO: OutputRole
OUTPUT_ROLE_BASS: OutputRole
OUTPUT_ROLE_DRUM: OutputRole
OUTPUT_ROLE_STREAM: OutputRole

class OutputObject(_message.Message):
    __slots__ = ("bucket", "region", "key", "md5", "role", "stream_index")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    region: str
    key: str
    md5: str
    role: OutputRole
    stream_index: str
    def __init__(self, bucket: _Optional[str] = ..., region: _Optional[str] = ..., key: _Optional[str] = ..., md5: _Optional[str] = ..., role: _Optional[_Union[OutputRole, str]] = ..., stream_index: _Optional[str] = ...) -> None: ...
