"""Consumer groups: consume + ack, nack + redelivery."""

import riverlog


def test_consume_and_ack(client, stream):
    client.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(3)])
    info = client.create_group(stream, "workers")
    assert info.group == "workers" and info.lag == 3
    with client.consume(stream, "workers", "w1", heartbeat_interval=0.5) as deliveries:
        seen = []
        for delivery in deliveries:
            assert delivery.delivery_count == 1 and delivery.consumer == "w1"
            seen.append(delivery.event.json())
            assert delivery.ack()
            if len(seen) == 3:
                break
    assert seen == [0, 1, 2]
    group = client.get_group(stream, "workers")
    assert (group.pending, group.ack_floor, group.lag) == (0, 3, 0)
    # An existing group: an error with a reason, or returned with exist_ok.
    try:
        client.create_group(stream, "workers")
        raise AssertionError("expected AlreadyExistsError")
    except riverlog.AlreadyExistsError:
        pass
    assert client.create_group(stream, "workers", exist_ok=True).ack_floor == 3


def test_nack_redelivers(client, stream):
    client.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(2)])
    client.create_group(stream, "g", ack_timeout=60)
    counts = {}
    with client.consume(stream, "g", "w1", heartbeat_interval=0.5) as deliveries:
        for delivery in deliveries:
            n = delivery.event.json()
            counts.setdefault(n, []).append(delivery.delivery_count)
            if n == 0 and delivery.delivery_count == 1:
                assert delivery.nack()  # no delay: delivered again at once
            else:
                delivery.ack()
            if sum(len(c) for c in counts.values()) == 3:
                break
    assert counts == {0: [1, 2], 1: [1]}
    assert client.get_group(stream, "g").pending == 0


def test_delivery_context_manager_and_fetch(client, stream):
    client.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(2)])
    client.create_group(stream, "g")
    first, second = client.fetch(stream, "g", "w1", count=2, block=5)
    with first:  # success: acked
        pass
    try:
        with second:  # failure: nacked, delivered again
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    (again,) = client.fetch(stream, "g", "w2", count=5, block=5)
    assert (again.sequence, again.delivery_count) == (second.sequence, 2)
    again.ack()
    pending = client.list_pending(stream, "g")
    assert pending.summary.count == 0


def test_consume_survives_server_restart(own_server):
    own_server.start()
    stream = "work:1"
    with riverlog.Client(own_server.target, timeout=10) as admin:
        admin.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(2)])
        # A short ack timeout: a delivery lost with the old connection comes
        # back quickly.
        admin.create_group(stream, "g", ack_timeout=1)
    client = riverlog.Client(own_server.target, timeout=10)
    acked = set()
    with client.consume(stream, "g", "w1", max_in_flight=1, max_backoff=0.5) as deliveries:
        first = next(deliveries)
        first.ack()
        acked.add(first.event.json())
        own_server.restart(downtime=0.5)
        with riverlog.Client(own_server.target, timeout=10) as admin:
            admin.publish(stream, {"type": "t", "source": "/s", "data": 2})
        for delivery in deliveries:
            delivery.ack()
            acked.add(delivery.event.json())
            if acked == {0, 1, 2}:
                break
        assert deliveries.reconnects >= 1
    client.close()
