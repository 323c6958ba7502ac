"""What every task module shares: the inventory a task uses and how errors reach the user.

The settings themselves (``c.config.vllmfleet``) are :mod:`vllmfleet.tasks.settings`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from vllmfleet.errors import FleetError, InventoryError
from vllmfleet.inventory import Inventory, load
from vllmfleet.tasks.settings import settings

#: The help of every task's ``--inventory``.
INVENTORY_HELP = "inventory file (default: vllmfleet.inventory, configs/fleet.yaml)"


def inventory_path(c: Context, given: str | None = None) -> Path:
    """``given`` (a task's ``--inventory``) if set, else the ``inventory`` setting."""
    return Path(given).expanduser() if given else settings(c).inventory


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors into ``invoke.Exit`` (no traceback), exit code 1."""
    try:
        yield
    except InventoryError as exc:
        from vllmfleet.inventory.problems import format_problems

        raise Exit(format_problems(exc.problems, color=sys.stderr.isatty()), code=1) from None
    except FleetError as exc:
        raise Exit(f"error: {exc}", code=1) from None


def load_inventory(c: Context, given: str | None = None) -> Inventory:
    """Load the configured inventory; an invalid one exits with the validation report."""
    with user_errors():
        return load(inventory_path(c, given))


def pick_hosts(inventory: Inventory, host: str | None, *, vllm_only: bool = False) -> list[str]:
    """The hosts a ``--host`` argument names (comma-separated), checked against the inventory."""
    pool = inventory.vllm_hosts if vllm_only else inventory.hosts
    if host is None or host == "":
        return list(pool)
    names = [h.strip() for h in host.split(",") if h.strip()]
    if not names:
        raise Exit(f"error: --host {host!r} names no host: give host names separated by "
                   "commas, e.g. --host " + ",".join(list(pool)[:2]), code=2)
    for name in names:
        if name not in pool:
            kind = "vLLM hosts" if vllm_only else "hosts"
            raise Exit(f"error: --host {name!r} is not one of the inventory's {kind}: "
                       + ", ".join(pool), code=2)
    return names


def per_host(name: str, hosts: Iterable[str], task_for: Callable[[str], Task[Any]], *,
             reserved: Iterable[str] = ()) -> Collection:
    """A collection ``name`` with one task per host (``deploy.wintermute``), names in
    ``reserved`` left out (they are the collection's own tasks)."""
    ns = Collection(name)
    skip = set(reserved)
    for host in hosts:
        if host not in skip:
            ns.add_task(task_for(host), name=host)
    return ns
