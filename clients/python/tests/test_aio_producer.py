"""riverlog.aio.Producer over PublishStream, against a real server: the
blocking producer's rules, with asyncio futures and cancellation."""

import asyncio
import sqlite3
import time
from contextlib import contextmanager

import grpc
import pytest

import riverlog
import riverlog.aio
from test_auth import TOKEN, auth_server  # noqa: F401 (a fixture)


def _event(id_):
    return {"type": "t", "source": "/p", "id": id_}


@contextmanager
def _writer_stalled(server):
    """Another connection's write lock stalls the server's writer: nothing
    is answered until the block ends."""
    db = sqlite3.connect(server.data_dir / "r.db", isolation_level=None, timeout=10)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


async def test_every_event_resolves_to_its_position_in_send_order(server, stream):
    other = stream + ":other"
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        async with client.producer(max_batch_events=7, linger=0.05) as producer:
            futures = [
                await producer.send(stream if i % 3 else other, _event(f"e{i}")) for i in range(100)
            ]
            await producer.flush(timeout=10)
            assert all(f.done() for f in futures)
        published = await asyncio.gather(*futures)
        assert [p.id for p in published] == [f"e{i}" for i in range(100)]
        mine = [p.sequence for i, p in enumerate(published) if i % 3]
        assert mine == list(range(1, len(mine) + 1)), "sequences follow send order"
        assert [e.id for e in await client.read(stream)] == [f"e{i}" for i in range(100) if i % 3]


async def test_a_refused_batch_fails_its_own_events_as_the_blocking_producer_does(server, stream):
    bad = riverlog.cloud_event("t", "/p", "x", id="bad")
    bad.type = ""  # invalid: a CloudEvent needs a type
    with riverlog.Client(server.target, timeout=10) as blocking:
        with blocking.producer() as sync_producer:
            sync_denied = sync_producer.send("not a stream name", _event("x"))
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        async with client.producer(linger=10) as producer:
            before = await producer.send(stream, _event("before"))
            await producer.flush()
            refused = [await producer.send(stream, _event("same-batch")), await producer.send(stream, bad)]
            await producer.flush()
            denied = await producer.send("not a stream name", _event("x"))
            after = await producer.send(stream, _event("after"))
        assert (await before).sequence == 1
        for future in refused:
            err = future.exception()
            assert isinstance(err, riverlog.InvalidArgumentError)
            assert err.reason == "INVALID_EVENT" and err.metadata["index"] == "1"
        err, sync_err = denied.exception(), sync_denied.exception()
        assert type(err) is type(sync_err) is riverlog.InvalidArgumentError
        assert err.reason == sync_err.reason == "INVALID_STREAM_NAME"
        assert err.code() == sync_err.code() and err.domain == sync_err.domain
        assert (await after).sequence == 2
        assert [e.id for e in await client.read(stream)] == ["before", "after"]


async def test_a_duplicate_id_comes_back_flagged(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _event("a"))
        async with client.producer() as producer:
            dup = await producer.send(stream, _event("a"))
        assert (await dup).duplicate and (await dup).sequence == 1


async def test_a_failed_call_fails_what_is_unanswered_and_closes_the_producer(auth_server):  # noqa: F811
    async with riverlog.aio.Client(auth_server.target, token="wrong") as stranger:
        producer = stranger.producer()
        future = await producer.send("orders:1", _event("x"))
        with pytest.raises(riverlog.UnauthenticatedError):
            await producer.flush(timeout=10)
        assert isinstance(future.exception(), riverlog.UnauthenticatedError)
        with pytest.raises(riverlog.UnauthenticatedError):
            await producer.send("orders:1", _event("y"))
        await producer.close()


async def test_a_batch_the_token_may_not_publish_fails_alone(auth_server):  # noqa: F811
    async with riverlog.aio.Client(auth_server.target, token=TOKEN) as client:
        async with client.producer() as producer:
            ok = await producer.send("orders:1", _event("ok"))
            await producer.flush()
            denied = await producer.send("payments:1", _event("denied"))
            await producer.flush()
            later = await producer.send("orders:1", _event("later"))
        assert (await ok).sequence == 1
        assert denied.exception().reason == "PERMISSION_DENIED"
        assert (await later).sequence == 2


