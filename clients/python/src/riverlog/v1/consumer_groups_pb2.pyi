from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from riverlog.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupStart(_message.Message):
    __slots__ = ("earliest", "latest", "sequence", "time")
    EARLIEST_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    earliest: _empty_pb2.Empty
    latest: _empty_pb2.Empty
    sequence: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, earliest: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., latest: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("stream", "group", "start", "ack_timeout", "max_deliveries", "dead_letter_stream")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    ACK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    start: GroupStart
    ack_timeout: _duration_pb2.Duration
    max_deliveries: int
    dead_letter_stream: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., start: _Optional[_Union[GroupStart, _Mapping]] = ..., ack_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max_deliveries: _Optional[int] = ..., dead_letter_stream: _Optional[str] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: GroupInfo
    def __init__(self, info: _Optional[_Union[GroupInfo, _Mapping]] = ...) -> None: ...

class ConsumerInfo(_message.Message):
    __slots__ = ("consumer", "pending", "idle", "connected")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    pending: int
    idle: _duration_pb2.Duration
    connected: bool
    def __init__(self, consumer: _Optional[str] = ..., pending: _Optional[int] = ..., idle: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., connected: bool = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("stream", "group", "ack_timeout", "max_deliveries", "dead_letter_stream", "last_delivered_sequence", "ack_floor", "pending", "lag", "consumers", "created_at")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ACK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_STREAM_FIELD_NUMBER: _ClassVar[int]
    LAST_DELIVERED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACK_FLOOR_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    ack_timeout: _duration_pb2.Duration
    max_deliveries: int
    dead_letter_stream: str
    last_delivered_sequence: int
    ack_floor: int
    pending: int
    lag: int
    consumers: _containers.RepeatedCompositeFieldContainer[ConsumerInfo]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., ack_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max_deliveries: _Optional[int] = ..., dead_letter_stream: _Optional[str] = ..., last_delivered_sequence: _Optional[int] = ..., ack_floor: _Optional[int] = ..., pending: _Optional[int] = ..., lag: _Optional[int] = ..., consumers: _Optional[_Iterable[_Union[ConsumerInfo, _Mapping]]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("stream", "group")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ...) -> None: ...

class GetGroupResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: GroupInfo
    def __init__(self, info: _Optional[_Union[GroupInfo, _Mapping]] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupInfo]
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupInfo, _Mapping]]] = ...) -> None: ...

class DeleteGroupRequest(_message.Message):
    __slots__ = ("stream", "group")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ...) -> None: ...

class DeleteGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteConsumerRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ...) -> None: ...

class DeleteConsumerResponse(_message.Message):
    __slots__ = ("pending_released",)
    PENDING_RELEASED_FIELD_NUMBER: _ClassVar[int]
    pending_released: int
    def __init__(self, pending_released: _Optional[int] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("event", "delivery_count")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    event: _types_pb2.RecordedEvent
    delivery_count: int
    def __init__(self, event: _Optional[_Union[_types_pb2.RecordedEvent, _Mapping]] = ..., delivery_count: _Optional[int] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "max_in_flight", "heartbeat_interval")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    max_in_flight: int
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., heartbeat_interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("delivery", "heartbeat")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    heartbeat: _types_pb2.Heartbeat
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ..., heartbeat: _Optional[_Union[_types_pb2.Heartbeat, _Mapping]] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "count", "block_ms", "pending_only")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_MS_FIELD_NUMBER: _ClassVar[int]
    PENDING_ONLY_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    count: int
    block_ms: int
    pending_only: bool
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., count: _Optional[int] = ..., block_ms: _Optional[int] = ..., pending_only: bool = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("stream", "group", "sequences")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    sequences: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., sequences: _Optional[_Iterable[int]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("acked", "not_pending")
    ACKED_FIELD_NUMBER: _ClassVar[int]
    NOT_PENDING_FIELD_NUMBER: _ClassVar[int]
    acked: int
    not_pending: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, acked: _Optional[int] = ..., not_pending: _Optional[_Iterable[int]] = ...) -> None: ...

class NackRequest(_message.Message):
    __slots__ = ("stream", "group", "sequences", "delay", "consumer")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    sequences: _containers.RepeatedScalarFieldContainer[int]
    delay: _duration_pb2.Duration
    consumer: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., sequences: _Optional[_Iterable[int]] = ..., delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., consumer: _Optional[str] = ...) -> None: ...

