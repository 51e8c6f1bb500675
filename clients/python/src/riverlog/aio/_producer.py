"""A batching producer over one ``PublishStream`` call, for asyncio.

What it decides (batches, order, refusals) is decided by
``riverlog._batching.BatchQueue``, exactly as for the blocking
``riverlog.Producer``; this module adds two tasks on the call (one writes
batches as they fall due, one reads the answers) and the waiting. Everything
runs in the one event loop, so the queue needs no lock: each of its calls
completes between two awaits.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Set

import grpc
import grpc.aio

from .._batching import Batch, ProducerBase, Settlement, Wait, reader_failure, settle
from .._errors import RiverlogError
from .._events import EventLike, Published, to_cloud_event
from .._operations import ProducerSpec
from ._tasks import task_cancelled

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Producer"]


class _Changes:
    """Wakes the tasks waiting for the producer's state to change."""

    def __init__(self) -> None:
        self._waiters: Set["asyncio.Future[None]"] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: Optional[float] = None) -> None:
        """Until the next :meth:`notify`, or ``timeout`` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    async def until(self, predicate: Callable[[], bool], deadline: Optional[float]) -> None:
        """Until ``predicate()`` holds; ``TimeoutError`` past ``deadline``
        (monotonic seconds)."""
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("producer flush timed out")
            await self.wait(remaining)


def _unless_cancelled(future: "asyncio.Future[Published]") -> bool:
    return not future.cancelled()


class Producer(ProducerBase["asyncio.Future[Published]"]):
    """Publishes events in batches over one ``PublishStream`` call: the
    asyncio twin of :class:`riverlog.Producer`, with the same batching,
    ordering and refusal rules (read its documentation).

    ``await send(stream, event)`` queues one event (waiting while
    ``max_buffered`` events are unanswered) and returns an
    ``asyncio.Future`` that resolves to its :class:`riverlog.Published`
    position, or raises the :class:`riverlog.RiverlogError` its batch was
    refused with; ``await`` it, or gather many. A future cancelled before
    its batch goes out takes its event out of the batch; cancelling it
    later does not unsend it.

    When the call fails (server unreachable, shutting down), every
    unanswered event fails with that error and the producer is closed.
    Use it as ``async with client.producer() as producer:`` (leaving
    flushes and ends the call; leaving by cancellation cancels the call,
    failing what is unanswered), or ``await close()``. Create it inside the
    event loop that uses it.
    """

    def __init__(self, client: "Client", spec: ProducerSpec) -> None:
        super().__init__(spec)
        self._changes = _Changes()
        self._call = client.event_log.PublishStream(metadata=client._metadata)
        self._writer = asyncio.ensure_future(self._write_batches())
        self._reader = asyncio.ensure_future(self._read_answers())

    # -- public -----------------------------------------------------------

    async def send(self, stream: str, event: EventLike) -> "asyncio.Future[Published]":
        """Queues ``event`` for ``stream``; returns the future of its position.

        Waits while ``max_buffered`` events are unanswered. Raises the
        call's error if the producer has failed, ``RuntimeError`` once it
        is closed.
        """
        message = to_cloud_event(event)
        future: "asyncio.Future[Published]" = asyncio.get_running_loop().create_future()
        await self._changes.until(self._has_room, None)
        self._raise_if_stopped()
        self._queue.add(stream, message, future)
        self._changes.notify()
        return future

    async def flush(self, timeout: Optional[float] = None) -> None:
        """Sends every event queued so far now, and waits until all of them
        are answered; events sent meanwhile are not waited for.

        Raises ``TimeoutError`` after ``timeout`` seconds, and the call's
        error if the call failed. Refusals of single batches are not raised
        here: they are in their events' futures.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = self._queue.flush()
        self._changes.notify()
        await self._changes.until(
            lambda: self._error is not None or all(b.done for b in waiting), deadline
        )
        if self._error is not None:
            raise self._error

    async def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, then ends the call; waits at most ``timeout`` seconds in
        all, then cancels the call. Idempotent."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if not self._stopped():
                await self.flush(timeout)
        finally:
            self._closing = True
            self._changes.notify()
            await self._end(None if deadline is None else max(0.0, deadline - time.monotonic()))

    async def __aenter__(self) -> "Producer":
        return self

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            self._closing = True
            self._changes.notify()
            await self._end(0)
        else:
            await self.close()

    # -- the call ---------------------------------------------------------

    async def _end(self, timeout: Optional[float]) -> None:
        """Waits up to ``timeout`` seconds for the call to end, then cancels
        it (and so fails what is unanswered)."""
        tasks = {self._writer, self._reader}
        try:
            await asyncio.wait(tasks, timeout=timeout)
        finally:
            if not self._reader.done():
                self._call.cancel()
        await asyncio.wait(tasks)

    async def _next_batch(self) -> "Optional[Batch[asyncio.Future[Published]]]":
        """The next batch to send, waiting for one; ``None`` ends the call
        (closed with nothing left, or failed)."""
        while True:
            due = self._due(_unless_cancelled)
            self._changes.notify()  # cancelled events freed places
            if not isinstance(due, Wait):
                return due
            await self._changes.wait(due.seconds)

    async def _write_batches(self) -> None:
        """The writer task: sends each batch as it falls due, then half-closes
        the call. A failed write ends it; the reader fails what is left."""
        try:
            # Nothing is written before the server accepted the call (its
            # headers came): grpc.aio turns a write that races with a refusal
            # (an unknown token, too many calls) into an INTERNAL status that
            # hides the refusal's own.
            await self._call.initial_metadata()
            if self._call.done():
                return  # refused: the reader reads why
            while True:
                batch = await self._next_batch()
                if batch is None:
                    break
                await self._call.write(batch.request())
            await self._call.done_writing()
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the call failed: the reader reads why
        except asyncio.CancelledError:
            raise
        except BaseException:
            self._call.cancel()  # a bug: end the call, so nothing hangs
            raise

    async def _read_answers(self) -> None:
        """The reader task: settles each batch with its answer, and on any
        failure, expected or not, fails everything unanswered and closes the
        producer with it, so no future is left unresolved."""
        error: Optional[RiverlogError] = None
        try:
            while True:
                answer = await self._call.read()
                if answer is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
                    break
                self._settle(self._queue.answer(answer))
        except asyncio.CancelledError:
            # The call was cancelled (close timed out, a cancelled block), or
            # this task was (the loop is shutting down).
            error = RiverlogError(grpc.StatusCode.CANCELLED, "the producer's call was cancelled")
            if task_cancelled():
                self._settle(self._call_ended(error))
                raise
        except BaseException as err:  # the call failed, or a bug: never hang
            error = reader_failure(err)
        self._settle(self._call_ended(error))

    def _settle(self, settlements: List[Settlement]) -> None:
        settle(settlements)
        self._queue.settled()
        self._changes.notify()