async def test_close_waits_for_every_answer(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        producer = client.producer(linger=1)
        futures = [await producer.send(stream, _event(f"e{i}")) for i in range(10)]
        await producer.close()
        assert [f.result().sequence for f in futures] == list(range(1, 11))
        with pytest.raises(RuntimeError):
            await producer.send(stream, _event("late"))
        await producer.close()  # idempotent


async def test_a_future_cancelled_before_its_batch_goes_out_takes_its_event_out(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        async with client.producer(linger=60) as producer:
            keep = await producer.send(stream, _event("keep"))
            dropped = await producer.send(stream, _event("dropped"))
            assert dropped.cancel()
            await producer.flush(timeout=10)
            assert keep.result().sequence == 1
        assert [e.id for e in await client.read(stream)] == ["keep"]


async def test_after_a_refused_batch_the_unsent_batches_of_its_stream_fail_unsent(server, stream):
    bad = riverlog.cloud_event("t", "/p", "x", id="bad")
    bad.type = ""
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        async with client.producer(max_batch_events=2, linger=60) as producer:
            other = await producer.send(stream + ":other", _event("other"))
            # Sends that need not wait do not yield to the loop: the full
            # batch cannot go out before the next one is queued behind it.
            refused = [await producer.send(stream, _event("a")), await producer.send(stream, bad)]
            unsent = await producer.send(stream, _event("b"))
            for future in refused:
                with pytest.raises(riverlog.InvalidArgumentError):
                    await future
            with pytest.raises(riverlog.RiverlogError) as exc:
                await unsent
            assert exc.value.reason == riverlog.EARLIER_BATCH_REFUSED
            assert exc.value.code() == grpc.StatusCode.ABORTED
            assert exc.value.metadata == {"stream": stream, "refused_reason": "INVALID_EVENT"}
            retry = await producer.send(stream, _event("b"))
            await producer.flush(timeout=10)
            assert retry.result().sequence == 1
        assert (await other).sequence == 1
        assert [e.id for e in await client.read(stream)] == ["b"]


async def test_send_waits_while_max_buffered_events_are_unanswered(own_server, stream):
    own_server.start()
    async with riverlog.aio.Client(own_server.target, timeout=10) as client:
        await client.publish(stream, _event("seed"))
        async with client.producer(max_buffered=2, linger=0) as producer:
            with _writer_stalled(own_server):
                first = [await producer.send(stream, _event(f"e{i}")) for i in range(2)]
                # Full: the third send waits; cancelling the wait queues nothing.
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(producer.send(stream, _event("never")), 0.3)
                third = asyncio.ensure_future(producer.send(stream, _event("third")))
                await asyncio.sleep(0.2)
                assert not third.done()
            third_future = await asyncio.wait_for(third, 10)
            assert (await third_future).sequence == 4
        assert [f.result().sequence for f in first] == [2, 3]
        assert [e.id for e in await client.read(stream)] == ["seed", "e0", "e1", "third"]


async def test_flush_and_close_wait_at_most_their_timeout(own_server, stream):
    own_server.start()
    async with riverlog.aio.Client(own_server.target, timeout=10) as client:
        await client.publish(stream, _event("seed"))
        producer = client.producer()
        with _writer_stalled(own_server):
            stalled = await producer.send(stream, _event("stalled"))
            with pytest.raises(TimeoutError):
                await producer.flush(timeout=0.3)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await producer.close(timeout=1)
            assert time.monotonic() - started < 1.8
        # The call was cancelled: its event failed, though the server may
        # still commit it (publishing it again is safe: same id).
        assert stalled.done() and isinstance(stalled.exception(), riverlog.RiverlogError)


async def test_cancelling_the_block_cancels_the_call_and_fails_what_is_unanswered(own_server, stream):
    own_server.start()
    async with riverlog.aio.Client(own_server.target, timeout=10) as client:
        await client.publish(stream, _event("seed"))
        futures = []

        async def produce():
            async with client.producer() as producer:
                futures.append(await producer.send(stream, _event("stalled")))
                await producer.flush()

        with _writer_stalled(own_server):
            task = asyncio.ensure_future(produce())
            while not futures:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < 5, "no flush on cancellation (it would wait forever)"
        err = futures[0].exception()
        assert isinstance(err, riverlog.RiverlogError)
        assert err.code() == grpc.StatusCode.CANCELLED


async def test_a_rate_limited_batch_says_when_to_retry(tmp_path, stream):
    from conftest import Server

    config = tmp_path / "riverlog.toml"
    config.write_text("publish_rate_limit = 1\npublish_burst = 3\n")
    srv = Server(tmp_path, config=config).start()
    try:
        async with riverlog.aio.Client(srv.target, timeout=10) as client:
            async with client.producer(max_batch_events=3) as producer:
                ok = [await producer.send(stream, _event(f"e{i}")) for i in range(3)]
                await producer.flush(timeout=10)
                limited = await producer.send(stream, _event("over"))
            assert all(f.result().sequence for f in ok)
            err = limited.exception()
            assert isinstance(err, riverlog.ResourceExhaustedError)
            assert err.reason == "RATE_LIMITED"
            assert err.retry_delay is not None and err.retry_delay > 0
    finally:
        srv.stop()
