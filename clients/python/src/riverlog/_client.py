"""The idiomatic riverlog client (blocking; ``riverlog.aio`` has the async one).

Every operation's request building, paging and answer reading lives in
``_operations`` and is shared with the async client; this module runs those
operations with blocking calls and adds the iterators and the producer.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, List, Optional, TypeVar

import grpc

from . import _operations as ops
from ._events import Event
from ._producer import Producer
from ._streaming import Consuming, DeliveryBase, ReconnectPolicy, Subscribing
from .v1 import (
    types_pb2,
)

if TYPE_CHECKING:
    from typing_extensions import Concatenate

    from ._operations import P

__all__ = ["Client", "Subscription", "Consumer", "Delivery"]

T = TypeVar("T")
R = TypeVar("R")


class _Reconnecting(Generic[T]):
    """An iterator over a server-streaming call that reopens the call after
    transient failures (UNAVAILABLE: server restart, network blip), with
    jittered exponential backoff (see :class:`ReconnectPolicy`)."""

    def __init__(self, client: Any, spec: Any) -> None:
        self._client = client
        self._policy = ReconnectPolicy.of(spec)
        self._setup(spec)
        self._call: Any = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        #: How many times the call was reopened after a failure.
        self.reconnects = 0
        # Open the call at once, so events committed after subscribe()
        # returns are not missed by a "latest" start.
        self._call = self._open()
        self._gen = self._run()

    # Mixed in (Subscribing, Consuming): how the call opens and what its
    # responses yield.
    def _setup(self, spec: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _open(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _handle(self, msg: Any) -> Optional[T]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self) -> Iterator[T]:
        call = self._call
        while not self._closed.is_set():
            if call is None:
                with self._lock:
                    if self._closed.is_set():
                        return
                    call = self._call = self._open()
            try:
                for msg in call:
                    self._policy.received()
                    item = self._handle(msg)
                    if item is not None:
                        yield item
                # The server ended the stream without an error: reopen it.
            except grpc.RpcError as err:
                if self._closed.is_set():
                    return
                self._policy.check(err)
            finally:
                call.cancel()
                call = None
            if not self._policy.reconnect:
                return
            if self._closed.wait(self._policy.next_delay()):
                return
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


class Subscription(Subscribing, _Reconnecting[Event]):
    """A live subscription: an iterator of :class:`Event` that first yields
    the matching history, then new events as they are committed.

    When the connection fails (server restart, network failure) it reconnects
    by itself and resumes right after the last event it yielded (or a later
    safe point the server reported), so no event is yielded twice or skipped.
    Iterate it, and :meth:`close` it (or use it as a context manager) when done.
    """


class Delivery(DeliveryBase):
    """An event handed to one consumer of a group. Process it, then
    :meth:`ack` it (or :meth:`nack` it to have it delivered again).

    Used as a context manager it acks when the block succeeds and nacks when
    it raises::

        for delivery in client.consume("orders", "billing", "worker-1"):
            with delivery:
                handle(delivery.event)
    """

    _client: "Client"

    def ack(self) -> bool:
        """Acknowledges the delivery; False if it was no longer pending."""
        return self._client._run(self._acking())

    def nack(self, delay: Optional[ops.Seconds] = None) -> bool:
        """Rejects the delivery: it is delivered again after ``delay`` seconds
        (and counts toward the group's ``max_deliveries``). False if this
        consumer no longer held it."""
        return self._client._run(self._nacking(delay))

    def __enter__(self) -> "Delivery":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.ack()
        else:
            self.nack()


class Consumer(Consuming[Delivery], _Reconnecting[Delivery]):
    """An iterator of :class:`Delivery` pushed to one consumer of a group
    (``Consume``), reconnecting after transient failures. Deliveries not acked
    stay pending and come back after the group's ``ack_timeout``."""

    _delivery_type = Delivery


def _blocking(operation: "Callable[P, ops.Op[R]]") -> "Callable[Concatenate[Client, P], R]":
    """A client method that runs an operation with blocking calls."""

    def method(self: Client, /, *args: Any, **kwargs: Any) -> Any:
        return self._run(operation(*args, **kwargs))

    returns = operation.__annotations__.get("return", "")
    return ops.bind(method, operation, returns[3:-1] if returns.startswith("Op[") else returns)


def _delivering(
    operation: "Callable[P, ops.Op[ops.Deliveries]]",
) -> "Callable[Concatenate[Client, P], List[Delivery]]":
    """A client method that runs an operation returning deliveries."""

    def method(self: Client, /, *args: Any, **kwargs: Any) -> Any:
        found = self._run(operation(*args, **kwargs))
        return [Delivery(self, found.group, found.consumer, d) for d in found.protos]

    return ops.bind(method, operation, "List[Delivery]")


class Client(ops.ClientBase):
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
    manager, or call :meth:`close`. ``riverlog.aio.Client`` is the same
    client for asyncio.
    """

    _channels = grpc

    # -- plumbing ---------------------------------------------------------

    def _run(self, operation: ops.Op[R]) -> R:
        """Runs an operation, making each call it asks for."""
        run = ops.Runner(operation)
        while run.call is not None:
            try:
                response = self._method(run.call)(run.call.request)
            except grpc.RpcError as err:
                run.failed(err)
            else:
                run.answered(response)
        return run.result

    def close(self) -> None:
        """Closes the channel (ends open subscriptions)."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- streams ----------------------------------------------------------

    create_stream = _blocking(ops.create_stream)
    get_stream = _blocking(ops.get_stream)
    delete_stream = _blocking(ops.delete_stream)

    def list_streams(self, pattern: str = "") -> Iterator[types_pb2.StreamInfo]:
        """Yields every stream (matching ``pattern``, e.g. ``"orders:*"``) in
        name order, fetching pages as needed."""
        token = ""
        while True:
            page = self._run(ops.list_streams_page(pattern, token))
            yield from page.streams
            token = page.next_page_token
            if not token:
                return

    # -- publishing and reading -------------------------------------------

    publish = _blocking(ops.publish)
    producer = ops.opening(Producer, ops.producer)
    read = _blocking(ops.read)
    subscribe = ops.opening(Subscription, ops.subscribe)
    trim = _blocking(ops.trim)
    take = _blocking(ops.take)

    # -- consumer groups --------------------------------------------------

    create_group = _blocking(ops.create_group)
    get_group = _blocking(ops.get_group)
    list_groups = _blocking(ops.list_groups)
    delete_group = _blocking(ops.delete_group)
    delete_consumer = _blocking(ops.delete_consumer)
    consume = ops.opening(Consumer, ops.consume)
    fetch = _delivering(ops.fetch)
    ack = _blocking(ops.ack)
    nack = _blocking(ops.nack)
    list_pending = _blocking(ops.list_pending)
    claim = _delivering(ops.claim)

    # -- checkpoints ------------------------------------------------------

    commit_checkpoint = _blocking(ops.commit_checkpoint)
    get_checkpoint = _blocking(ops.get_checkpoint)
