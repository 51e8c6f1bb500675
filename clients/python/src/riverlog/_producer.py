"""A batching producer over one ``PublishStream`` call (blocking, threads).

What it decides (batches, order, refusals) is decided by
``_batching.BatchQueue``, shared with ``riverlog.aio.Producer``; this module
adds the lock, the reader thread, and the request iterator gRPC reads.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterator, List, Optional


from ._batching import (
    EARLIER_BATCH_REFUSED,
    Batch,
    ProducerBase,
    Settlement,
    Wait,
    reader_failure,
    settle,
)
from ._errors import RiverlogError
from ._events import EventLike, Published, to_cloud_event
from ._operations import ProducerSpec
from .v1 import event_log_pb2

__all__ = ["Producer", "EARLIER_BATCH_REFUSED"]


class Producer(ProducerBase["Future[Published]"]):
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

    def __init__(self, client: Any, spec: ProducerSpec) -> None:
        super().__init__(spec)
        self._cond = threading.Condition()
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
        future: "Future[Published]" = Future()
        with self._cond:
            while not self._has_room():
                self._not_on_reader("send() with max_buffered events unanswered")
                self._cond.wait()
            self._raise_if_stopped()
            self._queue.add(stream, message, future)
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
            waiting = self._queue.flush()
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

    def _next_batch(self) -> "Optional[Batch[Future[Published]]]":
        """The next batch to send (under the lock), waiting for one; ``None``
        ends the call (closed with nothing left, or failed)."""
        while True:
            # From here on a future cannot be cancelled; those cancelled
            # before take their events out of the batch.
            due = self._due(Future.set_running_or_notify_cancel)
            self._cond.notify_all()  # cancelled events freed places
            if not isinstance(due, Wait):
                return due
            self._cond.wait(due.seconds)

    def _requests(self) -> Iterator[event_log_pb2.PublishRequest]:
        """The request stream gRPC reads from (on its own thread)."""
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            yield batch.request()

    def _read_answers(self) -> None:
        """The reader thread: settles each batch with its answer, and on any
        failure, expected or not, fails everything unanswered and closes the
        producer with it, so no future is left unresolved."""
        error: Optional[RiverlogError] = None
        try:
            for answer in self._call:
                self._settle(functools.partial(self._queue.answer, answer))
        except BaseException as err:  # the call failed, or a bug: never hang
            error = reader_failure(err)
        self._settle(lambda: self._call_ended(error))

    def _settle(self, take: "Callable[[], List[Settlement]]") -> None:
        """Takes what to settle under the lock, settles it outside (done
        callbacks run here), then marks it settled."""
        with self._cond:
            settlements = take()
            self._cond.notify_all()
        settle(settlements)
        with self._cond:
            self._queue.settled()
            self._cond.notify_all()
