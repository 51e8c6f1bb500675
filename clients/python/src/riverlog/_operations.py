"""What both clients do, written once and without I/O.

``riverlog.Client`` blocks and ``riverlog.aio.Client`` awaits, but they build
the same requests, read the same answers and page the same way. So each
operation is written here once, as a generator that *yields* the calls it
needs (:class:`Call`) and receives their responses; a client only runs it,
the blocking one with ``method(request)``, the async one with ``await
method(request)`` (see ``Client._run`` in each). Failed calls are thrown into
the generator as :class:`RiverlogError`, so an operation can catch one (as
``create_stream(exist_ok=True)`` does) and go on.

The public signatures and docstrings of both clients are the ones below: each
client binds these functions as its methods (``read = _blocking(ops.read)``).
Operations that open a long-running call (``subscribe``, ``consume``,
``producer``) return a spec instead, from which each client builds its own
iterator or producer.
"""

from __future__ import annotations

import functools
import inspect
import json
from datetime import datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    Generic,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc
from google.protobuf import duration_pb2, empty_pb2
from google.protobuf.message import Message

from ._errors import AlreadyExistsError, RiverlogError
from ._events import CloudEvent, Event, EventLike, Published, _timestamp, to_cloud_event
from .v1 import (
    checkpoints_pb2,
    checkpoints_pb2_grpc,
    consumer_groups_pb2_grpc,
    event_log_pb2,
    event_log_pb2_grpc,
    types_pb2,
)
from .v1 import consumer_groups_pb2 as cg_pb2

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")

Seconds = Union[float, int, timedelta]
R = TypeVar("R")
T = TypeVar("T")
C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., Any])

# -- the channel ------------------------------------------------------------

# Reads may return pages up to the server's publish byte limit (16 MiB by
# default), well above gRPC's 4 MiB default.
_DEFAULT_OPTIONS: Dict[str, Any] = {
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


def channel_options(options: Optional[Mapping[str, Any]]) -> List[Tuple[str, Any]]:
    """The client's default channel options, overridden by the caller's."""
    merged = dict(_DEFAULT_OPTIONS)
    merged.update(options or {})
    return list(merged.items())


def auth_metadata(token: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """The call metadata that carries a bearer token (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class ClientBase:
    """The channel, token, deadline and generated stubs of either client;
    each subclass names the gRPC module that makes its channel (``grpc`` or
    ``grpc.aio``). The arguments are documented on ``riverlog.Client``."""

    _channels: Any

    def __init__(
        self,
        target: str,
        token: Optional[str] = None,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = 30.0,
    ) -> None:
        opts = channel_options(options)
        if credentials is not None:
            self._channel = self._channels.secure_channel(target, credentials, opts)
        else:
            self._channel = self._channels.insecure_channel(target, opts)
        self._metadata = auth_metadata(token)
        #: Deadline in seconds of unary calls (``None``: none).
        self.timeout = timeout
        #: Generated stubs, for anything the client does not cover.
        self.event_log = event_log_pb2_grpc.EventLogStub(self._channel)
        self.consumer_groups = consumer_groups_pb2_grpc.ConsumerGroupsStub(self._channel)
        self.checkpoints_stub = checkpoints_pb2_grpc.CheckpointsStub(self._channel)

    def _method(self, call: "Call") -> Callable[[Message], Any]:
        """The stub method ``call`` names, with the client's deadline and token."""
        method = getattr(getattr(self, call.stub), call.method)
        return functools.partial(method, timeout=self.timeout, metadata=self._metadata)


# -- calls ------------------------------------------------------------------


class Call(NamedTuple):
    """One unary call an operation asks its client to make."""

    #: The client attribute holding the stub: ``event_log``,
    #: ``consumer_groups`` or ``checkpoints_stub``.
    stub: str
    #: The rpc, e.g. ``"Read"``.
    method: str
    request: Message


#: An operation: yields calls, is sent their responses, returns its result.
Op = Generator[Call, Any, R]


class Runner(Generic[R]):
    """Steps an operation through its calls; a client's ``_run`` only makes
    each call (:attr:`call`) and reports how it went::

        run = Runner(operation)
        while run.call is not None:
            try:
                response = <make run.call, blocking or awaited>
            except grpc.RpcError as err:
                run.failed(err)
            else:
                run.answered(response)
        return run.result
    """

    def __init__(self, operation: Op[R]) -> None:
        self._operation = operation
        #: The call to make next; ``None`` once the operation returned.
        self.call: Optional[Call] = None
        #: What the operation returned.
        self.result: R
        self._step(lambda: next(operation))

    def answered(self, response: Any) -> None:
        """Sends the call's response into the operation."""
        self._step(lambda: self._operation.send(response))

    def failed(self, err: grpc.RpcError) -> None:
        """Throws the call's failure, as a :class:`RiverlogError`, into the
        operation (which may catch it and go on, else it is raised)."""
        error = RiverlogError.from_rpc_error(err)
        # Raised as if `from None`: the raw gRPC error adds nothing to it.
        error.__cause__ = None
        error.__suppress_context__ = True
        self._step(lambda: self._operation.throw(error))

    def _step(self, resume: Callable[[], Call]) -> None:
        try:
            self.call = resume()
        except StopIteration as done:
            self.call = None
            self.result = done.value


class Deliveries(NamedTuple):
    """Deliveries a call returned, before a client wraps each in its own
    ``Delivery`` (whose ``ack`` blocks or awaits)."""

    group: str
    consumer: str
    protos: Sequence[cg_pb2.Delivery]


def bind(method: F, operation: Callable[..., Any], returns: str) -> F:
    """Dresses a client method that runs ``operation`` as the operation: its
    name, docstring and signature, with ``self`` first and ``returns`` as
    the result, for ``help()``, IDEs and documentation tools."""
    method.__name__ = operation.__name__
    method.__qualname__ = operation.__name__
    method.__doc__ = operation.__doc__
    signature = inspect.signature(operation)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self, *signature.parameters.values()], return_annotation=returns
    )
    return method


