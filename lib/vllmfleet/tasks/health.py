"""health: is the fleet healthy right now? A table, exit 1 when anything is unhealthy."""

from __future__ import annotations

import os

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, pick_hosts, user_errors
from vllmfleet.tasks.deploy import access
from vllmfleet.tasks.settings import settings


@task(help={
    "host": "only these hosts (comma-separated; default: all)",
    "local": "check the local fleet of `inv fleet.up` (its URLs and key; no SSH)",
    "no_ssh": "skip the GPU memory check (nvidia-smi over SSH)",
    "inventory": INVENTORY_HELP,
})
def health(c: Context, host: str | None = None, local: bool = False, no_ssh: bool = False,
           inventory: str | None = None) -> None:
    """Check vLLM /health and /v1/models, proxy readiness, one token per alias, GPU memory."""
    from vllmfleet import health as checks
    from vllmfleet import localfleet
    from vllmfleet.inventory import endpoints_of

    inv = load_inventory(c, inventory)
    names = pick_hosts(inv, host)
    with user_errors():
        if local:
            state = localfleet.status(settings(c).build_dir / "localfleet")
            if state is None:
                raise Exit("error: no local fleet is running; start one with `inv fleet.up`",
                           code=1)
            endpoints = state.state.endpoints()
            adapter = None
        else:
            endpoints = endpoints_of(
                inv, key=os.environ.get(inv.proxy.master_key_env) or None,
                backend_key=os.environ.get(inv.proxy.backend_key_env) or None)
            acc = access(c, inv)
            adapter = None if no_ssh else (lambda n: acc.adapter(inv, inv.hosts[n]))
        rows = checks.check_fleet(inv, names, endpoints, adapter=adapter)
    print(checks.format_table(rows))
    if not checks.healthy(rows):
        bad = sorted({r.host for r in rows if r.ok is False})
        raise Exit(f"unhealthy: {', '.join(bad)}", code=1)
