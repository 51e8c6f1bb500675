from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from riverlog.v1 import cloudevent_pb2 as _cloudevent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetentionPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETENTION_POLICY_UNSPECIFIED: _ClassVar[RetentionPolicy]
    RETENTION_POLICY_LIMITS: _ClassVar[RetentionPolicy]
    RETENTION_POLICY_INTEREST: _ClassVar[RetentionPolicy]
    RETENTION_POLICY_WORK_QUEUE: _ClassVar[RetentionPolicy]
RETENTION_POLICY_UNSPECIFIED: RetentionPolicy
RETENTION_POLICY_LIMITS: RetentionPolicy
RETENTION_POLICY_INTEREST: RetentionPolicy
RETENTION_POLICY_WORK_QUEUE: RetentionPolicy

class RecordedEvent(_message.Message):
    __slots__ = ("stream", "sequence", "position", "recorded_at", "event")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    sequence: int
    position: int
    recorded_at: _timestamp_pb2.Timestamp
    event: _cloudevent_pb2.CloudEvent
    def __init__(self, stream: _Optional[str] = ..., sequence: _Optional[int] = ..., position: _Optional[int] = ..., recorded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., event: _Optional[_Union[_cloudevent_pb2.CloudEvent, _Mapping]] = ...) -> None: ...

class EventFilter(_message.Message):
    __slots__ = ("types", "sources", "subjects")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[str]
    subjects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, types: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[str]] = ..., subjects: _Optional[_Iterable[str]] = ...) -> None: ...

class StartPosition(_message.Message):
    __slots__ = ("earliest", "latest", "sequence", "position", "time", "checkpoint")
    EARLIEST_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    earliest: _empty_pb2.Empty
    latest: _empty_pb2.Empty
    sequence: int
    position: int
    time: _timestamp_pb2.Timestamp
    checkpoint: str
    def __init__(self, earliest: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., latest: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., sequence: _Optional[int] = ..., position: _Optional[int] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("position", "time")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    position: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, position: _Optional[int] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Retention(_message.Message):
    __slots__ = ("max_events", "max_age", "ttl", "policy", "dedup_window")
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DEDUP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    max_events: int
    max_age: _duration_pb2.Duration
    ttl: _duration_pb2.Duration
    policy: RetentionPolicy
    dedup_window: _duration_pb2.Duration
    def __init__(self, max_events: _Optional[int] = ..., max_age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., policy: _Optional[_Union[RetentionPolicy, str]] = ..., dedup_window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream", "event_count", "first_sequence", "last_sequence", "last_position", "created_at", "last_appended_at", "retention", "group_count")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_APPENDED_AT_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    event_count: int
    first_sequence: int
    last_sequence: int
    last_position: int
    created_at: _timestamp_pb2.Timestamp
    last_appended_at: _timestamp_pb2.Timestamp
    retention: Retention
    group_count: int
    def __init__(self, stream: _Optional[str] = ..., event_count: _Optional[int] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., last_position: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_appended_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., retention: _Optional[_Union[Retention, _Mapping]] = ..., group_count: _Optional[int] = ...) -> None: ...
