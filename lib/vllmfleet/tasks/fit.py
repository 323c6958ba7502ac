"""fit.<host>: find the largest max_model_len that really starts on a vLLM host and pin a
value that leaves KV room for its concurrency (see :mod:`vllmfleet.deploy.fit`).

``inv fit.wintermute --dry-run`` shows the steps and the planner's prediction, starting
nothing; ``inv fit.wintermute`` probes the host (each start a health-gated deploy, rolled
back on failure), prints what it tried, what vLLM answered and the inventory diff, and puts
the host back on the inventory's config; ``--apply`` writes the diff (comments and layout
kept) and deploys the fitted config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, per_host, user_errors
from vllmfleet.tasks.deploy import access, finish, options, say

_HELP = {
    "inventory": INVENTORY_HELP,
    "apply": "write the fitted values into the inventory (comments kept) and deploy them",
    "dry_run": "show the steps and the planner's prediction; start nothing",
    "force_unlock": "remove an existing deploy lock first (the holder is printed)",
}


def _fit(c: Context, name: str, *, inventory: str | None, apply: bool, dry_run: bool,
         force_unlock: bool) -> None:
    from vllmfleet.deploy import fit

    inv = load_inventory(c, inventory)
    if dry_run:
        with user_errors():
            print(fit.plan_only(inv, name))
        return
    acc, opts = access(c, inv), options(c, inv, force_unlock=force_unlock)
    with user_errors():
        result = fit.fit_host(inv, name, access=acc, options=opts, say=say, apply=apply)
    print(result.text)
    if not result.changes:
        print(f"{inv.path}: already fitted, nothing to change")
    elif result.applied is None:
        print(result.diff, end="")
        print(f"run `inv fit.{name} --apply` to write this and deploy it")
    else:
        print(result.diff, end="")
        finish([result.applied], action="fit")
        if not result.applied.ok:
            raise Exit(f"fit {name}: the fitted config did not deploy", code=1)


def host_task(name: str) -> Task[Any]:
    def body(c: Context, inventory: str | None = None, apply: bool = False,
             dry_run: bool = False, force_unlock: bool = False) -> None:
        _fit(c, name, inventory=inventory, apply=apply, dry_run=dry_run,
             force_unlock=force_unlock)

    body.__doc__ = (f"Find {name}'s largest max_model_len that starts and pin it "
                    "(--apply writes the inventory and deploys).")
    return Task(body, name=name, help=_HELP)


def collection(hosts: Sequence[str]) -> Collection:
    """``fit.<host>`` for each vLLM host in ``hosts``."""
    return per_host("fit", hosts, host_task)
