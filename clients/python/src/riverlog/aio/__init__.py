"""riverlog for asyncio: the client of :mod:`riverlog` over ``grpc.aio``.

Quick use::

    import riverlog.aio

    async with riverlog.aio.Client("localhost:50051") as client:
        await client.publish("orders:1", {"type": "order.created", "source": "/shop", "data": {"n": 1}})
        async with client.subscribe("orders:*") as subscription:
            async for event in subscription:
                print(event.stream, event.sequence, event.json())

Same methods, arguments and results as :class:`riverlog.Client`, awaited;
the same exceptions (:class:`riverlog.RiverlogError` and its subclasses);
the same events (:class:`riverlog.Event`, :class:`riverlog.Published`).
"""

from ._client import Client, Consumer, Delivery, Subscription
from ._producer import Producer

__all__ = ["Client", "Subscription", "Consumer", "Delivery", "Producer"]