def opening(
    build: "Callable[[C, Any], T]", operation: "Callable[P, Any]"
) -> "Callable[Concatenate[C, P], T]":
    """A client method that builds an iterator or producer (``build(client,
    spec)``) from the spec ``operation`` returns."""

    def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        return build(self, operation(*args, **kwargs))

    return bind(method, operation, build.__name__)


def _duration(value: Optional[Seconds]) -> Optional[duration_pb2.Duration]:
    if value is None:
        return None
    d = duration_pb2.Duration()
    if isinstance(value, timedelta):
        d.FromTimedelta(value)
    else:
        d.FromNanoseconds(int(round(value * 1e9)))
    return d


def _filter(
    types: Optional[Sequence[str]] = None,
    sources: Optional[Sequence[str]] = None,
    subjects: Optional[Sequence[str]] = None,
) -> Optional[types_pb2.EventFilter]:
    if not (types or sources or subjects):
        return None
    return types_pb2.EventFilter(
        types=list(types or ()), sources=list(sources or ()), subjects=list(subjects or ())
    )


_STREAM_RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


def retryable(err: grpc.RpcError) -> bool:
    """Whether a failed streaming call is worth reopening."""
    code = err.code()
    if code in _STREAM_RETRY_CODES:
        return True
    # An HTTP/2 stream reset by a dying server surfaces as INTERNAL.
    return code == grpc.StatusCode.INTERNAL and "RST_STREAM" in (err.details() or "")


# -- streams ----------------------------------------------------------------


def create_stream(
    stream: str,
    *,
    max_events: Optional[int] = None,
    max_age: Optional[Seconds] = None,
    ttl: Optional[Seconds] = None,
    exist_ok: bool = False,
) -> Op[types_pb2.StreamInfo]:
    """Creates an empty stream with optional retention rules and returns
    its ``StreamInfo``. With ``exist_ok`` an existing stream is returned."""
    retention = None
    if max_events or max_age is not None or ttl is not None:
        retention = types_pb2.Retention(
            max_events=max_events or 0, max_age=_duration(max_age), ttl=_duration(ttl)
        )
    request = event_log_pb2.CreateStreamRequest(stream=stream, retention=retention)
    try:
        return (yield Call("event_log", "CreateStream", request)).info
    except AlreadyExistsError:
        if not exist_ok:
            raise
        return (yield from get_stream(stream))


def get_stream(stream: str) -> Op[types_pb2.StreamInfo]:
    """Describes a stream; raises :class:`NotFoundError` if missing."""
    request = event_log_pb2.GetStreamRequest(stream=stream)
    return (yield Call("event_log", "GetStream", request)).info


def list_streams_page(pattern: str, page_token: str) -> Op[event_log_pb2.ListStreamsResponse]:
    """One page of ``list_streams`` (each client pages its own way: the
    blocking one is a generator, the async one an async generator)."""
    request = event_log_pb2.ListStreamsRequest(
        pattern=pattern, page_size=1000, page_token=page_token
    )
    return (yield Call("event_log", "ListStreams", request))


def delete_stream(stream: str) -> Op[int]:
    """Deletes a stream with its events, groups and checkpoints; returns
    how many events were deleted."""
    request = event_log_pb2.DeleteStreamRequest(stream=stream)
    return (yield Call("event_log", "DeleteStream", request)).events_deleted


