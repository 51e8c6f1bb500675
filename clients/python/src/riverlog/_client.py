"""The idiomatic riverlog client."""

from __future__ import annotations

import json
import random
import threading
import time as _time
from datetime import datetime, timedelta
from typing import (
    Any,
    Callable,
    Generic,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

import grpc
from google.protobuf import duration_pb2, empty_pb2

from ._errors import AlreadyExistsError, RiverlogError
from ._events import CloudEvent, Event, EventLike, Published, _timestamp, to_cloud_event
from ._producer import Producer
from .v1 import (
    checkpoints_pb2,
    checkpoints_pb2_grpc,
    consumer_groups_pb2 as cg_pb2,
    consumer_groups_pb2_grpc,
    event_log_pb2,
    event_log_pb2_grpc,
    types_pb2,
)

__all__ = ["Client", "Subscription", "Consumer", "Delivery"]

Seconds = Union[float, int, timedelta]
T = TypeVar("T")

# Reads may return pages up to the server's publish byte limit (16 MiB by
# default), well above gRPC's 4 MiB default.
_DEFAULT_OPTIONS = {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    # Reconnect quickly after a server restart (gRPC's default starts at 1 s
    # and grows to 120 s).
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    # One connection per Client: gRPC otherwise shares connections between
    # channels to the same target, and with them their reconnect backoff.
    "grpc.use_local_subchannel_pool": 1,
    # Retry calls that failed with UNAVAILABLE (server restarting, connection
    # lost before the call went out). Safe: publishing is idempotent by event
    # id, which the client fixes before the first attempt. Take, the one
    # destructive read, is never retried.
    "grpc.service_config": json.dumps(
        {
            "methodConfig": [
                {
                    "name": [
                        {"service": "riverlog.v1.EventLog"},
                        {"service": "riverlog.v1.ConsumerGroups"},
                        {"service": "riverlog.v1.Checkpoints"},
                    ],
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.2s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                },
                # Take is destructive; a PublishStream's requests are
                # answered one by one, and its producer fails what the call
                # left unanswered rather than resend behind the caller's back.
                {
                    "name": [
                        {"service": "riverlog.v1.EventLog", "method": "Take"},
                        {"service": "riverlog.v1.EventLog", "method": "PublishStream"},
                    ]
                },
            ]
        }
    ),
}

_STREAM_RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


def _duration(value: Optional[Seconds]) -> Optional[duration_pb2.Duration]:
    if value is None:
        return None
    d = duration_pb2.Duration()
    if isinstance(value, timedelta):
        d.FromTimedelta(value)
    else:
        d.FromNanoseconds(int(round(value * 1e9)))
    return d


def _filter(types=None, sources=None, subjects=None) -> Optional[types_pb2.EventFilter]:
    if not (types or sources or subjects):
        return None
    return types_pb2.EventFilter(
        types=list(types or ()), sources=list(sources or ()), subjects=list(subjects or ())
    )


def _retryable(err: grpc.RpcError) -> bool:
    code = err.code()
    if code in _STREAM_RETRY_CODES:
        return True
    # An HTTP/2 stream reset by a dying server surfaces as INTERNAL.
    return code == grpc.StatusCode.INTERNAL and "RST_STREAM" in (err.details() or "")


class _Reconnecting(Generic[T]):
    """An iterator over a server-streaming call that reopens the call after
    transient failures (UNAVAILABLE: server restart, network blip), with
    jittered exponential backoff."""

    def __init__(
        self,
        open_call: Callable[[], Any],
        reconnect: bool,
        max_backoff: float,
        reconnect_timeout: Optional[float],
    ) -> None:
        self._open_call = open_call
        self._reconnect = reconnect
        self._max_backoff = max_backoff
        self._reconnect_timeout = reconnect_timeout
        self._call: Any = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        #: How many times the call was reopened after a failure.
        self.reconnects = 0
        # Open the call at once, so events committed after subscribe()
        # returns are not missed by a "latest" start.
        self._call = open_call()
        self._gen = self._run()

    # Subclasses turn response messages into items (or None to skip).
    def _handle(self, msg: Any) -> Optional[T]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self) -> Iterator[T]:
        backoff = 0.1
        failing_since: Optional[float] = None
        call = self._call
        while not self._closed.is_set():
            if call is None:
                with self._lock:
                    if self._closed.is_set():
                        return
                    call = self._call = self._open_call()
            try:
                for msg in call:
                    failing_since, backoff = None, 0.1
                    item = self._handle(msg)
                    if item is not None:
                        yield item
                # The server ended the stream without an error: reopen it.
            except grpc.RpcError as err:
                if self._closed.is_set():
                    return
                if not (self._reconnect and _retryable(err)):
                    raise RiverlogError.from_rpc_error(err) from None
                now = _time.monotonic()
                failing_since = failing_since or now
                if (
                    self._reconnect_timeout is not None
                    and now - failing_since > self._reconnect_timeout
                ):
                    raise RiverlogError.from_rpc_error(err) from None
            finally:
                call.cancel()
                call = None
            if not self._reconnect:
                return
            if self._closed.wait(backoff * random.uniform(0.8, 1.2)):
                return
            backoff = min(backoff * 2, self._max_backoff)
            self.reconnects += 1

    def __iter__(self) -> "_Reconnecting[T]":
        return self

    def __next__(self) -> T:
        if self._closed.is_set():
            raise StopIteration
        return next(self._gen)

    def close(self) -> None:
        """Ends the iteration and cancels the call; safe from any thread."""
        with self._lock:
            self._closed.set()
            if self._call is not None:
                self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Subscription(_Reconnecting[Event]):
    """A live subscription: an iterator of :class:`Event` that first yields
    the matching history, then new events as they are committed.

    When the connection fails (server restart, network failure) it reconnects
    by itself and resumes right after the last event it yielded (or a later
    safe point the server reported), so no event is yielded twice or skipped.
    Iterate it, and :meth:`close` it (or use it as a context manager) when done.
    """

    def __init__(self, client: "Client", request: event_log_pb2.SubscribeRequest, **kw: Any):
        self._client = client
        self._request = request
        #: Global position of the last event yielded (None before the first).
        self.last_position: Optional[int] = None
        #: Position from which a reconnection resumes (None: the original start).
        self.resume_position: Optional[int] = None
        #: True once the server reported that the history has been delivered.
        self.caught_up = False
        super().__init__(self._open, **kw)

    def _open(self):
        request = self._request
        if self.resume_position is not None:
            request = event_log_pb2.SubscribeRequest()
            request.CopyFrom(self._request)
            request.start.CopyFrom(types_pb2.StartPosition(position=self.resume_position))
        return self._client._event_log.Subscribe(request, metadata=self._client._metadata)

    def _advance(self, examined: int) -> None:
        # Everything up to `examined` has been delivered or filtered out.
        if self.resume_position is None or examined + 1 > self.resume_position:
            self.resume_position = examined + 1

    def _handle(self, msg: event_log_pb2.SubscribeResponse) -> Optional[Event]:
        kind = msg.WhichOneof("message")
        if kind == "event":
            self.last_position = msg.event.position
            self._advance(msg.event.position)
            return Event(msg.event)
        if kind == "caught_up":
            self.caught_up = True
            # Position 0: the log was empty, so resuming from 1 misses nothing
            # (even for a "latest" start).
            self._advance(msg.caught_up.position)
        elif kind == "heartbeat" and msg.heartbeat.position:
            self._advance(msg.heartbeat.position)
        return None


