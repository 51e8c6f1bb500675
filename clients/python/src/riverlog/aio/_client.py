"""The asyncio riverlog client: ``riverlog.Client``'s operations, awaited.

The operations themselves (requests, paging, answers) are the ones of
``riverlog._operations``, shared with the blocking client; the resume and
backoff decisions of subscriptions and consumers are ``riverlog._streaming``'s.
This module makes the calls with ``grpc.aio`` and waits with asyncio.
"""

from __future__ import annotations

import asyncio
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Coroutine,
    Generic,
    List,
    Optional,
    TypeVar,
)

import grpc
import grpc.aio

from .. import _operations as ops
from .._events import Event
from .._streaming import Consuming, DeliveryBase, ReconnectPolicy, Subscribing
from ..v1 import types_pb2
from ._producer import Producer
from ._tasks import task_cancelled

if TYPE_CHECKING:
    from typing_extensions import Concatenate, Self

    from .._operations import P

__all__ = ["Client", "Subscription", "Consumer", "Delivery"]

T = TypeVar("T")
R = TypeVar("R")


class _Reconnecting(Generic[T]):
    """An async iterator over a server-streaming call that reopens the call
    after transient failures (UNAVAILABLE: server restart, network blip),
    with jittered exponential backoff (see ``ReconnectPolicy``).

    Cancelling a task that awaits the next item cancels the call (grpc.aio
    does); iterating again opens a new one, from where the iterator stands.
    """

    def __init__(self, client: Any, spec: Any) -> None:
        self._client = client
        self._policy = ReconnectPolicy.of(spec)
        self._setup(spec)
        self._closed = False
        #: Set by close() to cut a backoff pause short (made on first use, in
        #: the loop that iterates).
        self._wakeup: Optional[asyncio.Event] = None
        #: How many times the call was reopened after a failure.
        self.reconnects = 0
        # Open the call at once (the RPC starts as soon as the loop runs).
        self._call: Any = self._open()

    # Mixed in (Subscribing, Consuming): how the call opens and what its
    # responses yield.
    def _setup(self, spec: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _open(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _handle(self, msg: Any) -> Optional[T]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __aiter__(self) -> "Self":
        return self

    async def __anext__(self) -> T:
        while not self._closed:
            if self._call is None:
                self._call = self._open()
            try:
                msg = await self._call.read()
            except asyncio.CancelledError:
                # grpc.aio cancelled the call with the read. Closed from
                # elsewhere: the iteration ends; else the task is cancelled.
                self._call = None
                if self._closed and not task_cancelled():
                    break
                raise
            except grpc.RpcError as err:
                self._call = None
                if self._closed:
                    break
                self._policy.check(err)
            else:
                if msg is not grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
                    self._policy.received()
                    item = self._handle(msg)
                    if item is not None:
                        return item
                    continue
                # The server ended the stream without an error: reopen it.
                self._call = None
            if not self._policy.reconnect:
                self._closed = True
                break
            await self._pause(self._policy.next_delay())
            if not self._closed:
                self.reconnects += 1
        raise StopAsyncIteration

    async def _pause(self, seconds: float) -> None:
        """Sleeps before reopening; close() cuts it short."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _established(self) -> None:
        """Waits until the server has answered the call's opening: it sends
        its headers once the subscription is registered, so from then on
        every commit is delivered, even with a ``"latest"`` start. A refusal
        (bad stream name, unknown group, permission) is raised here; a
        transient failure is left to the iteration, which reconnects."""
        call = self._call
        if call is None:
            return
        await call.initial_metadata()
        if call.done():
            try:
                await call.read()  # raises the call's error
            except grpc.RpcError as err:
                self._call = None
                self._policy.check(err)

    def close(self) -> None:
        """Ends the iteration and cancels the call."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._wakeup is not None:
            self._wakeup.set()

    async def aclose(self) -> None:
        """Ends the iteration and cancels the call (for
        ``contextlib.aclosing``)."""
        self.close()

    async def __aenter__(self) -> "Self":
        try:
            await self._established()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and self._call is not None:
                self._call.cancel()
        except Exception:
            pass


class Subscription(Subscribing, _Reconnecting[Event]):
    """A live subscription: an async iterator of :class:`riverlog.Event`
    that first yields the matching history, then new events as they are
    committed.

    When the connection fails (server restart, network failure) it
    reconnects by itself and resumes right after the last event it yielded
    (or a later safe point the server reported), so no event is yielded
    twice or skipped. Use it as ``async with`` (entering waits until the
    server has registered the subscription, and raises a refusal such as a
    bad stream name; leaving cancels the call), or call :meth:`close`.
    """


class Delivery(DeliveryBase):
    """An event handed to one consumer of a group. Process it, then
    ``await`` :meth:`ack` (or :meth:`nack` to have it delivered again).

    Used as ``async with`` it acks when the block succeeds and nacks when it
    raises (a cancellation included)::

        async for delivery in consumer:
            async with delivery:
                await handle(delivery.event)
    """

    _client: "Client"

    async def ack(self) -> bool:
        """Acknowledges the delivery; False if it was no longer pending."""
        return await self._client._run(self._acking())

    async def nack(self, delay: Optional[ops.Seconds] = None) -> bool:
        """Rejects the delivery: it is delivered again after ``delay`` seconds
        (and counts toward the group's ``max_deliveries``). False if this
        consumer no longer held it."""
        return await self._client._run(self._nacking(delay))

    async def __aenter__(self) -> "Delivery":
        return self

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            await self.ack()
        else:
            await self.nack()


class Consumer(Consuming[Delivery], _Reconnecting[Delivery]):
    """An async iterator of :class:`Delivery` pushed to one consumer of a
    group (``Consume``), reconnecting after transient failures. Deliveries
    not acked stay pending and come back after the group's ``ack_timeout``.
    Use it as ``async with`` (entering raises a refusal such as an unknown
    group), or call :meth:`close`."""

    _delivery_type = Delivery


def _awaitable(
    operation: "Callable[P, ops.Op[R]]",
) -> "Callable[Concatenate[Client, P], Coroutine[Any, Any, R]]":
    """A client method that runs an operation with awaited calls."""

    async def method(self: Client, /, *args: Any, **kwargs: Any) -> Any:
        return await self._run(operation(*args, **kwargs))

    returns = operation.__annotations__.get("return", "")
    return ops.bind(method, operation, returns[3:-1] if returns.startswith("Op[") else returns)


def _delivering(
    operation: "Callable[P, ops.Op[ops.Deliveries]]",
) -> "Callable[Concatenate[Client, P], Coroutine[Any, Any, List[Delivery]]]":
    """A client method that runs an operation returning deliveries."""

    async def method(self: Client, /, *args: Any, **kwargs: Any) -> Any:
        found = await self._run(operation(*args, **kwargs))
        return [Delivery(self, found.group, found.consumer, d) for d in found.protos]

    return ops.bind(method, operation, "List[Delivery]")


class Client(ops.ClientBase):
    """A riverlog client for asyncio, over one ``grpc.aio`` channel: the
    methods of :class:`riverlog.Client`, awaited.

    Args:
        target: The server's gRPC address, e.g. ``"localhost:50051"``.
        token: A bearer token, sent as ``authorization: Bearer <token>``.
        credentials: ``grpc.ChannelCredentials`` for TLS (e.g.
            ``grpc.ssl_channel_credentials()``); plaintext when omitted.
        options: Extra gRPC channel options, overriding the defaults (which
            raise the message size limits, reconnect fast, and retry calls
            that failed with UNAVAILABLE, except Take, up to 5 times).
        timeout: Deadline in seconds for unary calls (``None``: none).

    Create it in the event loop that uses it, best as ``async with
    riverlog.aio.Client(...) as client:``, or ``await client.close()``.
    Unary methods are coroutines; :meth:`subscribe` and :meth:`consume`
    return async iterators and :meth:`producer` a producer, each best used
    with ``async with``. Failed calls raise the same
    :class:`riverlog.RiverlogError` subclasses as the blocking client. The
    generated ``grpc.aio`` stubs are :attr:`event_log`,
    :attr:`consumer_groups` and :attr:`checkpoints_stub`.
    """

    _channels = grpc.aio

    # -- plumbing ---------------------------------------------------------

    async def _run(self, operation: ops.Op[R]) -> R:
        """Runs an operation, awaiting each call it asks for."""
        run = ops.Runner(operation)
        while run.call is not None:
            try:
                response = await self._method(run.call)(run.call.request)
            except grpc.RpcError as err:
                run.failed(err)
            else:
                run.answered(response)
        return run.result

    async def close(self, grace: Optional[float] = None) -> None:
        """Closes the channel: calls still open are cancelled (after
        ``grace`` seconds, if given)."""
        await self._channel.close(grace)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- streams ----------------------------------------------------------

    create_stream = _awaitable(ops.create_stream)
    get_stream = _awaitable(ops.get_stream)
    delete_stream = _awaitable(ops.delete_stream)

    async def list_streams(self, pattern: str = "") -> AsyncIterator[types_pb2.StreamInfo]:
        """Yields every stream (matching ``pattern``, e.g. ``"orders:*"``) in
        name order, fetching pages as needed."""
        token = ""
        while True:
            page = await self._run(ops.list_streams_page(pattern, token))
            for info in page.streams:
                yield info
            token = page.next_page_token
            if not token:
                return

    # -- publishing and reading -------------------------------------------

    publish = _awaitable(ops.publish)
    producer = ops.opening(Producer, ops.producer)
    read = _awaitable(ops.read)
    subscribe = ops.opening(Subscription, ops.subscribe)
    trim = _awaitable(ops.trim)
    take = _awaitable(ops.take)

    # -- consumer groups --------------------------------------------------

    create_group = _awaitable(ops.create_group)
    get_group = _awaitable(ops.get_group)
    list_groups = _awaitable(ops.list_groups)
    delete_group = _awaitable(ops.delete_group)
    delete_consumer = _awaitable(ops.delete_consumer)
    consume = ops.opening(Consumer, ops.consume)
    fetch = _delivering(ops.fetch)
    ack = _awaitable(ops.ack)
    nack = _awaitable(ops.nack)
    list_pending = _awaitable(ops.list_pending)
    claim = _delivering(ops.claim)

    # -- checkpoints ------------------------------------------------------

    commit_checkpoint = _awaitable(ops.commit_checkpoint)
    get_checkpoint = _awaitable(ops.get_checkpoint)