class NackResponse(_message.Message):
    __slots__ = ("nacked", "not_pending")
    NACKED_FIELD_NUMBER: _ClassVar[int]
    NOT_PENDING_FIELD_NUMBER: _ClassVar[int]
    nacked: int
    not_pending: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, nacked: _Optional[int] = ..., not_pending: _Optional[_Iterable[int]] = ...) -> None: ...

class ListPendingRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "min_idle", "limit", "after_sequence")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MIN_IDLE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    min_idle: _duration_pb2.Duration
    limit: int
    after_sequence: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., min_idle: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., limit: _Optional[int] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class ConsumerPending(_message.Message):
    __slots__ = ("consumer", "count")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    count: int
    def __init__(self, consumer: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class PendingSummary(_message.Message):
    __slots__ = ("count", "lowest_sequence", "highest_sequence", "consumers")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LOWEST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    count: int
    lowest_sequence: int
    highest_sequence: int
    consumers: _containers.RepeatedCompositeFieldContainer[ConsumerPending]
    def __init__(self, count: _Optional[int] = ..., lowest_sequence: _Optional[int] = ..., highest_sequence: _Optional[int] = ..., consumers: _Optional[_Iterable[_Union[ConsumerPending, _Mapping]]] = ...) -> None: ...

class PendingEntry(_message.Message):
    __slots__ = ("sequence", "consumer", "idle", "delivery_count")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    consumer: str
    idle: _duration_pb2.Duration
    delivery_count: int
    def __init__(self, sequence: _Optional[int] = ..., consumer: _Optional[str] = ..., idle: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., delivery_count: _Optional[int] = ...) -> None: ...

class ListPendingResponse(_message.Message):
    __slots__ = ("summary", "entries")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    summary: PendingSummary
    entries: _containers.RepeatedCompositeFieldContainer[PendingEntry]
    def __init__(self, summary: _Optional[_Union[PendingSummary, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[PendingEntry, _Mapping]]] = ...) -> None: ...

class ClaimRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "min_idle", "sequences", "count")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MIN_IDLE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    min_idle: _duration_pb2.Duration
    sequences: _containers.RepeatedScalarFieldContainer[int]
    count: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., min_idle: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., sequences: _Optional[_Iterable[int]] = ..., count: _Optional[int] = ...) -> None: ...

class ClaimResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class SeekGroupRequest(_message.Message):
    __slots__ = ("stream", "group", "start")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    start: GroupStart
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., start: _Optional[_Union[GroupStart, _Mapping]] = ...) -> None: ...

class SeekGroupResponse(_message.Message):
    __slots__ = ("info", "pending_removed")
    INFO_FIELD_NUMBER: _ClassVar[int]
    PENDING_REMOVED_FIELD_NUMBER: _ClassVar[int]
    info: GroupInfo
    pending_removed: int
    def __init__(self, info: _Optional[_Union[GroupInfo, _Mapping]] = ..., pending_removed: _Optional[int] = ...) -> None: ...

class SequenceRange(_message.Message):
    __slots__ = ("first", "last")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    first: int
    last: int
    def __init__(self, first: _Optional[int] = ..., last: _Optional[int] = ...) -> None: ...

class RedriveRequest(_message.Message):
    __slots__ = ("stream", "group", "all", "dead_letter_sequences", "filter")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    all: _empty_pb2.Empty
    dead_letter_sequences: SequenceRange
    filter: _types_pb2.EventFilter
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., all: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., dead_letter_sequences: _Optional[_Union[SequenceRange, _Mapping]] = ..., filter: _Optional[_Union[_types_pb2.EventFilter, _Mapping]] = ...) -> None: ...

class RedriveResponse(_message.Message):
    __slots__ = ("redriven", "origin_gone", "more")
    REDRIVEN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_GONE_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    redriven: int
    origin_gone: _containers.RepeatedScalarFieldContainer[int]
    more: bool
    def __init__(self, redriven: _Optional[int] = ..., origin_gone: _Optional[_Iterable[int]] = ..., more: bool = ...) -> None: ...
