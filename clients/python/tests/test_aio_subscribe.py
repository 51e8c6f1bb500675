"""riverlog.aio subscriptions: catch-up then live, resume across a server
restart, and cancellation that closes the call."""

import asyncio

import pytest

import riverlog
import riverlog.aio


async def _publish(client, stream, start, count):
    return await client.publish(
        stream, [{"type": "t", "source": "/s", "data": i} for i in range(start, start + count)]
    )


async def _next(subscription, timeout=10.0):
    return await asyncio.wait_for(subscription.__anext__(), timeout)


async def test_subscribe_catches_up_then_goes_live(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await _publish(client, stream, 0, 3)
        async with client.subscribe(stream, heartbeat_interval=0.5) as subscription:
            history = [await _next(subscription) for _ in range(3)]
            assert [e.json() for e in history] == [0, 1, 2]
            assert not subscription.caught_up  # the marker follows the history
            await _publish(client, stream, 3, 2)
            live = [await _next(subscription) for _ in range(2)]
            assert subscription.caught_up
            assert [e.json() for e in live] == [3, 4]
            assert subscription.last_position == live[-1].position
            assert subscription.reconnects == 0


async def test_a_latest_subscription_sees_what_is_published_once_entered(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await _publish(client, stream, 0, 2)
        # Entering waits until the server registered the subscription: no
        # race with the publish that follows.
        async with client.subscribe(stream, start="latest") as subscription:
            await _publish(client, stream, 2, 1)
            assert (await _next(subscription)).json() == 2


async def test_async_for_pattern_and_filter(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        (_, last) = await _publish(client, f"{stream}:a", 0, 2)
        got = []
        async with client.subscribe(
            f"{stream}:*", from_position=last.position + 1, types=["keep"]
        ) as subscription:
            await client.publish(f"{stream}:b", [{"type": "drop", "source": "/s"},
                                                 {"type": "keep", "source": "/s", "data": "b"}])
            await client.publish(f"{stream}:a", {"type": "keep", "source": "/s", "data": "a"})
            async for event in subscription:
                got.append((event.stream, event.data))
                if len(got) == 2:
                    break
    assert got == [(f"{stream}:b", "b"), (f"{stream}:a", "a")]


async def test_a_refused_subscription_raises_the_blocking_clients_error(server):
    with riverlog.Client(server.target, timeout=10) as blocking:
        with pytest.raises(riverlog.RiverlogError) as sync_exc:
            next(blocking.subscribe("bad name!"))
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        # Raised on entering...
        with pytest.raises(riverlog.RiverlogError) as entered:
            async with client.subscribe("bad name!"):
                pass
        # ...or by the first iteration, without `async with`.
        subscription = client.subscribe("bad name!")
        with pytest.raises(riverlog.RiverlogError) as iterated:
            async for _ in subscription:
                pass
    for exc in (entered, iterated):
        assert type(exc.value) is type(sync_exc.value) is riverlog.InvalidArgumentError
        assert exc.value.reason == sync_exc.value.reason == "INVALID_STREAM_NAME"
        assert exc.value.code() == sync_exc.value.code()


async def test_subscribe_resumes_after_server_restart(own_server):
    own_server.start()
    stream = "resume:1"
    async with riverlog.aio.Client(own_server.target, timeout=10) as publisher:
        await _publish(publisher, stream, 0, 5)
    received = []
    async with riverlog.aio.Client(own_server.target) as client:
        async with client.subscribe(stream, heartbeat_interval=0.2, max_backoff=0.5) as subscription:

            async def wait_for(n):
                while len(received) < n:
                    received.append(await _next(subscription, timeout=30))

            await wait_for(5)
            # Down for a while: the iterator keeps retrying with backoff
            # meanwhile (the restart blocks, so it runs in a thread).
            reading = asyncio.ensure_future(wait_for(10))
            await asyncio.to_thread(own_server.restart, 1.5)
            async with riverlog.aio.Client(own_server.target, timeout=10) as publisher:
                await _publish(publisher, stream, 5, 5)
                await reading
                # And it stays live on the new connection.
                await _publish(publisher, stream, 10, 1)
                await wait_for(11)
            # Room for a (wrong) duplicate to show up.
            with pytest.raises(asyncio.TimeoutError):
                await _next(subscription, timeout=0.5)
            assert subscription.reconnects >= 1
    assert [e.sequence for e in received] == list(range(1, 12))  # no gap, no duplicate
    assert [e.json() for e in received] == list(range(11))


async def test_cancelling_the_iterating_task_cancels_the_call(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await _publish(client, stream, 0, 1)
        seen = []

        async def follow(subscription):
            async for event in subscription:
                seen.append(event)

        async with client.subscribe(stream) as subscription:
            call = subscription._call
            task = asyncio.ensure_future(follow(subscription))
            while not seen:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert call.cancelled()
            assert call.done()


async def test_a_cancelled_wait_resumes_where_it_stopped(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await _publish(client, stream, 0, 2)
        async with client.subscribe(stream) as subscription:
            assert [(await _next(subscription)).json() for _ in range(2)] == [0, 1]
            # Nothing comes: the timeout cancels the wait, and the call.
            with pytest.raises(asyncio.TimeoutError):
                await _next(subscription, timeout=0.3)
            await _publish(client, stream, 2, 2)
            # Iterating again opens a call from where it stood: no gap, no
            # duplicate.
            assert [(await _next(subscription)).json() for _ in range(2)] == [2, 3]
            assert subscription.last_position is not None


async def test_closing_from_another_task_ends_the_iteration(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        subscription = client.subscribe(stream)
        events = []

        async def follow():
            async for event in subscription:
                events.append(event)
            return "ended"

        task = asyncio.ensure_future(follow())
        await asyncio.sleep(0.3)
        await subscription.aclose()
        assert await asyncio.wait_for(task, 5) == "ended"
        assert events == []
        with pytest.raises(StopAsyncIteration):
            await subscription.__anext__()


async def test_aclose_and_close_are_idempotent(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await _publish(client, stream, 0, 1)
        subscription = client.subscribe(stream)
        try:  # what contextlib.aclosing (Python 3.10+) does
            async for event in subscription:
                assert event.json() == 0
                break
        finally:
            await subscription.aclose()
        subscription.close()
        await subscription.aclose()
        with pytest.raises(StopAsyncIteration):
            await subscription.__anext__()
