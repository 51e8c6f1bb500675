"""Python client for riverlog, a gRPC event log of CloudEvents.

Quick use::

    import riverlog

    with riverlog.Client("localhost:50051") as client:
        client.publish("orders:1", {"type": "order.created", "source": "/shop", "data": {"n": 1}})
        for event in client.subscribe("orders:*"):
            print(event.stream, event.sequence, event.json())

For asyncio, :mod:`riverlog.aio` has the same client over ``grpc.aio``
(``async with riverlog.aio.Client(...) as client``).

The generated protobuf messages and gRPC stubs live in :mod:`riverlog.v1`.
"""

from ._client import Client, Consumer, Delivery, Subscription
from ._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RiverlogError,
    UnauthenticatedError,
    UnavailableError,
    WrongExpectedSequenceError,
    error_info,
    error_reason,
    retry_delay,
)
from ._events import CloudEvent, Event, EventLike, Published, cloud_event, to_cloud_event
from ._producer import EARLIER_BATCH_REFUSED, Producer
from . import aio  # noqa: E402 (riverlog.aio.Client after a plain `import riverlog`)

__version__ = "0.1.0"

__all__ = [
    "aio",
    "Client",
    "Subscription",
    "Consumer",
    "Delivery",
    "Producer",
    "EARLIER_BATCH_REFUSED",
    "Event",
    "Published",
    "CloudEvent",
    "EventLike",
    "cloud_event",
    "to_cloud_event",
    "RiverlogError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "FailedPreconditionError",
    "WrongExpectedSequenceError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "error_info",
    "error_reason",
    "retry_delay",
]
