"""Subscriptions: catch-up then live, and resume across a server restart."""

import threading
import time

import riverlog


def _publish(client, stream, start, count):
    return client.publish(
        stream, [{"type": "t", "source": "/s", "data": i} for i in range(start, start + count)]
    )


def test_subscribe_catches_up_then_goes_live(client, stream):
    _publish(client, stream, 0, 3)
    with client.subscribe(stream, heartbeat_interval=0.5) as sub:
        history = [next(sub) for _ in range(3)]
        assert [e.json() for e in history] == [0, 1, 2]
        assert not sub.caught_up  # the marker follows the history
        _publish(client, stream, 3, 2)
        live = [next(sub) for _ in range(2)]
        assert sub.caught_up
        assert [e.json() for e in live] == [3, 4]
        assert sub.last_position == live[-1].position
        assert sub.reconnects == 0


def test_subscribe_pattern_and_filter(client, stream):
    (_, last) = _publish(client, f"{stream}:a", 0, 2)  # history before the start
    with client.subscribe(f"{stream}:*", from_position=last.position + 1, types=["keep"]) as sub:
        client.publish(f"{stream}:b", [{"type": "drop", "source": "/s"},
                                       {"type": "keep", "source": "/s", "data": "b"}])
        client.publish(f"{stream}:a", {"type": "keep", "source": "/s", "data": "a"})
        got = [next(sub) for _ in range(2)]
    assert [(e.stream, e.data) for e in got] == [(f"{stream}:b", "b"), (f"{stream}:a", "a")]


def test_subscribe_from_position(client, stream):
    published = _publish(client, stream, 0, 4)
    with client.subscribe(stream, from_position=published[2].position) as sub:
        assert [next(sub).json() for _ in range(2)] == [2, 3]


def test_subscribe_resumes_after_server_restart(own_server):
    own_server.start()
    stream = "resume:1"
    with riverlog.Client(own_server.target, timeout=10) as publisher:
        _publish(publisher, stream, 0, 5)

    subscriber = riverlog.Client(own_server.target)
    sub = subscriber.subscribe(stream, heartbeat_interval=0.2, max_backoff=0.5)
    received = []
    failure = []
    got = threading.Condition()

    def consume():
        try:
            for event in sub:
                with got:
                    received.append(event)
                    got.notify_all()
        except Exception as exc:  # surfaced by the assertions below
            failure.append(exc)
            with got:
                got.notify_all()

    def wait_for(n, timeout=30.0):
        with got:
            assert got.wait_for(lambda: len(received) >= n or failure, timeout), len(received)
        assert not failure, failure

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        wait_for(5)
        # Down for a while: the iterator keeps retrying with backoff meanwhile.
        own_server.restart(downtime=1.5)
        with riverlog.Client(own_server.target, timeout=10) as publisher:
            _publish(publisher, stream, 5, 5)
        wait_for(10)
        # And it stays live on the new connection.
        with riverlog.Client(own_server.target, timeout=10) as publisher:
            _publish(publisher, stream, 10, 1)
        wait_for(11)
        time.sleep(0.5)  # room for a (wrong) duplicate to show up
    finally:
        sub.close()
        thread.join(timeout=10)
        subscriber.close()
    assert not thread.is_alive()
    assert not failure, failure
    assert [e.sequence for e in received] == list(range(1, 12))  # no gap, no duplicate
    assert [e.json() for e in received] == list(range(11))
    assert sub.reconnects >= 1
