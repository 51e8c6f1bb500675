"""asyncio helpers of the async client."""

from __future__ import annotations

import asyncio


def task_cancelled() -> bool:
    """Whether the running task is being cancelled. Known from Python 3.11
    on (``Task.cancelling``); before, a cancelled call is told apart from a
    cancelled task only by the caller's own state."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling is not None and cancelling())
