"""The bookkeeping of both producers, without threads, locks or I/O.

``riverlog.Producer`` (threads, ``concurrent.futures``) and
``riverlog.aio.Producer`` (tasks, ``asyncio`` futures) batch, send and settle
events the same way; they differ only in how they wait and lock. Everything
they decide is decided here by :class:`BatchQueue`, which each producer
calls with its own lock held: which batch an event joins, which batch goes
out next, which futures an answer settles (and which batches of the same
stream a refusal fences off), and what a failed call fails.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Generic, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

import grpc

from ._errors import _BY_CODE, _BY_REASON, RiverlogError
from ._events import CloudEvent, Published
from ._operations import ProducerSpec
from .v1 import event_log_pb2

__all__ = ["EARLIER_BATCH_REFUSED", "Batch", "BatchQueue", "ProducerBase", "Wait", "settle"]

_CODES = {code.value[0]: code for code in grpc.StatusCode}

#: The ``reason`` of events failed without being sent because an earlier
#: batch of their stream was refused (see :class:`riverlog.Producer`).
EARLIER_BATCH_REFUSED = "EARLIER_BATCH_REFUSED"

#: A producer's future: ``concurrent.futures.Future`` or ``asyncio.Future``.
F = TypeVar("F")

#: One future to resolve: with a result, or (when not None) an error.
Settlement = Tuple[Any, Optional[Published], Optional[RiverlogError]]


class Batch(Generic[F]):
    """Events of one stream that go out as one request (atomic)."""

    __slots__ = ("stream", "events", "futures", "bytes", "deadline", "done")

    def __init__(self, stream: str, deadline: float) -> None:
        self.stream = stream
        self.events: List[CloudEvent] = []
        self.futures: List[F] = []
        self.bytes = 0
        #: When the batch goes out even if not full (monotonic seconds).
        self.deadline = deadline
        #: Whether every future of it is settled (what flush waits for).
        self.done = False

    def request(self) -> event_log_pb2.PublishRequest:
        return event_log_pb2.PublishRequest(stream=self.stream, events=self.events)


def settle(settlements: Sequence[Settlement]) -> None:
    """Resolves futures, except those their owner cancelled meanwhile."""
    for future, result, error in settlements:
        try:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        except (concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
            pass  # cancelled before its batch was sent: nothing to tell


def request_error(err: event_log_pb2.RequestError) -> RiverlogError:
    """The refusal of one request, as the exception a unary publish raises."""
    code = _CODES.get(err.code, grpc.StatusCode.UNKNOWN)
    subclass = _BY_REASON.get(err.reason) or _BY_CODE.get(code, RiverlogError)
    delay = err.retry_delay.ToTimedelta().total_seconds() if err.HasField("retry_delay") else None
    return subclass(
        code, err.message, err.reason or None, err.domain or None, dict(err.metadata), delay
    )


def earlier_refused(stream: str, refusal: RiverlogError) -> RiverlogError:
    """Why events of ``stream`` were not sent after its batch was refused."""
    return RiverlogError(
        grpc.StatusCode.ABORTED,
        f"not sent: an earlier batch of stream {stream!r} was refused"
        f" ({refusal.reason or refusal.code().name}); send these events again after it",
        EARLIER_BATCH_REFUSED,
        None,
        {"stream": stream, "refused_reason": refusal.reason or ""},
    )


class BatchQueue(Generic[F]):
    """Events queued, sent and answered, by batch. Not thread-safe: the
    producer holds its lock around every call."""

    def __init__(self, max_batch_events: int, max_batch_bytes: int, linger: float) -> None:
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._linger = linger
        #: Batches being filled, by stream, in the order they were opened.
        self.open: Dict[str, Batch[F]] = {}
        #: Full batches waiting to be sent, in order.
        self.ready: Deque[Batch[F]] = deque()
        #: Batches sent and not answered, in order.
        self.in_flight: Deque[Batch[F]] = deque()
        #: Batches taken out of the queues whose futures the producer is
        #: settling: failed too if the producer fails meanwhile.
        self.settling: List[Batch[F]] = []
        #: Events queued or in flight (what ``max_buffered`` bounds).
        self.buffered = 0

    def add(self, stream: str, event: CloudEvent, future: F) -> None:
        """Queues one event of ``stream`` in its open batch, which goes
        ready when full."""
        size = event.ByteSize()
        batch = self.open.get(stream)
        if batch is not None and (
            len(batch.events) >= self._max_events
            or (batch.events and batch.bytes + size > self._max_bytes)
        ):
            self.ready.append(self.open.pop(stream))
            batch = None
        if batch is None:
            batch = self.open[stream] = Batch(stream, time.monotonic() + self._linger)
        batch.events.append(event)
        batch.futures.append(future)
        batch.bytes += size
        self.buffered += 1
        if len(batch.events) >= self._max_events:
            self.ready.append(self.open.pop(stream))

    def flush(self) -> List[Batch[F]]:
        """Makes every open batch ready now; returns every batch queued or
        in flight (what a flush waits for)."""
        waiting = [*self.in_flight, *self.ready, *self.open.values()]
        self.ready.extend(self.open.values())
        self.open.clear()
        return waiting

    def next_batch(self, closing: bool, claim: Callable[[F], bool]) -> Optional[Batch[F]]:
        """The next batch to send, now in flight; ``None`` when none is due
        (when ``closing``, every open batch is due).

        ``claim`` is asked of each future as its batch goes out; a future
        it refuses (cancelled by its owner) takes its event out of the batch.
        """
        now = time.monotonic()
        while True:
            if not self.ready:
                # Open batches leave in the order they were opened.
                for stream, batch in list(self.open.items()):
                    if closing or batch.deadline <= now:
                        self.ready.append(self.open.pop(stream))
            if not self.ready:
                return None
            batch = self.ready.popleft()
            kept = [(e, f) for e, f in zip(batch.events, batch.futures) if claim(f)]
            self.buffered -= len(batch.futures) - len(kept)
            if not kept:
                batch.done = True
                continue
            batch.events = [event for event, _ in kept]
            batch.futures = [future for _, future in kept]
            self.in_flight.append(batch)
            return batch

    def wake_at(self) -> Optional[float]:
        """When the oldest open batch is due (monotonic), if any is open."""
        return min((b.deadline for b in self.open.values()), default=None)

    def answer(self, answer: event_log_pb2.PublishResponse) -> List[Settlement]:
        """Takes the oldest batch in flight off for its ``answer``; returns
        what to settle, and keeps those batches in :attr:`settling` until
        :meth:`settled`.

        A refusal fails the batch's events, and fences off the batches of
        its stream not sent yet: they fail unsent (``EARLIER_BATCH_REFUSED``)
        so that nothing overtakes a retry of the refused one.
        """
        if not self.in_flight:  # an answer nobody asked for: a broken server
            raise RiverlogError(grpc.StatusCode.INTERNAL, "unexpected PublishStream answer")
        batch = self.in_flight.popleft()
        self.buffered -= len(batch.futures)
        if not answer.HasField("error"):
            self.settling = [batch]
            # Outcomes are built after the batch is held in `settling`: should
            # building fail, failing the producer fails this batch too.
            return [
                (future, Published.from_proto(answer.positions[i]), None)
                if i < len(answer.positions)
                else (future, None, RiverlogError(grpc.StatusCode.INTERNAL, "no position for this event"))
                for i, future in enumerate(batch.futures)
            ]
        refusal = request_error(answer.error)
        fenced = self._unsent(batch.stream)
        self.settling = [batch, *fenced]
        settlements: List[Settlement] = [(f, None, refusal) for f in batch.futures]
        for unsent in fenced:
            error = earlier_refused(unsent.stream, refusal)
            settlements.extend((f, None, error) for f in unsent.futures)
        return settlements

    def settled(self) -> None:
        """The batches of the last :meth:`answer` or :meth:`fail_all` are
        settled."""
        for batch in self.settling:
            batch.done = True
        self.settling = []

    def unanswered(self) -> bool:
        return bool(self.in_flight or self.ready or self.open)

    def fail_all(self, error: RiverlogError) -> List[Settlement]:
        """Empties every queue; returns the failure of every event left."""
        failed = [*self.settling, *self.in_flight, *self.ready, *self.open.values()]
        self.in_flight.clear()
        self.ready.clear()
        self.open.clear()
        self.buffered = 0
        self.settling = failed
        return [(future, None, error) for batch in failed for future in batch.futures]

    def _unsent(self, stream: str) -> List[Batch[F]]:
        """Takes the batches of ``stream`` not sent yet out of the queues."""
        taken = [b for b in self.ready if b.stream == stream]
        if taken:
            self.ready = deque(b for b in self.ready if b.stream != stream)
        if stream in self.open:
            taken.append(self.open.pop(stream))
        self.buffered -= sum(len(b.futures) for b in taken)
        return taken


class Wait(NamedTuple):
    """No batch is due: wait this long (``None``: until something changes)."""

    seconds: Optional[float]


def reader_failure(err: BaseException) -> RiverlogError:
    """What fails a producer whose reader stopped on ``err``: the call's
    error, or (a bug, here or in the server) an INTERNAL one, never a hang."""
    if isinstance(err, grpc.RpcError):
        return RiverlogError.from_rpc_error(err)
    error = RiverlogError(grpc.StatusCode.INTERNAL, f"the producer's reader failed: {err!r}")
    error.__cause__ = err
    return error


class ProducerBase(Generic[F]):
    """The state of either producer around its :class:`BatchQueue`: whether
    it is closing or failed, whether a send has room, what is due next, and
    what the end of the call fails. Each producer calls these under its own
    lock (or, in asyncio, between two awaits)."""

    def __init__(self, spec: ProducerSpec) -> None:
        self._max_buffered = spec.max_buffered
        self._queue: BatchQueue[F] = BatchQueue(
            spec.max_batch_events, spec.max_batch_bytes, spec.linger
        )
        self._closing = False
        self._error: Optional[RiverlogError] = None

    def _stopped(self) -> bool:
        return self._closing or self._error is not None

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise RuntimeError("the producer is closed")

    def _has_room(self) -> bool:
        """Whether a send may go on: fewer than ``max_buffered`` events are
        unanswered, or it will raise anyway."""
        return self._queue.buffered < self._max_buffered or self._stopped()

    def _due(self, claim: Callable[[F], bool]) -> "Union[Batch[F], Wait, None]":
        """The next batch to send (now in flight); else how long to wait for
        one; ``None`` ends the call (closed with nothing left, or failed)."""
        if self._error is not None:
            return None
        batch = self._queue.next_batch(self._closing, claim)
        if batch is not None:
            return batch
        if self._closing:
            return None
        wake_at = self._queue.wake_at()
        return Wait(None if wake_at is None else max(0.0, wake_at - time.monotonic()))

    def _call_ended(self, error: Optional[RiverlogError]) -> List[Settlement]:
        """The call ended, failed with ``error`` or not: a failure (or an end
        with events unanswered) closes the producer; returns the failures of
        every event left."""
        if error is None and self._queue.unanswered():
            error = RiverlogError(
                grpc.StatusCode.UNKNOWN, "PublishStream ended with events unanswered"
            )
        if error is None:
            return []
        self._error = error
        return self._queue.fail_all(error)
