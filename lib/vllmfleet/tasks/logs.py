"""logs.<host>: the tail of a host's vLLM container log (or the proxy unit's journal).

``--follow`` keeps polling the tail and prints the lines that are new (Ctrl-C stops it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from vllmfleet.remote_base import HostAdapter, ServiceName
from vllmfleet.tasks._common import load_inventory, user_errors
from vllmfleet.tasks.deploy import access

FOLLOW_EVERY_S = 2.0
FOLLOW_WINDOW = 200  # lines fetched per poll while following
_HELP = {
    "lines": "how many lines (default 100)",
    "follow": "keep printing new lines until Ctrl-C",
    "service": "vllm or proxy, for a host that runs both (default: vllm if it has it)",
    "inventory": "inventory file (default: vllmfleet.inventory, configs/fleet.yaml)",
}


def new_lines(seen: list[str], now: list[str]) -> list[str]:
    """The lines of ``now`` after the longest overlap of ``seen``'s end with its start."""
    for size in range(min(len(seen), len(now)), 0, -1):
        if seen[-size:] == now[:size]:
            return now[size:]
    return now


def follow(adapter: HostAdapter, service: ServiceName, first: list[str], *,
           polls: int | None = None, every_s: float = FOLLOW_EVERY_S) -> None:
    """Poll the log tail and print what is new (``polls``: stop after that many, for tests)."""
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
            print("\n".join(fresh), flush=True)
            seen[:] = now
        return True

    stop = stop_never if polls is None else stop_after_attempt(polls)
    retrying = Retrying(stop=stop, wait=wait_fixed(every_s),
                        retry=retry_if_result(lambda _again: True))
    try:
        retrying(poll)
    except (KeyboardInterrupt, RetryError):  # Ctrl-C, or ``polls`` done
        return


def _logs(c: Context, name: str, *, lines: str | None, follow_: bool, service: str | None,
          inventory: str | None) -> None:
    inv = load_inventory(c, inventory)
    host = inv.hosts.get(name)
    if host is None:
        raise Exit(f"error: {name!r} is not a host of {inv.path}", code=2)
    runs: list[ServiceName] = []
    if host.vllm is not None:
        runs.append("vllm")
    if inv.proxy.host == name:
        runs.append("proxy")
    chosen = service or (runs[0] if runs else "vllm")
    if chosen not in runs:
        raise Exit(f"error: {name} runs {' and '.join(runs) or 'no service we manage'}, not "
                   f"{chosen!r}: pass --service {' or --service '.join(runs) or 'vllm'}",
                   code=2)
    try:
        count = 100 if lines is None else int(lines)
    except ValueError:
        raise Exit(f"error: --lines {lines!r} is not a number; use e.g. --lines 200",
                   code=2) from None
    with user_errors(), access(c, inv).adapter(inv, host) as adapter:
        svc: ServiceName = "proxy" if chosen == "proxy" else "vllm"
        text = adapter.logs(lines=count, service=svc)
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()
        if follow_:
            follow(adapter, svc, text.splitlines())


def host_task(name: str) -> Task[Any]:
    def body(c: Context, lines: str | None = None, follow: bool = False,
             service: str | None = None, inventory: str | None = None) -> None:
        _logs(c, name, lines=lines, follow_=follow, service=service, inventory=inventory)

    body.__doc__ = f"Show the log tail of {name}'s vLLM container (or proxy unit)."
    return Task(body, name=name, help=_HELP)


def collection(hosts: Sequence[str]) -> Collection:
    ns = Collection("logs")
    for name in hosts:
        ns.add_task(host_task(name), name=name)
    return ns
