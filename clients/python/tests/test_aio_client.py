"""riverlog.aio.Client: the blocking client's operations, awaited, against a
real server; the same results and the same errors."""

import asyncio
import inspect
import time

import grpc
import pytest

import riverlog
import riverlog.aio
from test_auth import TOKEN, auth_server  # noqa: F401 (a fixture)


def _events(start, count):
    return [{"type": "t", "source": "/s", "data": i} for i in range(start, start + count)]


def test_every_method_of_the_blocking_client_is_awaitable_with_the_same_signature():
    public = {
        name for name, member in inspect.getmembers(riverlog.Client)
        if not name.startswith("_") and callable(member)
    }
    assert public <= set(dir(riverlog.aio.Client))
    iterators = {"subscribe", "consume", "producer", "list_streams", "close"}
    for name in public - iterators:
        method = getattr(riverlog.aio.Client, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(getattr(riverlog.Client, name)), name
        assert method.__doc__ == getattr(riverlog.Client, name).__doc__, name
    for name in ("subscribe", "consume", "producer"):
        sync, aio = (inspect.signature(getattr(c, name)) for c in (riverlog.Client, riverlog.aio.Client))
        assert list(sync.parameters.values()) == list(aio.parameters.values()), name
    assert inspect.isasyncgenfunction(riverlog.aio.Client.list_streams)


async def test_publish_read_round_trip(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        published = await client.publish(stream, [
            {"type": "order.created", "source": "/shop", "data": {"total": 12.5}, "subject": "o-1"},
            riverlog.cloud_event("order.note", "/shop", "hello", id="note-1"),
        ])
        assert [p.sequence for p in published] == [1, 2]
        assert published[1].id == "note-1" and not published[1].duplicate
        (again,) = await client.publish(stream, riverlog.cloud_event("order.note", "/shop", "x", id="note-1"))
        assert again.duplicate and again.sequence == 2

        events = await client.read(stream)
        assert [e.id for e in events] == [p.id for p in published]
        assert events[0].json() == {"total": 12.5} and events[0].subject == "o-1"
        assert [e.sequence for e in await client.read(stream, backward=True)] == [2, 1]
        assert [e.sequence for e in await client.read(stream, types=["order.n*"])] == [2]
        info = await client.get_stream(stream)
        assert info.last_sequence == 2 and info.event_count == 2


async def test_read_pages_through_long_streams(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        for start in (0, 600):  # the server's default page limit is 1000
            await client.publish(stream, _events(start, 600))
        assert [e.json() for e in await client.read(stream)] == list(range(1200))
        assert len(await client.read(stream, limit=1001)) == 1001


async def test_streams_take_trim_and_checkpoints(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        info = await client.create_stream(stream, max_events=10)
        assert info.retention.max_events == 10
        with pytest.raises(riverlog.AlreadyExistsError) as exc:
            await client.create_stream(stream)
        assert exc.value.reason == "STREAM_ALREADY_EXISTS"
        assert (await client.create_stream(stream, exist_ok=True)).stream == stream
        assert stream in [s.stream async for s in client.list_streams("test:*")]

        await client.publish(stream, _events(0, 4))
        assert [e.json() for e in await client.take(stream, 1)] == [0]
        assert await client.trim(stream, before_sequence=3) == 1
        assert [e.json() for e in await client.read(stream)] == [2, 3]
        cp = await client.commit_checkpoint(f"cp-{stream}", stream=stream, sequence=3)
        assert (await client.get_checkpoint(f"cp-{stream}", stream=stream)).sequence == cp.sequence == 3
        assert await client.delete_stream(stream) == 2
        with pytest.raises(riverlog.NotFoundError):
            await client.get_stream(stream)


async def test_a_bad_stream_name_raises_what_the_blocking_client_raises(server):
    event = {"type": "t", "source": "/s"}
    with riverlog.Client(server.target, timeout=10) as blocking:
        with pytest.raises(riverlog.RiverlogError) as sync_exc:
            blocking.publish("bad name!", event)
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        with pytest.raises(riverlog.RiverlogError) as async_exc:
            await client.publish("bad name!", event)
    sync_err, async_err = sync_exc.value, async_exc.value
    assert type(async_err) is type(sync_err) is riverlog.InvalidArgumentError
    assert async_err.reason == sync_err.reason == "INVALID_STREAM_NAME"
    assert async_err.code() == sync_err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert async_err.domain == sync_err.domain == "riverlog.dev"
    assert async_err.metadata == sync_err.metadata
    assert async_err.message == sync_err.message
    assert riverlog.error_reason(async_err) == "INVALID_STREAM_NAME"
    assert isinstance(async_err, grpc.RpcError)


async def test_errors_carry_their_reasons(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        with pytest.raises(riverlog.NotFoundError) as missing:
            await client.get_stream(stream)
        assert missing.value.reason == "STREAM_NOT_FOUND"
        await client.publish(stream, {"type": "t", "source": "/s"}, expected_last_sequence=0)
        with pytest.raises(riverlog.WrongExpectedSequenceError) as lost:
            await client.publish(stream, {"type": "t", "source": "/s"}, expected_last_sequence=0)
        assert lost.value.reason == "WRONG_EXPECTED_SEQUENCE"
        assert lost.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(ValueError):  # checked before any call
            await client.trim(stream)


async def test_token_auth(auth_server):  # noqa: F811 (the fixture)
    event = {"type": "t", "source": "/s", "data": 1}
    async with riverlog.aio.Client(auth_server.target, timeout=10) as anonymous:
        with pytest.raises(riverlog.UnauthenticatedError) as exc:
            await anonymous.publish("orders:1", event)
        assert exc.value.reason == "UNAUTHENTICATED"
    async with riverlog.aio.Client(auth_server.target, token=TOKEN, timeout=10) as client:
        (p,) = await client.publish("orders:1", event)
        assert [e.id for e in await client.read("orders:1")] == [p.id]
        async with client.subscribe("orders:*") as subscription:
            assert (await subscription.__anext__()).id == p.id
        with pytest.raises(riverlog.PermissionDeniedError) as denied:
            await client.publish("payments:1", event)
        assert denied.value.reason == "PERMISSION_DENIED"
        with pytest.raises(riverlog.PermissionDeniedError):
            async with client.subscribe("payments:*"):
                pass


async def test_cancelling_a_unary_call_cancels_it(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(0, 1))
        await client.create_group(stream, "g", start="latest")
        # Fetch waits up to `block` for an event that never comes.
        fetching = asyncio.ensure_future(client.fetch(stream, "g", "c", block=30))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        fetching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fetching
        assert time.monotonic() - started < 5  # not the 30 s the fetch would block
        # The client goes on working.
        assert (await client.get_group(stream, "g")).group == "g"
