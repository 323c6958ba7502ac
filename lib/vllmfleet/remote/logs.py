"""Following a host's log tail: poll it and hand on only the lines that are new.

A host adapter gives a log *tail* (the last N lines), not a stream, so following is polling:
every ``every_s`` seconds fetch the last :data:`FOLLOW_WINDOW` lines and emit those after
the longest overlap with what was seen before (:func:`new_lines`). Waiting is tenacity's.
``inv logs.<host> --follow`` uses :func:`follow`; Ctrl-C ends it quietly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from vllmfleet.remote.base import HostAdapter, ServiceName

FOLLOW_EVERY_S = 2.0
FOLLOW_WINDOW = 200  # lines fetched per poll while following


def new_lines(seen: list[str], now: list[str]) -> list[str]:
    """The lines of ``now`` after the longest overlap of ``seen``'s end with its start."""
    for size in range(min(len(seen), len(now)), 0, -1):
        if seen[-size:] == now[:size]:
            return now[size:]
    return now


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def follow(adapter: HostAdapter, service: ServiceName, first: list[str], *,
           polls: int | None = None, every_s: float = FOLLOW_EVERY_S,
           write: Callable[[str], None] = _stdout) -> None:
    """Poll the log tail and ``write`` what is new, a line each (``polls``: stop after that
    many, for tests; otherwise until Ctrl-C)."""
    # tenacity loads here, not at import: tasks/logs.py imports this module for `inv --list`
    from tenacity import (
        RetryError,
        Retrying,
        retry_if_result,
        stop_after_attempt,
        stop_never,
        wait_fixed,
    )

    seen = list(first)

    def poll() -> bool:
        now = adapter.logs(lines=FOLLOW_WINDOW, service=service).splitlines()
        fresh = new_lines(seen, now)
        if fresh:
            write("\n".join(fresh) + "\n")
            seen[:] = now
        return True

    stop = stop_never if polls is None else stop_after_attempt(polls)
    retrying = Retrying(stop=stop, wait=wait_fixed(every_s),
                        retry=retry_if_result(lambda _again: True))
    try:
        retrying(poll)
    except (KeyboardInterrupt, RetryError):  # Ctrl-C, or ``polls`` done
        return
