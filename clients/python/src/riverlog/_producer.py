"""A batching producer over one ``PublishStream`` call."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import grpc

from ._errors import _BY_CODE, _BY_REASON, RiverlogError
from ._events import EventLike, Published, to_cloud_event
from .v1 import event_log_pb2

__all__ = ["Producer", "EARLIER_BATCH_REFUSED"]

_CODES = {code.value[0]: code for code in grpc.StatusCode}

#: The ``reason`` of events failed without being sent because an earlier
#: batch of their stream was refused (see :class:`Producer`).
EARLIER_BATCH_REFUSED = "EARLIER_BATCH_REFUSED"


class _Batch:
    """Events of one stream that go out as one request (atomic)."""

    __slots__ = ("stream", "events", "futures", "bytes", "deadline", "done")

    def __init__(self, stream: str, deadline: float) -> None:
        self.stream = stream
        self.events: List[Any] = []
        self.futures: List["Future[Published]"] = []
        self.bytes = 0
        #: When the batch goes out even if not full (monotonic seconds).
        self.deadline = deadline
        #: Whether every future of it is settled (what flush waits for).
        self.done = False


def _settle(future: "Future[Published]", result: Any = None, error: Optional[BaseException] = None) -> None:
    """Resolves ``future``, unless its owner cancelled it meanwhile."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled before its batch was sent: nothing to tell


def _request_error(err: event_log_pb2.RequestError) -> RiverlogError:
    """The refusal of one request, as the exception a unary publish raises."""
    code = _CODES.get(err.code, grpc.StatusCode.UNKNOWN)
    subclass = _BY_REASON.get(err.reason) or _BY_CODE.get(code, RiverlogError)
    delay = err.retry_delay.ToTimedelta().total_seconds() if err.HasField("retry_delay") else None
    return subclass(
        code, err.message, err.reason or None, err.domain or None, dict(err.metadata), delay
    )


