"""The event loop the clients run on: uvloop's where it is installed, else asyncio's.

uvloop is optional (not a dependency): on this project's 2-core machine it moved the
streaming client from 68-80 % to 71-91 % of a bare aiohttp loop's request rate (issue 13);
``benchmarks/client_overhead.py --no-uvloop`` shows the difference on yours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop: uvloop's when available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