# -- publishing and reading -------------------------------------------------


def publish(
    stream: str,
    events: Union[EventLike, Iterable[EventLike]],
    *,
    expected_last_sequence: Optional[int] = None,
    expect_no_stream: bool = False,
    expect_exists: bool = False,
) -> Op[List[Published]]:
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
    response = yield Call("event_log", "Publish", request)
    return [Published.from_proto(p) for p in response.positions]


def read(
    stream: str,
    *,
    from_sequence: Optional[int] = None,
    from_time: Optional[datetime] = None,
    backward: bool = False,
    limit: Optional[int] = None,
    types: Optional[Sequence[str]] = None,
    sources: Optional[Sequence[str]] = None,
    subjects: Optional[Sequence[str]] = None,
) -> Op[List[Event]]:
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
        page = yield Call("event_log", "Read", request)
        events.extend(Event(e) for e in page.events)
        if page.end_of_stream or not page.events or not page.next_sequence:
            break
        next_sequence = page.next_sequence
    return events


def trim(
    stream: str,
    *,
    max_events: Optional[int] = None,
    before_sequence: Optional[int] = None,
    before_time: Optional[datetime] = None,
) -> Op[int]:
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
    return (yield Call("event_log", "Trim", request)).removed


def take(stream: str, limit: int = 1, *, newest: bool = False) -> Op[List[Event]]:
    """Removes and returns up to ``limit`` events from the oldest end (a
    queue) or, with ``newest``, the newest end (a stack)."""
    request = event_log_pb2.TakeRequest(
        stream=stream,
        limit=limit,
        end=event_log_pb2.TAKE_END_NEWEST if newest else event_log_pb2.TAKE_END_OLDEST,
    )
    return [Event(e) for e in (yield Call("event_log", "Take", request)).events]


class SubscribeSpec(NamedTuple):
    """What ``subscribe`` asked for; each client opens it its own way."""

    request: event_log_pb2.SubscribeRequest
    reconnect: bool
    max_backoff: float
    reconnect_timeout: Optional[float]


