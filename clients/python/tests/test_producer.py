"""The batching producer over PublishStream, against a real server."""

import concurrent.futures
import time

import grpc
import pytest

import riverlog
from test_auth import TOKEN, auth_server  # noqa: F401 (a fixture)


def test_every_event_resolves_to_its_position_in_send_order(client, stream):
    other = stream + ":other"
    with client.producer(max_batch_events=7, linger=0.05) as producer:
        futures = [
            producer.send(stream if i % 3 else other, {"type": "t", "source": "/p", "id": f"e{i}"})
            for i in range(100)
        ]
        producer.flush(timeout=10)
        assert all(f.done() for f in futures)
    published = [f.result() for f in futures]
    assert [p.id for p in published] == [f"e{i}" for i in range(100)]
    mine = [p.sequence for i, p in enumerate(published) if i % 3]
    assert mine == list(range(1, len(mine) + 1)), "sequences follow send order"
    assert [e.id for e in client.read(stream, limit=1000)] == [
        f"e{i}" for i in range(100) if i % 3
    ]
    assert client.get_stream(other).event_count == len(published) - len(mine)


def test_a_refused_batch_fails_its_own_events_while_the_others_commit(client, stream):
    bad = riverlog.cloud_event("t", "/p", "x", id="bad")
    bad.type = ""  # invalid: a CloudEvent needs a type
    with client.producer(linger=10) as producer:
        before = producer.send(stream, {"type": "t", "source": "/p", "id": "before"})
        producer.flush()
        refused = [
            producer.send(stream, {"type": "t", "source": "/p", "id": "same-batch"}),
            producer.send(stream, bad),
        ]
        producer.flush()
        denied = producer.send("not a stream name", {"type": "t", "source": "/p"})
        after = producer.send(stream, {"type": "t", "source": "/p", "id": "after"})
        producer.flush()

    assert before.result().sequence == 1
    for f in refused:
        err = f.exception()
        assert isinstance(err, riverlog.InvalidArgumentError)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.reason == "INVALID_EVENT" and err.metadata["index"] == "1"
        assert err.domain == "riverlog.dev"
    assert denied.exception().reason == "INVALID_STREAM_NAME"
    assert after.result().sequence == 2
    assert [e.id for e in client.read(stream)] == ["before", "after"]


def test_an_id_the_stream_holds_comes_back_as_a_duplicate(client, stream):
    client.publish(stream, {"type": "t", "source": "/p", "id": "a"})
    with client.producer() as producer:
        dup = producer.send(stream, {"type": "t", "source": "/p", "id": "a"})
    assert dup.result().duplicate and dup.result().sequence == 1


def test_a_failed_call_fails_what_is_unanswered_and_closes_the_producer(auth_server):
    with riverlog.Client(auth_server.target, token="wrong") as stranger:
        producer = stranger.producer()
        try:
            future = producer.send("orders:1", {"type": "t", "source": "/p"})
        except riverlog.UnauthenticatedError:
            future = None  # the call failed already: it may, that fast
        with pytest.raises(riverlog.UnauthenticatedError):
            producer.flush(timeout=10)
        if future is not None:
            assert isinstance(future.exception(timeout=10), riverlog.UnauthenticatedError)
        with pytest.raises(riverlog.UnauthenticatedError):
            producer.send("orders:1", {"type": "t", "source": "/p"})
        producer.close()


def test_a_batch_for_a_stream_the_token_may_not_publish_to_fails_alone(auth_server):
    with riverlog.Client(auth_server.target, token=TOKEN) as client:
        with client.producer() as producer:
            ok = producer.send("orders:1", {"type": "t", "source": "/p"})
            producer.flush()
            denied = producer.send("payments:1", {"type": "t", "source": "/p"})
            producer.flush()
            later = producer.send("orders:1", {"type": "t", "source": "/p"})
        assert ok.result().sequence == 1
        err = denied.exception()
        assert isinstance(err, riverlog.PermissionDeniedError)
        assert err.reason == "PERMISSION_DENIED" and err.metadata["stream"] == "payments:1"
        assert later.result().sequence == 2


def test_close_waits_for_every_answer(client, stream):
    producer = client.producer(linger=1)
    futures = [producer.send(stream, {"type": "t", "source": "/p"}) for _ in range(10)]
    producer.close()
    assert [f.result(timeout=0).sequence for f in futures] == list(range(1, 11))
    with pytest.raises(RuntimeError):
        producer.send(stream, {"type": "t", "source": "/p"})


def test_many_events_from_threads(client, stream):
    with client.producer() as producer:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = list(
                pool.map(
                    lambda i: producer.send(stream, {"type": "t", "source": "/p", "id": f"e{i}"}),
                    range(2000),
                )
            )
        producer.flush()
    sequences = sorted(f.result().sequence for f in futures)
    assert sequences == list(range(1, 2001))


def _event(id_):
    return {"type": "t", "source": "/p", "id": id_}


def test_a_future_cancelled_before_its_batch_goes_out_takes_its_event_out(client, stream):
    with client.producer(linger=60) as producer:
        keep = producer.send(stream, _event("keep"))
        dropped = producer.send(stream, _event("dropped"))
        assert dropped.cancel()
        producer.flush(timeout=10)
        assert keep.result(timeout=0).sequence == 1
        # Sent: no longer cancellable; the producer goes on as usual.
        sent = producer.send(stream, _event("sent"))
        producer.flush(timeout=10)
        assert not sent.cancel()
        assert sent.result(timeout=0).sequence == 2
    assert [e.id for e in client.read(stream)] == ["keep", "sent"]


