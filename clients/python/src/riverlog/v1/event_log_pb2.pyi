from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from riverlog.v1 import cloudevent_pb2 as _cloudevent_pb2
from riverlog.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_NO_STREAM: _ClassVar[StreamState]
    STREAM_STATE_EXISTS: _ClassVar[StreamState]

class ReadDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_DIRECTION_UNSPECIFIED: _ClassVar[ReadDirection]
    READ_DIRECTION_FORWARD: _ClassVar[ReadDirection]
    READ_DIRECTION_BACKWARD: _ClassVar[ReadDirection]

class TakeEnd(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAKE_END_UNSPECIFIED: _ClassVar[TakeEnd]
    TAKE_END_OLDEST: _ClassVar[TakeEnd]
    TAKE_END_NEWEST: _ClassVar[TakeEnd]
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_NO_STREAM: StreamState
STREAM_STATE_EXISTS: StreamState
READ_DIRECTION_UNSPECIFIED: ReadDirection
READ_DIRECTION_FORWARD: ReadDirection
READ_DIRECTION_BACKWARD: ReadDirection
TAKE_END_UNSPECIFIED: TakeEnd
TAKE_END_OLDEST: TakeEnd
TAKE_END_NEWEST: TakeEnd

class CreateStreamRequest(_message.Message):
    __slots__ = ("stream", "retention")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    stream: str
    retention: _types_pb2.Retention
    def __init__(self, stream: _Optional[str] = ..., retention: _Optional[_Union[_types_pb2.Retention, _Mapping]] = ...) -> None: ...

class CreateStreamResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _types_pb2.StreamInfo
    def __init__(self, info: _Optional[_Union[_types_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _types_pb2.StreamInfo
    def __init__(self, info: _Optional[_Union[_types_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("pattern", "page_size", "page_token")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    page_size: int
    page_token: str
    def __init__(self, pattern: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[_types_pb2.StreamInfo]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[_types_pb2.StreamInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteStreamRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ("events_deleted",)
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    events_deleted: int
    def __init__(self, events_deleted: _Optional[int] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("stream", "events", "expected_last_sequence", "expected_state")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    stream: str
    events: _containers.RepeatedCompositeFieldContainer[_cloudevent_pb2.CloudEvent]
    expected_last_sequence: int
    expected_state: StreamState
    def __init__(self, stream: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_cloudevent_pb2.CloudEvent, _Mapping]]] = ..., expected_last_sequence: _Optional[int] = ..., expected_state: _Optional[_Union[StreamState, str]] = ...) -> None: ...

class PublishedPosition(_message.Message):
    __slots__ = ("id", "sequence", "position", "duplicate", "recorded_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    sequence: int
    position: int
    duplicate: bool
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., sequence: _Optional[int] = ..., position: _Optional[int] = ..., duplicate: bool = ..., recorded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("positions", "error")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[PublishedPosition]
    error: RequestError
    def __init__(self, positions: _Optional[_Iterable[_Union[PublishedPosition, _Mapping]]] = ..., error: _Optional[_Union[RequestError, _Mapping]] = ...) -> None: ...

class RequestError(_message.Message):
    __slots__ = ("code", "message", "reason", "domain", "metadata", "retry_delay")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    domain: str
    metadata: _containers.ScalarMap[str, str]
    retry_delay: _duration_pb2.Duration
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ..., domain: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., retry_delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("stream", "from_sequence", "from_time", "direction", "limit", "filter")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_TIME_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    from_sequence: int
    from_time: _timestamp_pb2.Timestamp
    direction: ReadDirection
    limit: int
    filter: _types_pb2.EventFilter
    def __init__(self, stream: _Optional[str] = ..., from_sequence: _Optional[int] = ..., from_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[_types_pb2.EventFilter, _Mapping]] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("events", "next_sequence", "end_of_stream")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.RecordedEvent]
    next_sequence: int
    end_of_stream: bool
    def __init__(self, events: _Optional[_Iterable[_Union[_types_pb2.RecordedEvent, _Mapping]]] = ..., next_sequence: _Optional[int] = ..., end_of_stream: bool = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("streams", "start", "filter", "heartbeat_interval")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedScalarFieldContainer[str]
    start: _types_pb2.StartPosition
    filter: _types_pb2.EventFilter
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, streams: _Optional[_Iterable[str]] = ..., start: _Optional[_Union[_types_pb2.StartPosition, _Mapping]] = ..., filter: _Optional[_Union[_types_pb2.EventFilter, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event", "heartbeat", "caught_up")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    event: _types_pb2.RecordedEvent
    heartbeat: _types_pb2.Heartbeat
    caught_up: CaughtUp
    def __init__(self, event: _Optional[_Union[_types_pb2.RecordedEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[_types_pb2.Heartbeat, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ...) -> None: ...

class TrimRequest(_message.Message):
    __slots__ = ("stream", "max_events", "before_sequence", "before_time")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_TIME_FIELD_NUMBER: _ClassVar[int]
    stream: str
    max_events: int
    before_sequence: int
    before_time: _timestamp_pb2.Timestamp
    def __init__(self, stream: _Optional[str] = ..., max_events: _Optional[int] = ..., before_sequence: _Optional[int] = ..., before_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrimResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class TakeRequest(_message.Message):
    __slots__ = ("stream", "end", "limit")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    end: TakeEnd
    limit: int
    def __init__(self, stream: _Optional[str] = ..., end: _Optional[_Union[TakeEnd, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class TakeResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.RecordedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_types_pb2.RecordedEvent, _Mapping]]] = ...) -> None: ...
