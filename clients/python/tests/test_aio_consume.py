"""riverlog.aio consumer groups: consume with ack and nack, the async
Delivery context manager, fetch and claim, and a consumer that survives a
server restart."""

import asyncio

import pytest

import riverlog
import riverlog.aio


def _events(count):
    return [{"type": "t", "source": "/s", "data": i} for i in range(count)]


async def test_consume_ack_and_nack(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(3))
        info = await client.create_group(stream, "workers", ack_timeout=60)
        assert info.group == "workers" and info.lag == 3
        counts = {}
        async with client.consume(stream, "workers", "w1", heartbeat_interval=0.5) as consumer:
            async for delivery in consumer:
                assert isinstance(delivery, riverlog.aio.Delivery)
                assert delivery.consumer == "w1" and delivery.group == "workers"
                n = delivery.event.json()
                counts.setdefault(n, []).append(delivery.delivery_count)
                if n == 0 and delivery.delivery_count == 1:
                    assert await delivery.nack()  # no delay: delivered again at once
                else:
                    assert await delivery.ack()
                if sum(len(c) for c in counts.values()) == 4:
                    break
        assert counts == {0: [1, 2], 1: [1], 2: [1]}
        group = await client.get_group(stream, "workers")
        assert (group.pending, group.ack_floor, group.lag) == (0, 3, 0)
        assert [g.group for g in await client.list_groups(stream)] == ["workers"]
        with pytest.raises(riverlog.AlreadyExistsError):
            await client.create_group(stream, "workers")
        assert (await client.create_group(stream, "workers", exist_ok=True)).ack_floor == 3


async def test_delivery_context_manager_acks_or_nacks(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(2))
        await client.create_group(stream, "g")
        first, second = await client.fetch(stream, "g", "w1", count=2, block=5)
        async with first:  # success: acked
            pass
        with pytest.raises(RuntimeError):
            async with second:  # failure: nacked, delivered again
                raise RuntimeError("boom")
        (again,) = await client.fetch(stream, "g", "w2", count=5, block=5)
        assert (again.sequence, again.delivery_count) == (second.sequence, 2)
        pending = await client.list_pending(stream, "g")
        assert pending.summary.count == 1
        (claimed,) = await client.claim(stream, "g", "w3", min_idle=0, count=1)
        assert claimed.sequence == again.sequence and claimed.consumer == "w3"
        assert await client.ack(stream, "g", [claimed.sequence]) == 1
        assert (await client.list_pending(stream, "g")).summary.count == 0
        assert await client.delete_consumer(stream, "g", "w1") == 0
        await client.delete_group(stream, "g")
        with pytest.raises(riverlog.NotFoundError):
            await client.get_group(stream, "g")


async def test_a_cancelled_block_nacks_its_delivery(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(1))
        await client.create_group(stream, "g", ack_timeout=60)
        (delivery,) = await client.fetch(stream, "g", "w1", block=5)

        async def handle():
            async with delivery:
                await asyncio.sleep(30)

        task = asyncio.ensure_future(handle())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Nacked, so delivered again at once rather than after 60 s.
        (again,) = await client.fetch(stream, "g", "w2", block=5)
        assert again.delivery_count == 2


async def test_consuming_an_unknown_group_raises_on_entering(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(1))
        with pytest.raises(riverlog.NotFoundError) as exc:
            async with client.consume(stream, "nobody", "w1"):
                pass
        assert exc.value.reason == "GROUP_NOT_FOUND"


async def test_consume_survives_server_restart(own_server):
    own_server.start()
    stream = "work:1"
    async with riverlog.aio.Client(own_server.target, timeout=10) as admin:
        await admin.publish(stream, _events(2))
        # A short ack timeout: a delivery lost with the old connection comes
        # back quickly.
        await admin.create_group(stream, "g", ack_timeout=1)
    acked = set()
    async with riverlog.aio.Client(own_server.target, timeout=10) as client:
        async with client.consume(stream, "g", "w1", max_in_flight=1, max_backoff=0.5) as consumer:
            first = await consumer.__anext__()
            await first.ack()
            acked.add(first.event.json())
            await asyncio.to_thread(own_server.restart, 0.5)
            async with riverlog.aio.Client(own_server.target, timeout=10) as admin:
                await admin.publish(stream, {"type": "t", "source": "/s", "data": 2})

            async def rest():
                async for delivery in consumer:
                    await delivery.ack()
                    acked.add(delivery.event.json())
                    if acked == {0, 1, 2}:
                        return

            await asyncio.wait_for(rest(), 30)
            assert consumer.reconnects >= 1


async def test_entering_a_consumer_with_nothing_to_deliver_does_not_wait_for_a_delivery(server, stream):
    async with riverlog.aio.Client(server.target, timeout=10) as client:
        await client.publish(stream, _events(1))
        await client.create_group(stream, "g", start="latest")
        consumer = client.consume(stream, "g", "w1")
        await asyncio.wait_for(consumer.__aenter__(), 5)
        try:
            await client.publish(stream, _events(1))
            delivery = await asyncio.wait_for(consumer.__anext__(), 10)
            assert delivery.sequence == 2
            assert await delivery.ack()
        finally:
            await consumer.__aexit__(None, None, None)