def test_an_unexpected_failure_of_the_reader_fails_every_pending_future_and_closes(
    client, stream, monkeypatch
):
    from riverlog import _batching

    class Broken:
        @staticmethod
        def from_proto(p):
            raise ValueError("a bug")

    monkeypatch.setattr(_batching, "Published", Broken)
    producer = client.producer(linger=60)
    sent = producer.send(stream, _event("sent"))
    with pytest.raises(riverlog.RiverlogError) as failed:
        producer.flush(timeout=10)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "a bug" in failed.value.message
    assert sent.exception(timeout=10) is failed.value
    with pytest.raises(riverlog.RiverlogError):
        producer.send(stream, _event("refused"))
    producer.close(timeout=10)


def test_after_a_refused_batch_the_unsent_batches_of_its_stream_fail_unsent(client, stream):
    bad = riverlog.cloud_event("t", "/p", "x", id="bad")
    bad.type = ""  # invalid: a CloudEvent needs a type
    with client.producer(max_batch_events=2, linger=60) as producer:
        other = producer.send(stream + ":other", _event("other"))
        # The lock held, the full batch cannot go out before the next one
        # of its stream is queued behind it (reentrant: send takes it too).
        with producer._cond:
            refused = [producer.send(stream, _event("a")), producer.send(stream, bad)]
            unsent = producer.send(stream, _event("b"))
        for f in refused:
            assert f.exception(timeout=10).reason == "INVALID_EVENT"
        err = unsent.exception(timeout=10)
        assert err.reason == riverlog.EARLIER_BATCH_REFUSED
        assert err.code() == grpc.StatusCode.ABORTED
        assert err.metadata == {"stream": stream, "refused_reason": "INVALID_EVENT"}
        # Sent again, in order: it lands first.
        retry = producer.send(stream, _event("b"))
        producer.flush(timeout=10)
        assert retry.result(timeout=0).sequence == 1
    assert other.result().sequence == 1, "other streams are not affected"
    assert [e.id for e in client.read(stream)] == ["b"]


def test_flush_waits_only_for_the_events_sent_before_it(own_server, stream):
    import sqlite3

    own_server.start()
    with riverlog.Client(own_server.target, timeout=10) as client:
        client.publish(stream, _event("seed"))
        producer = client.producer(linger=60)
        early = producer.send(stream, _event("early"))
        # Another connection's write lock stalls the server's writer.
        db = sqlite3.connect(own_server.data_dir / "r.db", isolation_level=None, timeout=10)
        db.execute("BEGIN IMMEDIATE")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            flushed = pool.submit(producer.flush, 10)
            deadline = time.monotonic() + 10
            while not producer._queue.in_flight and time.monotonic() < deadline:
                time.sleep(0.01)
            assert producer._queue.in_flight, "flush sent the early event"
            late = producer.send(stream, _event("late"))
            db.execute("ROLLBACK")
            flushed.result(timeout=10)
        assert early.result(timeout=0).sequence == 2
        assert not late.done(), "flush neither sent nor waited for a later event"
        producer.close(timeout=10)
        assert late.result(timeout=0).sequence == 3
        db.close()


def test_callbacks_that_would_deadlock_raise_instead(client, stream):
    seen = []

    def callback(future):
        try:
            producer.flush()
        except RuntimeError as err:
            seen.append(str(err))

    with client.producer() as producer:
        producer.send(stream, _event("x")).add_done_callback(callback)
        producer.flush(timeout=10)
    assert len(seen) == 1 and "callback" in seen[0]


def test_close_waits_at_most_its_timeout_in_all(own_server, stream):
    import sqlite3

    own_server.start()
    with riverlog.Client(own_server.target, timeout=10) as client:
        client.publish(stream, _event("seed"))
        producer = client.producer()
        db = sqlite3.connect(own_server.data_dir / "r.db", isolation_level=None, timeout=10)
        db.execute("BEGIN IMMEDIATE")
        try:
            # Nothing can be answered: the flush and the call's end both wait.
            producer.send(stream, _event("stalled"))
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                producer.close(timeout=1)
            assert time.monotonic() - started < 1.8
        finally:
            db.execute("ROLLBACK")
            db.close()


def test_a_rate_limited_batch_says_when_to_retry(tmp_path, stream):
    from conftest import Server

    config = tmp_path / "riverlog.toml"
    config.write_text("publish_rate_limit = 1\npublish_burst = 3\n")
    srv = Server(tmp_path, config=config).start()
    try:
        with riverlog.Client(srv.target, timeout=10) as client:
            with client.producer(max_batch_events=3) as producer:
                ok = [producer.send(stream, _event(f"e{i}")) for i in range(3)]
                producer.flush(timeout=10)
                limited = producer.send(stream, _event("over"))
            assert all(f.result().sequence for f in ok)
            err = limited.exception(timeout=10)
            assert isinstance(err, riverlog.ResourceExhaustedError)
            assert err.reason == "RATE_LIMITED"
            assert err.retry_delay is not None and err.retry_delay > 0
            with pytest.raises(riverlog.ResourceExhaustedError) as unary:
                client.publish(stream, _event("unary"))
            assert unary.value.retry_delay is not None and unary.value.retry_delay > 0
    finally:
        srv.stop()
