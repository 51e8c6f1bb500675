"""CloudEvent building and decoding, without a server."""

from datetime import datetime, timezone

import pytest
from google.protobuf import timestamp_pb2

import riverlog
from riverlog.v1 import types_pb2


def test_dict_with_json_data():
    ev = riverlog.to_cloud_event({"type": "t.created", "source": "/s", "data": {"a": 1}, "subject": "x"})
    assert ev.spec_version == "1.0" and ev.type == "t.created" and ev.source == "/s"
    assert len(ev.id) == 36  # a generated UUID
    assert ev.text_data == '{"a":1}'
    assert ev.attributes["datacontenttype"].ce_string == "application/json"
    assert ev.attributes["subject"].ce_string == "x"


def test_data_kinds_and_extensions():
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    ev = riverlog.cloud_event(
        "t", "/s", b"\x00\x01", id="e1", time=when, dataschema="https://x/s.json",
        traceid="abc", retries=3, urgent=True,
    )
    assert ev.id == "e1" and ev.binary_data == b"\x00\x01"
    assert ev.attributes["time"].ce_timestamp.ToDatetime(tzinfo=timezone.utc) == when
    assert ev.attributes["dataschema"].ce_uri == "https://x/s.json"
    assert ev.attributes["traceid"].ce_string == "abc"
    assert ev.attributes["retries"].ce_integer == 3
    assert ev.attributes["urgent"].ce_boolean is True
    assert riverlog.cloud_event("t", "/s", "plain").text_data == "plain"
    packed = riverlog.cloud_event("t", "/s", timestamp_pb2.Timestamp(seconds=5))
    assert packed.proto_data.type_url.endswith("google.protobuf.Timestamp")


def test_event_wrapper_decodes():
    ce = riverlog.cloud_event("t", "/s", {"k": "v"}, id="e", subject="sub",
                              time="2024-05-01T12:00:00Z")
    rec = types_pb2.RecordedEvent(stream="s", sequence=3, position=9, event=ce)
    event = riverlog.Event(rec)
    assert (event.stream, event.sequence, event.position, event.id) == ("s", 3, 9, "e")
    assert event.json() == {"k": "v"} and event.subject == "sub"
    assert event.time == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert event.attributes["datacontenttype"] == "application/json"


def test_invalid_inputs():
    with pytest.raises(ValueError):
        riverlog.to_cloud_event({"type": "t"})  # no source
    with pytest.raises(ValueError):
        riverlog.to_cloud_event({"type": "t", "source": "/s", "specversion": "0.3"})
    with pytest.raises(ValueError):
        riverlog.cloud_event("t", "/s", big=2**40)
    with pytest.raises(ValueError):
        riverlog.cloud_event("t", "/s", time=datetime(2024, 1, 1))  # naive
