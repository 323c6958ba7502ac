"""logs.<host>: the tail of a host's vLLM container log (or the proxy unit's journal).

``--follow`` keeps polling the tail and prints the lines that are new (Ctrl-C stops it):
:mod:`vllmfleet.remote.logs` does that.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from vllmfleet.remote import ServiceName, follow
from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, per_host, user_errors
from vllmfleet.tasks.deploy import access

__all__ = ["collection", "host_task"]

_HELP = {
    "lines": "how many lines (default 100)",
    "follow": "keep printing new lines until Ctrl-C",
    "service": "vllm or proxy, for a host that runs both (default: vllm if it has it)",
    "inventory": INVENTORY_HELP,
}


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
    return per_host("logs", hosts, host_task)
