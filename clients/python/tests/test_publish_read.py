"""Publish, read, idempotency and error reasons against a real server."""

import grpc
import pytest

import riverlog
from riverlog.v1 import event_log_pb2


def test_publish_read_round_trip(client, stream):
    published = client.publish(stream, [
        {"type": "order.created", "source": "/shop", "data": {"total": 12.5}, "subject": "o-1"},
        riverlog.cloud_event("order.note", "/shop", "hello", id="note-1", priority=2),
        riverlog.cloud_event("order.blob", "/shop", b"\x00\xff"),
    ])
    assert [p.sequence for p in published] == [1, 2, 3]
    assert [p.duplicate for p in published] == [False] * 3
    assert published[0].position < published[1].position < published[2].position
    assert published[1].id == "note-1"

    events = client.read(stream)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.position for e in events] == [p.position for p in published]
    assert [e.id for e in events] == [p.id for p in published]
    first, note, blob = events
    assert first.stream == stream and first.type == "order.created" and first.source == "/shop"
    assert first.json() == {"total": 12.5} and first.subject == "o-1"
    assert first.datacontenttype == "application/json"
    assert note.data == "hello" and note.attribute("priority") == 2
    assert blob.data == b"\x00\xff"
    assert first.recorded_at <= blob.recorded_at

    # Paging, limits, direction, starting point and filters.
    assert [e.sequence for e in client.read(stream, limit=2)] == [1, 2]
    assert [e.sequence for e in client.read(stream, from_sequence=2)] == [2, 3]
    assert [e.sequence for e in client.read(stream, backward=True)] == [3, 2, 1]
    assert [e.sequence for e in client.read(stream, types=["order.n*"])] == [2]
    info = client.get_stream(stream)
    assert info.last_sequence == 3 and info.event_count == 3


def test_single_event_publish_and_many_pages(client, stream):
    client.publish(stream, {"type": "t", "source": "/s", "data": 0})
    for start in (1, 601):  # the server's default batch limit is 1000
        client.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(start, start + 600)])
    events = client.read(stream)
    assert len(events) == 1201
    assert [e.json() for e in events] == list(range(1201))


def test_idempotent_duplicate(client, stream):
    event = riverlog.cloud_event("t", "/s", {"n": 1}, id="same-id")
    (first,) = client.publish(stream, [event])
    (again,) = client.publish(stream, [event])
    assert not first.duplicate and again.duplicate
    assert (again.sequence, again.position) == (first.sequence, first.position)
    assert len(client.read(stream)) == 1


def test_stream_not_found(client, stream):
    with pytest.raises(riverlog.NotFoundError) as exc:
        client.get_stream(stream)
    err = exc.value
    assert err.reason == "STREAM_NOT_FOUND"
    assert err.domain == "riverlog.dev"
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert isinstance(err, grpc.RpcError)
    # The accessor works on raw errors of the generated stubs too.
    with pytest.raises(grpc.RpcError) as raw:
        client.event_log.GetStream(event_log_pb2.GetStreamRequest(stream=stream))
    assert riverlog.error_reason(raw.value) == "STREAM_NOT_FOUND"
    assert riverlog.error_reason(err) == "STREAM_NOT_FOUND"


def test_wrong_expected_sequence(client, stream):
    client.publish(stream, {"type": "t", "source": "/s"}, expected_last_sequence=0)
    with pytest.raises(riverlog.WrongExpectedSequenceError) as exc:
        client.publish(stream, {"type": "t", "source": "/s"}, expected_last_sequence=0)
    assert exc.value.reason == "WRONG_EXPECTED_SEQUENCE"
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(riverlog.WrongExpectedSequenceError):
        client.publish(stream, {"type": "t", "source": "/s"}, expect_no_stream=True)
    (p,) = client.publish(stream, {"type": "t", "source": "/s"}, expected_last_sequence=1)
    assert p.sequence == 2


def test_create_stream_and_already_exists(client, stream):
    info = client.create_stream(stream, max_events=10)
    assert info.stream == stream and info.retention.max_events == 10
    with pytest.raises(riverlog.AlreadyExistsError) as exc:
        client.create_stream(stream)
    assert exc.value.reason == "STREAM_ALREADY_EXISTS"
    assert client.create_stream(stream, exist_ok=True).stream == stream
    assert stream in [s.stream for s in client.list_streams("test:*")]
    assert client.delete_stream(stream) == 0
    with pytest.raises(riverlog.NotFoundError):
        client.get_stream(stream)


def test_invalid_stream_name(client):
    with pytest.raises(riverlog.InvalidArgumentError) as exc:
        client.publish("bad name!", {"type": "t", "source": "/s"})
    assert exc.value.reason == "INVALID_STREAM_NAME"


def test_take_and_checkpoint(client, stream):
    client.publish(stream, [{"type": "t", "source": "/s", "data": i} for i in range(3)])
    assert [e.json() for e in client.take(stream, 2)] == [0, 1]
    cp = client.commit_checkpoint(f"cp-{stream}", stream=stream, sequence=3)
    assert cp.sequence == 3
    assert client.get_checkpoint(f"cp-{stream}", stream=stream).sequence == 3
