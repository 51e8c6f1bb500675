"""What the subscriptions and consumers of both clients share: when to
reopen a failed call and after how long, where a subscription resumes, and
what a delivery holds. The blocking iterators (``riverlog.Subscription``)
and the async ones (``riverlog.aio.Subscription``) differ only in how they
wait; every decision is made here."""

from __future__ import annotations

import random
import time
from typing import Any, Generic, Optional, Type, TypeVar

import grpc

from . import _operations as ops
from ._errors import RiverlogError
from ._events import Event
from ._operations import retryable
from .v1 import consumer_groups_pb2 as cg_pb2
from .v1 import event_log_pb2, types_pb2

_FIRST_BACKOFF = 0.1


class ReconnectPolicy:
    """Decides whether a failed streaming call is reopened, and when:
    jittered exponential backoff from 0.1 s up to ``max_backoff``, for at
    most ``timeout`` seconds of failing in a row (``None``: forever)."""

    def __init__(self, reconnect: bool, max_backoff: float, timeout: Optional[float]) -> None:
        #: Whether to reopen at all (``False``: a failure is raised, an end ends).
        self.reconnect = reconnect
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._backoff = _FIRST_BACKOFF
        #: When the current run of failures began (``None``: not failing).
        self._failing_since: Optional[float] = None

    @classmethod
    def of(cls, spec: "ops.SubscribeSpec | ops.ConsumeSpec") -> "ReconnectPolicy":
        return cls(spec.reconnect, spec.max_backoff, spec.reconnect_timeout)

    def received(self) -> None:
        """A message arrived: the call works, so backoff starts over."""
        self._backoff = _FIRST_BACKOFF
        self._failing_since = None

    def check(self, err: grpc.RpcError) -> None:
        """After the call failed with ``err``: returns when it should be
        reopened, else raises it as a :class:`RiverlogError`."""
        if not (self.reconnect and retryable(err)):
            raise RiverlogError.from_rpc_error(err) from None
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if self._timeout is not None and now - self._failing_since > self._timeout:
            raise RiverlogError.from_rpc_error(err) from None

    def next_delay(self) -> float:
        """Seconds to wait before reopening; each call doubles the next."""
        delay = self._backoff * random.uniform(0.8, 1.2)
        self._backoff = min(self._backoff * 2, self._max_backoff)
        return delay


class SubscriptionCursor:
    """Where a subscription stands: the last event it yielded and the
    position from which a reopened call resumes, so that across
    reconnections no event is yielded twice or skipped."""

    def __init__(self, request: event_log_pb2.SubscribeRequest) -> None:
        self._request = request
        #: Global position of the last event yielded (None before the first).
        self.last_position: Optional[int] = None
        #: Position from which a reconnection resumes (None: the original start).
        self.resume_position: Optional[int] = None
        #: True once the server reported that the history has been delivered.
        self.caught_up = False

    def request(self) -> event_log_pb2.SubscribeRequest:
        """The request that (re)opens the subscription."""
        if self.resume_position is None:
            return self._request
        request = event_log_pb2.SubscribeRequest()
        request.CopyFrom(self._request)
        request.start.CopyFrom(types_pb2.StartPosition(position=self.resume_position))
        return request

    def _advance(self, examined: int) -> None:
        # Everything up to `examined` has been delivered or filtered out.
        if self.resume_position is None or examined + 1 > self.resume_position:
            self.resume_position = examined + 1

    def handle(self, msg: event_log_pb2.SubscribeResponse) -> Optional[Event]:
        """The event a response carries (None for markers), noting how far
        the subscription got."""
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


class Subscribing:
    """What a subscription of either client does with its call: open it
    from where the :class:`SubscriptionCursor` stands, and turn responses
    into events. Mixed into each client's reconnecting iterator."""

    _client: Any
    _cursor: SubscriptionCursor

    def _setup(self, spec: ops.SubscribeSpec) -> None:
        self._cursor = SubscriptionCursor(spec.request)

    def _open(self) -> Any:
        return self._client.event_log.Subscribe(
            self._cursor.request(), metadata=self._client._metadata
        )

    def _handle(self, msg: event_log_pb2.SubscribeResponse) -> Optional[Event]:
        return self._cursor.handle(msg)

    @property
    def last_position(self) -> Optional[int]:
        """Global position of the last event yielded (None before the first)."""
        return self._cursor.last_position

    @property
    def resume_position(self) -> Optional[int]:
        """Position from which a reconnection resumes (None: the original start)."""
        return self._cursor.resume_position

    @property
    def caught_up(self) -> bool:
        """True once the server reported that the history has been delivered."""
        return self._cursor.caught_up


class DeliveryBase:
    """An event handed to one consumer of a group, without the client calls
    (``ack``/``nack``), which each client's ``Delivery`` adds."""

    def __init__(self, client: object, group: str, consumer: str, proto: cg_pb2.Delivery) -> None:
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

    def _acking(self) -> ops.Op[bool]:
        """Acks it: True if it was still pending."""
        return (yield from ops.ack(self.stream, self.group, [self.sequence])) == 1

    def _nacking(self, delay: Optional[ops.Seconds]) -> ops.Op[bool]:
        """Nacks it: True if this consumer still held it."""
        nacked = yield from ops.nack(
            self.stream, self.group, [self.sequence], consumer=self.consumer, delay=delay
        )
        return nacked == 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.event!r}, delivery_count={self.delivery_count})"


D = TypeVar("D", bound=DeliveryBase)


class Consuming(Generic[D]):
    """What a consumer of either client does with its ``Consume`` call:
    open it, and turn deliveries into the client's :attr:`_delivery_type`.
    Mixed into each client's reconnecting iterator."""

    _client: Any
    _delivery_type: Type[D]
    _request: cg_pb2.ConsumeRequest

    def _setup(self, spec: ops.ConsumeSpec) -> None:
        self._request = spec.request

    def _open(self) -> Any:
        return self._client.consumer_groups.Consume(self._request, metadata=self._client._metadata)

    def _handle(self, msg: cg_pb2.ConsumeResponse) -> Optional[D]:
        if msg.WhichOneof("message") != "delivery":
            return None  # a heartbeat
        return self._delivery_type(
            self._client, self._request.group, self._request.consumer, msg.delivery
        )
