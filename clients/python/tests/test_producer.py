"""The batching producer over PublishStream, against a real server."""

import concurrent.futures

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
        future = producer.send("orders:1", {"type": "t", "source": "/p"})
        with pytest.raises(riverlog.UnauthenticatedError):
            producer.flush(timeout=10)
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
