from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
XML_FIELD_NUMBER: _ClassVar[int]
xml: _descriptor.FieldDescriptor

class XmlField(_message.Message):
    __slots__ = ("name", "comma_separated", "dash_is_empty", "unknown_nodes", "raw_element", "derived", "keep_empty")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMA_SEPARATED_FIELD_NUMBER: _ClassVar[int]
    DASH_IS_EMPTY_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_NODES_FIELD_NUMBER: _ClassVar[int]
    RAW_ELEMENT_FIELD_NUMBER: _ClassVar[int]
    DERIVED_FIELD_NUMBER: _ClassVar[int]
    KEEP_EMPTY_FIELD_NUMBER: _ClassVar[int]
    name: str
    comma_separated: bool
    dash_is_empty: bool
    unknown_nodes: bool
    raw_element: bool
    derived: bool
    keep_empty: bool
    def __init__(self, name: _Optional[str] = ..., comma_separated: _Optional[bool] = ..., dash_is_empty: _Optional[bool] = ..., unknown_nodes: _Optional[bool] = ..., raw_element: _Optional[bool] = ..., derived: _Optional[bool] = ..., keep_empty: _Optional[bool] = ...) -> None: ...

class XmlNode(_message.Message):
    __slots__ = ("name", "text", "children")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    children: _containers.RepeatedCompositeFieldContainer[XmlNode]
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., children: _Optional[_Iterable[_Union[XmlNode, _Mapping]]] = ...) -> None: ...
