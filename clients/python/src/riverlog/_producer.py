"""A batching producer over one ``PublishStream`` call."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Deque, Dict, List, Optional

import grpc

from ._errors import _BY_CODE, _BY_REASON, RiverlogError
from ._events import EventLike, Published, to_cloud_event
from .v1 import event_log_pb2

__all__ = ["Producer"]

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class _Batch:
    """Events of one stream that go out as one request (atomic)."""

    __slots__ = ("stream", "events", "futures", "bytes", "deadline")

    def __init__(self, stream: str, deadline: float) -> None:
        self.stream = stream
        self.events: List[Any] = []
        self.futures: List["Future[Published]"] = []
        self.bytes = 0
        #: When the batch goes out even if not full (monotonic seconds).
        self.deadline = deadline

    def fail(self, error: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(error)


def _request_error(err: event_log_pb2.RequestError) -> RiverlogError:
    """The refusal of one request, as the exception a unary publish raises."""
    code = _CODES.get(err.code, grpc.StatusCode.UNKNOWN)
    subclass = _BY_REASON.get(err.reason) or _BY_CODE.get(code, RiverlogError)
    return subclass(code, err.message, err.reason or None, err.domain or None, dict(err.metadata))


class Producer:
    """Publishes events in batches over one ``PublishStream`` call.

    :meth:`send` queues one event for a stream and returns a
    ``concurrent.futures.Future`` that resolves to its :class:`Published`
    position, or raises the :class:`RiverlogError` its batch was refused
    with. Events of one stream are batched, in the order sent, into one
    request of at most ``max_batch_events`` events and about
    ``max_batch_bytes`` encoded bytes; a batch goes out when full, when
    its first event has waited ``linger`` seconds, or on :meth:`flush`.
    Several batches are in flight at once on the one call; the server
    answers them in order.

    A batch is one atomic publish: a refused batch (an invalid event,
    a permission the token lacks, the rate limit) fails every event of it,
    while the other batches still commit. When the call itself fails
    (server unreachable, shutting down), every unanswered event fails with
    that error and the producer is closed: events are idempotent by id, so
    publishing them again with a new producer is safe.

    ``max_buffered`` bounds the events queued or in flight: :meth:`send`
    blocks while that many are unanswered. Use the producer as a context
    manager, or call :meth:`close` (which flushes first).
    """

    def __init__(
        self,
        client: Any,
        *,
        max_batch_events: int = 500,
        max_batch_bytes: int = 1 << 20,
        linger: float = 0.005,
        max_buffered: int = 20_000,
    ) -> None:
        if max_batch_events < 1 or max_batch_bytes < 1 or max_buffered < 1 or linger < 0:
            raise ValueError("batch limits and max_buffered must be positive, linger >= 0")
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._linger = linger
        self._max_buffered = max_buffered
        self._cond = threading.Condition()
        #: Batches being filled, by stream, in the order they were opened.
        self._open: Dict[str, _Batch] = {}
        #: Full batches waiting to be sent, in order.
        self._ready: Deque[_Batch] = deque()
        #: Batches sent and not answered, in order.
        self._in_flight: Deque[_Batch] = deque()
        self._buffered = 0
        self._flushing = 0
        self._closing = False
        self._error: Optional[RiverlogError] = None
        self._call = client.event_log.PublishStream(
            self._requests(), metadata=client._metadata
        )
        self._reader = threading.Thread(
            target=self._read_answers, name="riverlog-producer", daemon=True
        )
        self._reader.start()

    # -- public -----------------------------------------------------------

    def send(self, stream: str, event: EventLike) -> "Future[Published]":
        """Queues ``event`` for ``stream``; returns the future of its position.

        Blocks while ``max_buffered`` events are unanswered. Raises the
        call's error if the producer has failed, ``RuntimeError`` once it
        is closed.
        """
        message = to_cloud_event(event)
        size = message.ByteSize()
        future: "Future[Published]" = Future()
        with self._cond:
            while self._buffered >= self._max_buffered and not self._stopped():
                self._cond.wait()
            self._raise_if_stopped()
            batch = self._open.get(stream)
            if batch is not None and (
                len(batch.events) >= self._max_events
                or (batch.events and batch.bytes + size > self._max_bytes)
            ):
                self._ready.append(self._open.pop(stream))
                batch = None
            if batch is None:
                batch = self._open[stream] = _Batch(stream, time.monotonic() + self._linger)
            batch.events.append(message)
            batch.futures.append(future)
            batch.bytes += size
            self._buffered += 1
            if len(batch.events) >= self._max_events:
                self._ready.append(self._open.pop(stream))
            self._cond.notify_all()
        return future

    def flush(self, timeout: Optional[float] = None) -> None:
        """Sends every queued event now and waits until all are answered.

        Raises ``TimeoutError`` after ``timeout`` seconds, and the call's
        error if the call failed. Refusals of single batches are not raised
        here: they are in their events' futures.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while (self._open or self._ready or self._in_flight) and self._error is None:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError("producer flush timed out")
                    self._cond.wait(remaining)
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._error

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, then ends the call. Idempotent."""
        try:
            if self._error is None and not self._closing:
                self.flush(timeout)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._reader.join(timeout)
            if self._reader.is_alive():
                self._call.cancel()
                self._reader.join()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the call ---------------------------------------------------------

    def _stopped(self) -> bool:
        return self._closing or self._error is not None

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise RuntimeError("the producer is closed")

    def _next_batch(self) -> Optional[_Batch]:
        """The next batch to send (under the lock), waiting for one; ``None``
        ends the call (closed with nothing left, or failed)."""
        while True:
            if self._error is not None:
                return None
            now = time.monotonic()
            if not self._ready:
                # Open batches leave in the order they were opened.
                for stream, batch in list(self._open.items()):
                    if self._flushing or self._closing or batch.deadline <= now:
                        self._ready.append(self._open.pop(stream))
            if self._ready:
                batch = self._ready.popleft()
                self._in_flight.append(batch)
                return batch
            if self._closing:
                return None
            wait = min((b.deadline for b in self._open.values()), default=None)
            self._cond.wait(None if wait is None else max(0.0, wait - now))

    def _requests(self):
        """The request stream gRPC reads from (on its own thread)."""
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            yield event_log_pb2.PublishRequest(stream=batch.stream, events=batch.events)

    def _read_answers(self) -> None:
        try:
            for answer in self._call:
                with self._cond:
                    batch = self._in_flight.popleft()
                    self._buffered -= len(batch.futures)
                    self._cond.notify_all()
                if answer.HasField("error"):
                    batch.fail(_request_error(answer.error))
                else:
                    for i, future in enumerate(batch.futures):
                        if i < len(answer.positions):
                            future.set_result(Published.from_proto(answer.positions[i]))
                        else:
                            future.set_exception(RiverlogError(
                                grpc.StatusCode.INTERNAL, "no position for this event"
                            ))
            error = None
        except grpc.RpcError as err:
            error = RiverlogError.from_rpc_error(err)
        except IndexError:  # an answer nobody asked for: a broken server
            error = RiverlogError(grpc.StatusCode.INTERNAL, "unexpected PublishStream answer")
        with self._cond:
            if error is None and (self._in_flight or self._open or self._ready):
                error = RiverlogError(
                    grpc.StatusCode.UNKNOWN, "PublishStream ended with events unanswered"
                )
            if error is not None:
                self._error = error
                for batch in [*self._in_flight, *self._ready, *self._open.values()]:
                    batch.fail(error)
                self._in_flight.clear()
                self._ready.clear()
                self._open.clear()
                self._buffered = 0
            self._cond.notify_all()