def subscribe(
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
) -> SubscribeSpec:
    """Subscribes to streams and/or patterns (``"orders:*"``).

    Returns a ``Subscription``, an iterator of :class:`Event` (an async
    iterator on ``riverlog.aio.Client``): the history from the starting
    point, then live events, until closed.

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
    return SubscribeSpec(request, reconnect, max_backoff, reconnect_timeout)


class ProducerSpec(NamedTuple):
    """The limits ``producer`` was given."""

    max_batch_events: int
    max_batch_bytes: int
    linger: float
    max_buffered: int


def producer(
    *,
    max_batch_events: int = 500,
    max_batch_bytes: int = 1 << 20,
    linger: float = 0.005,
    max_buffered: int = 20_000,
) -> ProducerSpec:
    """A ``Producer`` that batches events per stream over one
    ``PublishStream`` call and resolves each event's future to its
    position (see :class:`riverlog.Producer`). Close it, or use it as a
    context manager (``async with`` on ``riverlog.aio.Client``)."""
    if max_batch_events < 1 or max_batch_bytes < 1 or max_buffered < 1 or linger < 0:
        raise ValueError("batch limits and max_buffered must be positive, linger >= 0")
    return ProducerSpec(max_batch_events, max_batch_bytes, linger, max_buffered)


# -- consumer groups --------------------------------------------------------


def create_group(
    stream: str,
    group: str,
    *,
    start: Union[str, int] = "earliest",
    ack_timeout: Optional[Seconds] = None,
    max_deliveries: Optional[int] = None,
    dead_letter_stream: Optional[str] = None,
    exist_ok: bool = False,
) -> Op[cg_pb2.GroupInfo]:
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
        return (yield Call("consumer_groups", "CreateGroup", request)).info
    except AlreadyExistsError:
        if not exist_ok:
            raise
        return (yield from get_group(stream, group))


def get_group(stream: str, group: str) -> Op[cg_pb2.GroupInfo]:
    """Describes a group: consumers, pending entries, lag."""
    request = cg_pb2.GetGroupRequest(stream=stream, group=group)
    return (yield Call("consumer_groups", "GetGroup", request)).info


def list_groups(stream: str) -> Op[List[cg_pb2.GroupInfo]]:
    """The groups of a stream, in name order."""
    request = cg_pb2.ListGroupsRequest(stream=stream)
    return list((yield Call("consumer_groups", "ListGroups", request)).groups)


def delete_group(stream: str, group: str) -> Op[None]:
    """Deletes a group with its pending entries."""
    yield Call("consumer_groups", "DeleteGroup", cg_pb2.DeleteGroupRequest(stream=stream, group=group))


def delete_consumer(stream: str, group: str, consumer: str) -> Op[int]:
    """Removes a consumer; returns how many pending entries it released."""
    request = cg_pb2.DeleteConsumerRequest(stream=stream, group=group, consumer=consumer)
    return (yield Call("consumer_groups", "DeleteConsumer", request)).pending_released


class ConsumeSpec(NamedTuple):
    """What ``consume`` asked for; each client opens it its own way."""

    request: cg_pb2.ConsumeRequest
    reconnect: bool
    max_backoff: float
    reconnect_timeout: Optional[float]


def consume(
    stream: str,
    group: str,
    consumer: str,
    *,
    max_in_flight: Optional[int] = None,
    heartbeat_interval: Optional[Seconds] = None,
    reconnect: bool = True,
    max_backoff: float = 5.0,
    reconnect_timeout: Optional[float] = None,
) -> ConsumeSpec:
    """Receives the group's events as ``consumer``: returns a
    ``Consumer``, an iterator of ``Delivery`` (an async iterator on
    ``riverlog.aio.Client``) that runs until closed. Ack each delivery
    (``delivery.ack()``) when processed; at most ``max_in_flight`` (server
    default 100) may be unacked at once."""
    request = cg_pb2.ConsumeRequest(
        stream=stream,
        group=group,
        consumer=consumer,
        max_in_flight=max_in_flight or 0,
        heartbeat_interval=_duration(heartbeat_interval),
    )
    return ConsumeSpec(request, reconnect, max_backoff, reconnect_timeout)


def fetch(
    stream: str,
    group: str,
    consumer: str,
    *,
    count: int = 1,
    block: Optional[Seconds] = None,
    pending_only: bool = False,
) -> Op[Deliveries]:
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
    response = yield Call("consumer_groups", "Fetch", request)
    return Deliveries(group, consumer, response.deliveries)


def ack(stream: str, group: str, sequences: Iterable[int]) -> Op[int]:
    """Acknowledges deliveries by sequence; returns how many were pending."""
    request = cg_pb2.AckRequest(stream=stream, group=group, sequences=list(sequences))
    return (yield Call("consumer_groups", "Ack", request)).acked


def nack(
    stream: str,
    group: str,
    sequences: Iterable[int],
    *,
    consumer: Optional[str] = None,
    delay: Optional[Seconds] = None,
) -> Op[int]:
    """Rejects deliveries: they are delivered again after ``delay``; one
    that was its group's last allowed delivery goes to the dead-letter
    stream at once instead. Give ``consumer`` so only entries it still
    holds are nacked. Returns how many were nacked."""
    request = cg_pb2.NackRequest(
        stream=stream,
        group=group,
        sequences=list(sequences),
        consumer=consumer or "",
        delay=_duration(delay),
    )
    return (yield Call("consumer_groups", "Nack", request)).nacked


def list_pending(
    stream: str,
    group: str,
    *,
    consumer: str = "",
    min_idle: Optional[Seconds] = None,
    limit: int = 100,
    after_sequence: int = 0,
) -> Op[cg_pb2.ListPendingResponse]:
    """Pending (delivered, unacked) entries: a summary and a page of
    entries (XPENDING)."""
    request = cg_pb2.ListPendingRequest(
        stream=stream,
        group=group,
        consumer=consumer,
        min_idle=_duration(min_idle),
        limit=limit,
        after_sequence=after_sequence,
    )
    return (yield Call("consumer_groups", "ListPending", request))


def claim(
    stream: str,
    group: str,
    consumer: str,
    *,
    min_idle: Seconds,
    sequences: Optional[Iterable[int]] = None,
    count: Optional[int] = None,
) -> Op[Deliveries]:
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
    response = yield Call("consumer_groups", "Claim", request)
    return Deliveries(group, consumer, response.deliveries)


# -- checkpoints ------------------------------------------------------------


def commit_checkpoint(
    name: str,
    *,
    stream: str = "",
    sequence: Optional[int] = None,
    position: Optional[int] = None,
) -> Op[checkpoints_pb2.Checkpoint]:
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
    return (yield Call("checkpoints_stub", "CommitCheckpoint", request)).checkpoint


def get_checkpoint(name: str, *, stream: str = "") -> Op[checkpoints_pb2.Checkpoint]:
    """Reads a committed checkpoint; :class:`NotFoundError` if none."""
    request = checkpoints_pb2.GetCheckpointRequest(name=name, stream=stream)
    return (yield Call("checkpoints_stub", "GetCheckpoint", request)).checkpoint
