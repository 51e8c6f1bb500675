"""Building CloudEvents to publish and reading the events riverlog returns."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, NamedTuple, Optional, Union

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from .v1 import cloudevent_pb2, event_log_pb2, types_pb2

__all__ = ["CloudEvent", "EventLike", "Event", "Published", "cloud_event", "to_cloud_event"]

#: The generated CloudEvent message (CloudEvents Protobuf Format).
CloudEvent = cloudevent_pb2.CloudEvent
_AttrValue = cloudevent_pb2.CloudEvent.CloudEventAttributeValue

#: What :meth:`riverlog.Client.publish` accepts as an event: a CloudEvent
#: message, or a mapping in the shape of the CloudEvents JSON format
#: (``{"type": ..., "source": ..., "data": ..., "subject": ...}``).
EventLike = Union[cloudevent_pb2.CloudEvent, Mapping[str, Any]]

_SPEC_VERSION = "1.0"
_URI_ATTRIBUTES = {"dataschema"}
_INT32 = (-(2**31), 2**31 - 1)


def _timestamp(value: Union[datetime, str]) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if isinstance(value, str):
        ts.FromJsonString(value)
    else:
        if value.tzinfo is None:
            raise ValueError("naive datetime: give it a tzinfo (e.g. timezone.utc)")
        ts.FromDatetime(value.astimezone(timezone.utc))
    return ts


def _to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def _attribute(name: str, value: Any) -> _AttrValue:
    if isinstance(value, _AttrValue):
        return value
    if isinstance(value, bool):
        return _AttrValue(ce_boolean=value)
    if isinstance(value, int):
        if not _INT32[0] <= value <= _INT32[1]:
            raise ValueError(f"attribute {name!r}: {value} does not fit a CloudEvents Integer")
        return _AttrValue(ce_integer=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _AttrValue(ce_bytes=bytes(value))
    if isinstance(value, datetime):
        return _AttrValue(ce_timestamp=_timestamp(value))
    if isinstance(value, str):
        if name == "time":
            return _AttrValue(ce_timestamp=_timestamp(value))
        if name in _URI_ATTRIBUTES:
            return _AttrValue(ce_uri=value)
        return _AttrValue(ce_string=value)
    raise TypeError(f"attribute {name!r}: unsupported type {type(value).__name__}")


def _attribute_value(value: _AttrValue) -> Any:
    kind = value.WhichOneof("attr")
    if kind is None:
        return None
    if kind == "ce_timestamp":
        return _to_datetime(value.ce_timestamp)
    return getattr(value, kind)


def cloud_event(
    type: str,
    source: str,
    data: Any = None,
    *,
    id: Optional[str] = None,
    subject: Optional[str] = None,
    time: Union[datetime, str, None] = None,
    datacontenttype: Optional[str] = None,
    dataschema: Optional[str] = None,
    **extensions: Any,
) -> cloudevent_pb2.CloudEvent:
    """Builds a CloudEvent.

    Args:
        type: The event type, e.g. ``"com.example.order.created"``.
        source: URI-reference of the producing context, e.g. ``"/shop"``.
        data: The payload. ``bytes`` become binary data, ``str`` text data, a
            protobuf message is packed into ``google.protobuf.Any``, and any
            other value (dict, list, number, bool) is encoded as JSON text with
            ``datacontenttype`` ``application/json``. ``None``: no data.
        id: Event id; a random UUID when omitted. riverlog deduplicates
            publishes by id within a stream, so reuse the id when retrying.
        subject, time, datacontenttype, dataschema: The optional CloudEvents
            attributes (``time`` is a timezone-aware datetime or an RFC 3339
            string).
        **extensions: Extension attributes (lowercase ``a-z0-9`` names); values
            may be bool, int (32-bit), str, bytes or datetime.
    """
    event = cloudevent_pb2.CloudEvent(
        id=id or str(uuid.uuid4()), source=source, spec_version=_SPEC_VERSION, type=type
    )
    if data is None:
        pass
    elif isinstance(data, (bytes, bytearray, memoryview)):
        event.binary_data = bytes(data)
    elif isinstance(data, str):
        event.text_data = data
    elif isinstance(data, any_pb2.Any):
        event.proto_data.CopyFrom(data)
    elif isinstance(data, Message):
        event.proto_data.Pack(data)
    else:
        event.text_data = json.dumps(data, separators=(",", ":"))
        if datacontenttype is None:
            datacontenttype = "application/json"
    attributes: Dict[str, Any] = {
        "subject": subject,
        "time": time,
        "datacontenttype": datacontenttype,
        "dataschema": dataschema,
        **extensions,
    }
    for name, value in attributes.items():
        if value is not None:
            event.attributes[name].CopyFrom(_attribute(name, value))
    return event


def to_cloud_event(value: EventLike) -> cloudevent_pb2.CloudEvent:
    """Converts a CloudEvent message or a mapping into a CloudEvent message.

    A mapping uses the attribute names of the CloudEvents JSON format:
    ``type`` and ``source`` are required, ``id`` is generated when missing,
    ``specversion`` (if present) must be ``"1.0"``, ``data`` is converted as in
    :func:`cloud_event`, ``data_base64`` (a base64 string) gives binary data,
    and every other key becomes an attribute.
    """
    if isinstance(value, cloudevent_pb2.CloudEvent):
        if not value.spec_version:
            copy = cloudevent_pb2.CloudEvent()
            copy.CopyFrom(value)
            copy.spec_version = _SPEC_VERSION
            return copy
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"expected a CloudEvent or a mapping, got {type(value).__name__}"
        )
    fields = dict(value)
    spec = fields.pop("specversion", fields.pop("spec_version", _SPEC_VERSION))
    if spec != _SPEC_VERSION:
        raise ValueError(f"unsupported CloudEvents specversion {spec!r}")
    try:
        event_type = fields.pop("type")
        source = fields.pop("source")
    except KeyError as missing:
        raise ValueError(f"event mapping lacks the required {missing.args[0]!r}") from None
    data = fields.pop("data", None)
    if "data_base64" in fields:
        import base64

        data = base64.b64decode(fields.pop("data_base64"))
    return cloud_event(event_type, source, data, id=fields.pop("id", None), **fields)


class Published(NamedTuple):
    """Where one published event landed."""

    #: The event's id.
    id: str
    #: Its sequence in the stream.
    sequence: int
    #: Its global position in the log.
    position: int
    #: True when the stream already held this id: nothing was appended and
    #: sequence/position are the original event's.
    duplicate: bool
    #: When the event (or the original) was recorded.
    recorded_at: datetime

    @classmethod
    def from_proto(cls, p: event_log_pb2.PublishedPosition) -> "Published":
        return cls(p.id, p.sequence, p.position, p.duplicate, _to_datetime(p.recorded_at))


class Event:
    """An event as the log recorded it (a ``RecordedEvent``), with its
    CloudEvent's attributes and data in plain Python types.

    The underlying messages stay available as :attr:`recorded` and
    :attr:`cloud_event`.
    """

    __slots__ = ("recorded",)

    def __init__(self, recorded: types_pb2.RecordedEvent) -> None:
        #: The ``riverlog.v1.RecordedEvent`` message.
        self.recorded = recorded

    @property
    def stream(self) -> str:
        """The stream the event belongs to."""
        return self.recorded.stream

    @property
    def sequence(self) -> int:
        """Position within the stream (from 1, never reused)."""
        return self.recorded.sequence

    @property
    def position(self) -> int:
        """Position in the whole log, across streams."""
        return self.recorded.position

    @property
    def recorded_at(self) -> datetime:
        """When the log committed the event (UTC)."""
        return _to_datetime(self.recorded.recorded_at)

    @property
    def cloud_event(self) -> cloudevent_pb2.CloudEvent:
        """The CloudEvent exactly as it was published."""
        return self.recorded.event

    @property
    def id(self) -> str:
        return self.recorded.event.id

    @property
    def source(self) -> str:
        return self.recorded.event.source

    @property
    def type(self) -> str:
        return self.recorded.event.type

    @property
    def attributes(self) -> Dict[str, Any]:
        """Optional and extension attributes as Python values (timestamps
        become aware datetimes)."""
        return {k: _attribute_value(v) for k, v in self.recorded.event.attributes.items()}

    def attribute(self, name: str, default: Any = None) -> Any:
        """One attribute's value, or ``default`` when absent."""
        attrs = self.recorded.event.attributes
        return _attribute_value(attrs[name]) if name in attrs else default

    @property
    def subject(self) -> Optional[str]:
        return self.attribute("subject")

    @property
    def time(self) -> Optional[datetime]:
        return self.attribute("time")

    @property
    def datacontenttype(self) -> Optional[str]:
        return self.attribute("datacontenttype")

    @property
    def data(self) -> Union[bytes, str, any_pb2.Any, None]:
        """The payload: ``bytes`` (binary), ``str`` (text), a
        ``google.protobuf.Any`` (protobuf) or ``None``."""
        ev = self.recorded.event
        kind = ev.WhichOneof("data")
        return getattr(ev, kind) if kind else None

    def json(self) -> Any:
        """Decodes a text or binary payload as JSON."""
        data = self.data
        if not isinstance(data, (str, bytes)):
            raise ValueError(f"event {self.id!r} has no text or binary data to decode")
        return json.loads(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.recorded == self.recorded

    def __hash__(self) -> int:
        return hash((self.stream, self.sequence, self.position))

    def __repr__(self) -> str:
        return (
            f"Event(stream={self.stream!r}, sequence={self.sequence}, "
            f"position={self.position}, type={self.type!r}, id={self.id!r})"
        )