def _earlier_refused(stream: str, refusal: RiverlogError) -> RiverlogError:
    """Why events of ``stream`` were not sent after its batch was refused."""
    return RiverlogError(
        grpc.StatusCode.ABORTED,
        f"not sent: an earlier batch of stream {stream!r} was refused"
        f" ({refusal.reason or refusal.code().name}); send these events again after it",
        EARLIER_BATCH_REFUSED,
        None,
        {"stream": stream, "refused_reason": refusal.reason or ""},
    )


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
    a permission the token lacks, the rate limit) fails every event of it.
    Batches of other streams are not affected. Batches of the *same*
    stream keep their order this way: those not yet sent when the refusal
    arrives fail without being sent, with reason ``EARLIER_BATCH_REFUSED``
    (code ABORTED), so nothing sent after the refused batch lands before
    its retry. Batches of that stream already sent by then are answered by
    the server as usual: they may commit, ahead of a retry of the refused
    one. Events sent after the refusal arrived go out as usual. So to keep
    a stream in order across a refusal, send the refused events and the
    ``EARLIER_BATCH_REFUSED`` ones again, in their order.

    When the call itself fails (server unreachable, shutting down), every
    unanswered event fails with that error and the producer is closed:
    events are idempotent by id, so publishing them again with a new
    producer is safe.

    ``max_buffered`` bounds the events queued or in flight: :meth:`send`
    blocks while that many are unanswered. A future cancelled before its
    batch is sent takes its event out of the batch; once sent, it can no
    longer be cancelled. Use the producer as a context manager, or call
    :meth:`close` (which flushes first).

    Futures are resolved on the producer's reader thread, so their done
    callbacks run there: keep them short. From a callback, :meth:`flush`,
    :meth:`close`, and :meth:`send` while ``max_buffered`` events are
    unanswered raise ``RuntimeError`` instead of deadlocking (they would
    wait for the very thread they run on).
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
        #: Batches taken out of the queues whose futures the reader is
        #: settling: failed too if the reader fails meanwhile.
        self._settling: List[_Batch] = []
        self._buffered = 0
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
                self._not_on_reader("send() with max_buffered events unanswered")
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
        """Sends every event queued so far now, and waits until all of them
        are answered; events sent meanwhile are not waited for.

        Raises ``TimeoutError`` after ``timeout`` seconds, and the call's
        error if the call failed. Refusals of single batches are not raised
        here: they are in their events' futures.
        """
        self._not_on_reader("flush()")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # What is queued now; open batches go out at once.
            waiting = [*self._in_flight, *self._ready, *self._open.values()]
            self._ready.extend(self._open.values())
            self._open.clear()
            self._cond.notify_all()
            while any(not b.done for b in waiting) and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("producer flush timed out")
                self._cond.wait(remaining)
            if self._error is not None:
                raise self._error

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, then ends the call; waits at most ``timeout`` seconds in
        all, then cancels the call. Idempotent."""
        self._not_on_reader("close()")
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> Optional[float]:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        try:
            if self._error is None and not self._closing:
                self.flush(remaining())
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._reader.join(remaining())
            if self._reader.is_alive():
                self._call.cancel()
                self._reader.join()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the call ---------------------------------------------------------

    def _not_on_reader(self, what: str) -> None:
        if threading.current_thread() is self._reader:
            raise RuntimeError(
                f"{what} from a future's callback would wait for the thread the callback runs on"
            )

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
                    if self._closing or batch.deadline <= now:
                        self._ready.append(self._open.pop(stream))
            if self._ready:
                batch = self._ready.popleft()
                # From here on a future cannot be cancelled; those cancelled
                # before take their events out of the batch.
                kept = [
                    (event, future)
                    for event, future in zip(batch.events, batch.futures)
                    if future.set_running_or_notify_cancel()
                ]
                self._buffered -= len(batch.futures) - len(kept)
                if not kept:
                    batch.done = True
                    self._cond.notify_all()
                    continue
                batch.events = [event for event, _ in kept]
                batch.futures = [future for _, future in kept]
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
        """The reader thread: settles each batch with its answer, and on any
        failure, expected or not, fails everything unanswered and closes the
        producer with it, so no future is left unresolved."""
        try:
            error = self._answer_all()
        except grpc.RpcError as err:
            error = RiverlogError.from_rpc_error(err)
        except BaseException as err:  # a bug, here or in the server: never hang
            error = RiverlogError(
                grpc.StatusCode.INTERNAL, f"the producer's reader failed: {err!r}"
            )
            error.__cause__ = err
        self._finish(error)

    def _answer_all(self) -> Optional[RiverlogError]:
        for answer in self._call:
            with self._cond:
                if not self._in_flight:  # an answer nobody asked for: a broken server
                    return RiverlogError(grpc.StatusCode.INTERNAL, "unexpected PublishStream answer")
                batch = self._in_flight.popleft()
                self._buffered -= len(batch.futures)
                fenced: List[Tuple[_Batch, RiverlogError]] = []
                if answer.HasField("error"):
                    refusal = _request_error(answer.error)
                    fenced = [(b, _earlier_refused(b.stream, refusal)) for b in self._unsent(batch.stream)]
                self._settling = [batch, *(b for b, _ in fenced)]
                self._cond.notify_all()
            if answer.HasField("error"):
                for future in batch.futures:
                    _settle(future, error=refusal)
            else:
                for i, future in enumerate(batch.futures):
                    if i < len(answer.positions):
                        _settle(future, Published.from_proto(answer.positions[i]))
                    else:
                        _settle(future, error=RiverlogError(
                            grpc.StatusCode.INTERNAL, "no position for this event"
                        ))
            for unsent, error in fenced:
                for future in unsent.futures:
                    _settle(future, error=error)
            with self._cond:
                for settled in self._settling:
                    settled.done = True
                self._settling = []
                self._cond.notify_all()
        return None

    def _unsent(self, stream: str) -> Sequence[_Batch]:
        """Takes the batches of ``stream`` not sent yet out of the queues
        (under the lock)."""
        taken = [b for b in self._ready if b.stream == stream]
        if taken:
            self._ready = deque(b for b in self._ready if b.stream != stream)
        if stream in self._open:
            taken.append(self._open.pop(stream))
        self._buffered -= sum(len(b.futures) for b in taken)
        return taken

    def _finish(self, error: Optional[RiverlogError]) -> None:
        with self._cond:
            if error is None and (self._in_flight or self._open or self._ready):
                error = RiverlogError(
                    grpc.StatusCode.UNKNOWN, "PublishStream ended with events unanswered"
                )
            failed: List[_Batch] = []
            if error is not None:
                self._error = error
                failed = [*self._settling, *self._in_flight, *self._ready, *self._open.values()]
                self._settling = []
                self._in_flight.clear()
                self._ready.clear()
                self._open.clear()
                self._buffered = 0
            self._cond.notify_all()
        for batch in failed:
            for future in batch.futures:
                _settle(future, error=error)
        with self._cond:
            for batch in failed:
                batch.done = True
            self._cond.notify_all()