class Delivery:
    """An event handed to one consumer of a group. Process it, then
    :meth:`ack` it (or :meth:`nack` it to have it delivered again).

    Used as a context manager it acks when the block succeeds and nacks when
    it raises::

        for delivery in client.consume("orders", "billing", "worker-1"):
            with delivery:
                handle(delivery.event)
    """

    def __init__(self, client: "Client", group: str, consumer: str, proto: cg_pb2.Delivery):
        self._client = client
        #: The group and consumer it was delivered to.
        self.group = group
        self.consumer = consumer
        #: The event.
        self.event = Event(proto.event)
        #: 1 on first delivery, incremented on each redelivery.
        self.delivery_count: int = proto.delivery_count

    @property
    def stream(self) -> str:
        return self.event.stream

    @property
    def sequence(self) -> int:
        return self.event.sequence

    def ack(self) -> bool:
        """Acknowledges the delivery; False if it was no longer pending."""
        return self._client.ack(self.stream, self.group, [self.sequence]) == 1

    def nack(self, delay: Optional[Seconds] = None) -> bool:
        """Rejects the delivery: it is delivered again after ``delay`` seconds
        (and counts toward the group's ``max_deliveries``). False if this
        consumer no longer held it."""
        return (
            self._client.nack(
                self.stream, self.group, [self.sequence], consumer=self.consumer, delay=delay
            )
            == 1
        )

    def __enter__(self) -> "Delivery":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.ack()
        else:
            self.nack()

    def __repr__(self) -> str:
        return f"Delivery({self.event!r}, delivery_count={self.delivery_count})"


