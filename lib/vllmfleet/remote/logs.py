"""Following a host's log tail: poll it and hand on only the lines that are new.

A host adapter gives a log *tail* (the last N lines), not a stream, so following is polling:
every ``every_s`` seconds fetch the last :data:`FOLLOW_WINDOW` lines and emit those after
the longest overlap with what was seen before (:func:`new_lines`). A plain loop: waiting
between polls is an :class:`threading.Event` wait, so a caller can end it at once.
``inv logs.<host> --follow`` uses :func:`follow`; Ctrl-C ends it quietly.
"""

from __future__ import annotations

import sys
import threading
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
           write: Callable[[str], None] = _stdout, stop: threading.Event | None = None) -> None:
    """Poll the log tail and ``write`` what is new, a line each, until Ctrl-C, ``stop`` is
    set, or (for tests) ``polls`` polls are done."""
    seen = list(first)
    stop = stop or threading.Event()
    done = 0
    try:
        while polls is None or done < polls:
            now = adapter.logs(lines=FOLLOW_WINDOW, service=service).splitlines()
            fresh = new_lines(seen, now)
            if fresh:
                write("\n".join(fresh) + "\n")
                seen[:] = now
            done += 1
            if (polls is None or done < polls) and stop.wait(every_s):
                return
    except KeyboardInterrupt:
        return
