"""rollback.<host>: put a host's files back as a backup holds them, health-gated.

``inv rollback.wintermute`` uses the newest backup taken before a deploy (or by
``backups.create``); ``--to 20261122T120301Z`` names one (``inv backups.list`` lists them).
Every checksum is verified first: a bad or missing id, a path that escapes the store, or a
corrupted backup is refused with nothing changed. The rollback itself backs up the current
files first and is restored again if the old config does not come up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import Task

from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, per_host, user_errors
from vllmfleet.tasks.deploy import access, finish, options, say

_HELP = {
    "inventory": INVENTORY_HELP,
    "to": "the backup id (a UTC timestamp such as 20261122T120301Z; default: the newest "
          "backup taken before a deploy)",
    "force_unlock": "remove an existing deploy lock first (the holder is printed)",
}


def _rollback(c: Context, name: str, *, to: str | None, inventory: str | None,
              force_unlock: bool) -> None:
    from vllmfleet.deploy import run as deploy_run

    inv = load_inventory(c, inventory)
    acc, opts = access(c, inv), options(c, inv, force_unlock=force_unlock)
    with user_errors():
        outcome = deploy_run.rollback_host(inv, name, to=to, access=acc, options=opts, say=say)
    finish([outcome], action="rollback")


def host_task(name: str) -> Task[Any]:
    def body(c: Context, to: str | None = None, inventory: str | None = None,
             force_unlock: bool = False) -> None:
        _rollback(c, name, to=to, inventory=inventory, force_unlock=force_unlock)

    body.__doc__ = (f"Roll {name} back to a backup (default: the newest before a deploy), "
                    "health-gated.")
    return Task(body, name=name, help=_HELP)


def collection(hosts: Sequence[str]) -> Collection:
    return per_host("rollback", hosts, host_task)