class Consumer(_Reconnecting[Delivery]):
    """An iterator of :class:`Delivery` pushed to one consumer of a group
    (``Consume``), reconnecting after transient failures. Deliveries not acked
    stay pending and come back after the group's ``ack_timeout``."""

    def __init__(self, client: "Client", request: cg_pb2.ConsumeRequest, **kw: Any):
        self._client = client
        self._request = request
        super().__init__(
            lambda: client._groups.Consume(request, metadata=client._metadata), **kw
        )

    def _handle(self, msg: cg_pb2.ConsumeResponse) -> Optional[Delivery]:
        if msg.WhichOneof("message") == "delivery":
            return Delivery(self._client, self._request.group, self._request.consumer, msg.delivery)
        return None


class Client:
    """A riverlog client over one gRPC channel.

    Args:
        target: The server's gRPC address, e.g. ``"localhost:50051"``.
        token: A bearer token, sent as ``authorization: Bearer <token>``.
        credentials: ``grpc.ChannelCredentials`` for TLS (e.g.
            ``grpc.ssl_channel_credentials()``); plaintext when omitted.
        options: Extra gRPC channel options, overriding the defaults (which
            raise the message size limits, reconnect fast, and retry calls
            that failed with UNAVAILABLE, except Take, up to 5 times).
        timeout: Deadline in seconds for unary calls (``None``: none).

    Failed calls raise :class:`riverlog.RiverlogError` subclasses carrying the
    server's ``ErrorInfo.reason``. The generated stubs are available as
    :attr:`event_log`, :attr:`consumer_groups` and :attr:`checkpoints_stub`
    for anything this layer does not cover. Use the client as a context
    manager, or call :meth:`close`.
    """

    def __init__(
        self,
        target: str,
        token: Optional[str] = None,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Optional[dict] = None,
        timeout: Optional[float] = 30.0,
    ) -> None:
        opts = dict(_DEFAULT_OPTIONS)
        opts.update(options or {})
        if credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, list(opts.items()))
        else:
            self._channel = grpc.insecure_channel(target, list(opts.items()))
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        #: Generated stubs.
        self.event_log = self._event_log = event_log_pb2_grpc.EventLogStub(self._channel)
        self.consumer_groups = self._groups = consumer_groups_pb2_grpc.ConsumerGroupsStub(
            self._channel
        )
        self.checkpoints_stub = checkpoints_pb2_grpc.CheckpointsStub(self._channel)

    # -- plumbing ---------------------------------------------------------

    def _call(self, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise RiverlogError.from_rpc_error(err) from None

    def close(self) -> None:
        """Closes the channel (ends open subscriptions)."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- streams ----------------------------------------------------------

    def create_stream(
        self,
        stream: str,
        *,
        max_events: Optional[int] = None,
        max_age: Optional[Seconds] = None,
        ttl: Optional[Seconds] = None,
        exist_ok: bool = False,
    ) -> types_pb2.StreamInfo:
        """Creates an empty stream with optional retention rules and returns
        its ``StreamInfo``. With ``exist_ok`` an existing stream is returned."""
        retention = None
        if max_events or max_age is not None or ttl is not None:
            retention = types_pb2.Retention(
                max_events=max_events or 0, max_age=_duration(max_age), ttl=_duration(ttl)
            )
        request = event_log_pb2.CreateStreamRequest(stream=stream, retention=retention)
        try:
            return self._call(self._event_log.CreateStream, request).info
        except AlreadyExistsError:
            if not exist_ok:
                raise
            return self.get_stream(stream)

    def get_stream(self, stream: str) -> types_pb2.StreamInfo:
        """Describes a stream; raises :class:`NotFoundError` if missing."""
        return self._call(self._event_log.GetStream, event_log_pb2.GetStreamRequest(stream=stream)).info

    def list_streams(self, pattern: str = "") -> Iterator[types_pb2.StreamInfo]:
        """Yields every stream (matching ``pattern``, e.g. ``"orders:*"``) in
        name order, fetching pages as needed."""
        token = ""
        while True:
            page = self._call(
                self._event_log.ListStreams,
                event_log_pb2.ListStreamsRequest(pattern=pattern, page_size=1000, page_token=token),
            )
            yield from page.streams
            token = page.next_page_token
            if not token:
                return

    def delete_stream(self, stream: str) -> int:
        """Deletes a stream with its events, groups and checkpoints; returns
        how many events were deleted."""
        return self._call(
            self._event_log.DeleteStream, event_log_pb2.DeleteStreamRequest(stream=stream)
        ).events_deleted

    # -- publishing and reading -------------------------------------------

    def publish(
        self,
        stream: str,
        events: Union[EventLike, Iterable[EventLike]],
        *,
        expected_last_sequence: Optional[int] = None,
        expect_no_stream: bool = False,
        expect_exists: bool = False,
    ) -> List[Published]:
        """Appends events to a stream, atomically, and returns where each
        landed (in order).

        ``events`` is one event or a list of them: ``CloudEvent`` messages or
        mappings such as ``{"type": ..., "source": ..., "data": {...}}`` (see
        :func:`riverlog.to_cloud_event`). Publishing is idempotent by event
        id: an id the stream already holds is not appended again and comes
        back with ``duplicate=True``.

        ``expected_last_sequence`` (the stream's current last sequence, 0 for
        a new stream), ``expect_no_stream`` or ``expect_exists`` make the
        publish conditional: on mismatch nothing is appended and
        :class:`WrongExpectedSequenceError` is raised.
        """
        if isinstance(events, (Mapping, CloudEvent)):
            events = [events]
        request = event_log_pb2.PublishRequest(
            stream=stream, events=[to_cloud_event(e) for e in events]  # type: ignore[union-attr]
        )
        if sum([expected_last_sequence is not None, expect_no_stream, expect_exists]) > 1:
            raise ValueError("give at most one publish condition")
        if expected_last_sequence is not None:
            request.expected_last_sequence = expected_last_sequence
        elif expect_no_stream:
            request.expected_state = event_log_pb2.STREAM_STATE_NO_STREAM
        elif expect_exists:
            request.expected_state = event_log_pb2.STREAM_STATE_EXISTS
        response = self._call(self._event_log.Publish, request)
        return [Published.from_proto(p) for p in response.positions]

    def producer(
        self,
        *,
        max_batch_events: int = 500,
        max_batch_bytes: int = 1 << 20,
        linger: float = 0.005,
        max_buffered: int = 20_000,
    ) -> "Producer":
        """A :class:`Producer` that batches events per stream over one
        ``PublishStream`` call and resolves each event's future to its
        position (see :class:`Producer`). Close it, or use it as a context
        manager."""
        return Producer(
            self,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            linger=linger,
            max_buffered=max_buffered,
        )

    def read(
        self,
        stream: str,
        *,
        from_sequence: Optional[int] = None,
        from_time: Optional[datetime] = None,
        backward: bool = False,
        limit: Optional[int] = None,
        types: Optional[Sequence[str]] = None,
        sources: Optional[Sequence[str]] = None,
        subjects: Optional[Sequence[str]] = None,
    ) -> List[Event]:
        """Reads a stream's history, oldest first (or newest first with
        ``backward``), up to ``limit`` events (all when ``None``), paging as
        needed. ``from_sequence``/``from_time`` are inclusive starting points;
        ``types``/``sources``/``subjects`` filter (``*`` wildcards)."""
        events: List[Event] = []
        next_sequence = from_sequence
        while limit is None or len(events) < limit:
            page_size = 1000 if limit is None else min(1000, limit - len(events))
            request = event_log_pb2.ReadRequest(
                stream=stream,
                direction=event_log_pb2.READ_DIRECTION_BACKWARD
                if backward
                else event_log_pb2.READ_DIRECTION_FORWARD,
                limit=page_size,
                filter=_filter(types, sources, subjects),
            )
            if next_sequence:
                request.from_sequence = next_sequence
            elif from_time is not None:
                request.from_time.CopyFrom(_timestamp(from_time))
            page = self._call(self._event_log.Read, request)
            events.extend(Event(e) for e in page.events)
            if page.end_of_stream or not page.events or not page.next_sequence:
                break
            next_sequence = page.next_sequence
        return events

    def subscribe(
        self,
        streams: Union[str, Sequence[str]],
        *,
        start: Union[str, datetime] = "earliest",
        from_position: Optional[int] = None,
        from_sequence: Optional[int] = None,
        checkpoint: Optional[str] = None,
        types: Optional[Sequence[str]] = None,
        sources: Optional[Sequence[str]] = None,
        subjects: Optional[Sequence[str]] = None,
        heartbeat_interval: Optional[Seconds] = None,
        reconnect: bool = True,
        max_backoff: float = 5.0,
        reconnect_timeout: Optional[float] = None,
    ) -> Subscription:
        """Subscribes to streams and/or patterns (``"orders:*"``).

        Returns a :class:`Subscription`, an iterator of :class:`Event`: the
        history from the starting point, then live events, until closed.

        Starting point: ``start`` is ``"earliest"`` (default), ``"latest"`` or
        a datetime; or give one of ``from_position`` (global position,
        inclusive: pass a last seen position + 1), ``from_sequence`` (single
        stream only) or ``checkpoint`` (a committed checkpoint name).

        With ``reconnect`` (default) the iterator survives server restarts
        and network failures, resuming after the last event it yielded;
        ``reconnect_timeout`` (seconds) bounds how long it keeps trying.
        """
        if isinstance(streams, str):
            streams = [streams]
        sp = types_pb2.StartPosition()
        if from_position is not None:
            sp.position = from_position
        elif from_sequence is not None:
            sp.sequence = from_sequence
        elif checkpoint is not None:
            sp.checkpoint = checkpoint
        elif isinstance(start, datetime):
            sp.time.CopyFrom(_timestamp(start))
        elif start == "latest":
            sp.latest.CopyFrom(empty_pb2.Empty())
        elif start == "earliest":
            sp.earliest.CopyFrom(empty_pb2.Empty())
        else:
            raise ValueError(f"start must be 'earliest', 'latest' or a datetime, not {start!r}")
        request = event_log_pb2.SubscribeRequest(
            streams=list(streams),
            start=sp,
            filter=_filter(types, sources, subjects),
            heartbeat_interval=_duration(heartbeat_interval),
        )
        return Subscription(
            self,
            request,
            reconnect=reconnect,
            max_backoff=max_backoff,
            reconnect_timeout=reconnect_timeout,
        )

    def trim(
        self,
        stream: str,
        *,
        max_events: Optional[int] = None,
        before_sequence: Optional[int] = None,
        before_time: Optional[datetime] = None,
    ) -> int:
        """Removes old events (give exactly one rule); returns how many."""
        request = event_log_pb2.TrimRequest(stream=stream)
        if max_events is not None:
            request.max_events = max_events
        elif before_sequence is not None:
            request.before_sequence = before_sequence
        elif before_time is not None:
            request.before_time.CopyFrom(_timestamp(before_time))
        else:
            raise ValueError("give max_events, before_sequence or before_time")
        return self._call(self._event_log.Trim, request).removed

    def take(self, stream: str, limit: int = 1, *, newest: bool = False) -> List[Event]:
        """Removes and returns up to ``limit`` events from the oldest end (a
        queue) or, with ``newest``, the newest end (a stack)."""
        request = event_log_pb2.TakeRequest(
            stream=stream,
            limit=limit,
            end=event_log_pb2.TAKE_END_NEWEST if newest else event_log_pb2.TAKE_END_OLDEST,
        )
        return [Event(e) for e in self._call(self._event_log.Take, request).events]

    # -- consumer groups --------------------------------------------------

    def create_group(
        self,
        stream: str,
        group: str,
        *,
        start: Union[str, int] = "earliest",
        ack_timeout: Optional[Seconds] = None,
        max_deliveries: Optional[int] = None,
        dead_letter_stream: Optional[str] = None,
        exist_ok: bool = False,
    ) -> cg_pb2.GroupInfo:
        """Creates a consumer group on a stream and returns its ``GroupInfo``.

        ``start`` is ``"earliest"``, ``"latest"`` or a sequence number.
        ``ack_timeout`` (seconds; server default 30) is how long a delivery may
        stay unacked before it is delivered again; after ``max_deliveries``
        (default 5) an event goes to ``dead_letter_stream`` (default
        ``<stream>:dlq``). With ``exist_ok`` an existing group is returned.
        """
        gs = cg_pb2.GroupStart()
        if isinstance(start, int):
            gs.sequence = start
        elif start == "latest":
            gs.latest.CopyFrom(empty_pb2.Empty())
        elif start == "earliest":
            gs.earliest.CopyFrom(empty_pb2.Empty())
        else:
            raise ValueError(f"start must be 'earliest', 'latest' or a sequence, not {start!r}")
        request = cg_pb2.CreateGroupRequest(
            stream=stream,
            group=group,
            start=gs,
            ack_timeout=_duration(ack_timeout),
            max_deliveries=max_deliveries or 0,
            dead_letter_stream=dead_letter_stream or "",
        )
        try:
            return self._call(self._groups.CreateGroup, request).info
        except AlreadyExistsError:
            if not exist_ok:
                raise
            return self.get_group(stream, group)

    def get_group(self, stream: str, group: str) -> cg_pb2.GroupInfo:
        """Describes a group: consumers, pending entries, lag."""
        return self._call(
            self._groups.GetGroup, cg_pb2.GetGroupRequest(stream=stream, group=group)
        ).info

    def list_groups(self, stream: str) -> List[cg_pb2.GroupInfo]:
        """The groups of a stream, in name order."""
        return list(
            self._call(self._groups.ListGroups, cg_pb2.ListGroupsRequest(stream=stream)).groups
        )

    def delete_group(self, stream: str, group: str) -> None:
        """Deletes a group with its pending entries."""
        self._call(self._groups.DeleteGroup, cg_pb2.DeleteGroupRequest(stream=stream, group=group))

    def delete_consumer(self, stream: str, group: str, consumer: str) -> int:
        """Removes a consumer; returns how many pending entries it released."""
        return self._call(
            self._groups.DeleteConsumer,
            cg_pb2.DeleteConsumerRequest(stream=stream, group=group, consumer=consumer),
        ).pending_released

    def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        max_in_flight: Optional[int] = None,
        heartbeat_interval: Optional[Seconds] = None,
        reconnect: bool = True,
        max_backoff: float = 5.0,
        reconnect_timeout: Optional[float] = None,
    ) -> Consumer:
        """Receives the group's events as ``consumer``: returns a
        :class:`Consumer`, an iterator of :class:`Delivery` that runs until
        closed. Ack each delivery (``delivery.ack()``) when processed; at most
        ``max_in_flight`` (server default 100) may be unacked at once."""
        request = cg_pb2.ConsumeRequest(
            stream=stream,
            group=group,
            consumer=consumer,
            max_in_flight=max_in_flight or 0,
            heartbeat_interval=_duration(heartbeat_interval),
        )
        return Consumer(
            self,
            request,
            reconnect=reconnect,
            max_backoff=max_backoff,
            reconnect_timeout=reconnect_timeout,
        )

    def fetch(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 1,
        block: Optional[Seconds] = None,
        pending_only: bool = False,
    ) -> List[Delivery]:
        """Pulls up to ``count`` deliveries, waiting up to ``block`` seconds
        for the first one (XREADGROUP). ``pending_only`` re-reads this
        consumer's own unacked deliveries."""
        if isinstance(block, timedelta):
            block = block.total_seconds()
        request = cg_pb2.FetchRequest(
            stream=stream,
            group=group,
            consumer=consumer,
            count=count,
            block_ms=int((block or 0) * 1000),
            pending_only=pending_only,
        )
        response = self._call(self._groups.Fetch, request)
        return [Delivery(self, group, consumer, d) for d in response.deliveries]

    def ack(self, stream: str, group: str, sequences: Iterable[int]) -> int:
        """Acknowledges deliveries by sequence; returns how many were pending."""
        return self._call(
            self._groups.Ack, cg_pb2.AckRequest(stream=stream, group=group, sequences=list(sequences))
        ).acked

    def nack(
        self,
        stream: str,
        group: str,
        sequences: Iterable[int],
        *,
        consumer: Optional[str] = None,
        delay: Optional[Seconds] = None,
    ) -> int:
        """Rejects deliveries: they are delivered again after ``delay``.
        Give ``consumer`` so only entries it still holds are nacked. Returns
        how many were nacked."""
        request = cg_pb2.NackRequest(
            stream=stream,
            group=group,
            sequences=list(sequences),
            consumer=consumer or "",
            delay=_duration(delay),
        )
        return self._call(self._groups.Nack, request).nacked

    def list_pending(
        self,
        stream: str,
        group: str,
        *,
        consumer: str = "",
        min_idle: Optional[Seconds] = None,
        limit: int = 100,
        after_sequence: int = 0,
    ) -> cg_pb2.ListPendingResponse:
        """Pending (delivered, unacked) entries: a summary and a page of
        entries (XPENDING)."""
        return self._call(
            self._groups.ListPending,
            cg_pb2.ListPendingRequest(
                stream=stream,
                group=group,
                consumer=consumer,
                min_idle=_duration(min_idle),
                limit=limit,
                after_sequence=after_sequence,
            ),
        )

    def claim(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        min_idle: Seconds,
        sequences: Optional[Iterable[int]] = None,
        count: Optional[int] = None,
    ) -> List[Delivery]:
        """Takes over pending entries idle for at least ``min_idle``: the
        given ``sequences`` (XCLAIM) or the oldest ``count`` (XAUTOCLAIM)."""
        request = cg_pb2.ClaimRequest(
            stream=stream,
            group=group,
            consumer=consumer,
            min_idle=_duration(min_idle),
            sequences=list(sequences or ()),
            count=count or 0,
        )
        response = self._call(self._groups.Claim, request)
        return [Delivery(self, group, consumer, d) for d in response.deliveries]

    # -- checkpoints ------------------------------------------------------

    def commit_checkpoint(
        self,
        name: str,
        *,
        stream: str = "",
        sequence: Optional[int] = None,
        position: Optional[int] = None,
    ) -> checkpoints_pb2.Checkpoint:
        """Stores the last processed ``sequence`` (per-stream checkpoint) or
        global ``position`` under ``name``. ``subscribe(checkpoint=name)``
        resumes right after it."""
        request = checkpoints_pb2.CommitCheckpointRequest(name=name, stream=stream)
        if sequence is not None:
            request.sequence = sequence
        elif position is not None:
            request.position = position
        else:
            raise ValueError("give sequence or position")
        return self._call(self.checkpoints_stub.CommitCheckpoint, request).checkpoint

    def get_checkpoint(self, name: str, *, stream: str = "") -> checkpoints_pb2.Checkpoint:
        """Reads a committed checkpoint; :class:`NotFoundError` if none."""
        return self._call(
            self.checkpoints_stub.GetCheckpoint,
            checkpoints_pb2.GetCheckpointRequest(name=name, stream=stream),
        ).checkpoint
