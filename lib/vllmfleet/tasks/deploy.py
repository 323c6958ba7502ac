"""deploy.*: change hosts safely — ``deploy.<host>`` (one per inventory host), ``deploy.proxy``
and ``deploy.all`` (vLLM hosts in parallel, then the proxy).

Every deploy: validate → render → diff (``--dry-run`` prints it and stops) → lock → backup
→ push → restart → wait healthy → verify → unlock; a failure after the push restores the
backup and exits 1 with a report (log tail and diagnosis). The helpers here (access,
options) are shared by the rollback, backups, health and logs tasks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import AmbiguousEnvVar, Exit, UncastableEnvVar, UnknownFileType
from invoke.tasks import Task, task

from vllmfleet.errors import FleetError
from vllmfleet.inventory import Inventory, key_hint, load
from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, per_host, user_errors
from vllmfleet.tasks.settings import cli_runtime_path, inventory_of, project_config, settings

if TYPE_CHECKING:  # the deploy machinery (Fabric, httpx) loads when a task runs, not for --list
    from vllmfleet.deploy.apply import Options, Outcome
    from vllmfleet.deploy.run import Access

RESERVED = ("all", "proxy")  # deploy.all / deploy.proxy: a host with such a name gets no task
_INV = INVENTORY_HELP
_DRY = "print the unified diff against each host and change nothing"
_UNLOCK = ("remove an existing deploy lock first (only when you are sure no deploy is "
           "running there; the holder is printed)")
_NOKEY = ("deploy although the backend key variable (proxy.backend_key_env) is unset: no key "
          "is installed and the hosts keep what they have (without one vLLM is open to the LAN)")
_HELP = {"inventory": _INV, "dry_run": _DRY, "force_unlock": _UNLOCK, "no_backend_key": _NOKEY}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def access(c: Context, inventory: Inventory) -> Access:
    """How hosts are reached: the ``known_hosts`` and ``sudo`` settings."""
    from vllmfleet.deploy.run import Access

    config = settings(c)
    return Access(known_hosts=config.known_hosts, sudo=config.sudo,
                  templates=inventory.path.parent / "templates")


def options(c: Context, inventory: Inventory, *, dry_run: bool = False,
            force_unlock: bool = False) -> Options:
    """How a deploy behaves: the arguments, the backup, lock and log settings."""
    from vllmfleet.deploy.apply import Options

    config, env = settings(c), inventory.proxy.master_key_env
    with user_errors():
        return Options(store=config.backups_dir, keep=config.backups_keep, dry_run=dry_run,
                       force_unlock=force_unlock, master_key=os.environ.get(env) or None,
                       backend_key=os.environ.get(inventory.proxy.backend_key_env) or None,
                       key_hint=key_hint(inventory),
                       stale_after_s=config.lock_stale_s, log_lines=config.log_lines)


def finish(outcomes: Sequence[Outcome], *, action: str) -> None:
    """Print diffs, reports and a summary; exit 1 when a host failed."""
    from vllmfleet.deploy.run import summary

    for o in outcomes:
        if o.result == "planned":
            print(o.report, end="")
        elif o.result == "failed":
            print(o.report)
    print(summary(outcomes))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        names = ", ".join(o.host + (" (rolled back)" if o.restored else
                                    " (ROLLBACK FAILED)" if o.restored is False else "")
                          for o in failed)
        raise Exit(f"{action} failed: {names}", code=1)


def backend_key_check(inv: Inventory, targets: Sequence[str], *, dry_run: bool,
                      no_backend_key: bool) -> str:
    """Refuse a real deploy without the backend key (the vLLM servers would be open to the
    LAN) unless ``--no-backend-key``; return the warning to say, or ""."""
    env = inv.proxy.backend_key_env
    if os.environ.get(env) or all(inv.hosts[t].platform == "local" for t in targets
                                  if t in inv.hosts):
        return ""
    why = (f"{env} is not set: the vLLM servers keep the key their hosts have, or run "
           "without --api-key (open to anyone on the LAN, past the proxy's limits)")
    fix = (f"export {env}=$(python -c \"import secrets; print(secrets.token_urlsafe(32))\") "
           "(keep it in your password manager; the same value for every deploy)")
    if not (dry_run or no_backend_key):
        raise Exit(f"deploy refused: {why}.\n  fix: {fix}\n  or pass --no-backend-key to "
                   "deploy without installing a key", code=2)
    return f"warning: {why}; to install one: {fix}"


def _deploy(c: Context, name: str | None, *, inventory: str | None, dry_run: bool,
            force_unlock: bool, no_backend_key: bool = False) -> None:
    from vllmfleet.deploy import run as deploy_run

    inv = load_inventory(c, inventory)
    targets = ([*inv.vllm_hosts, inv.proxy.host] if name is None
               else [inv.proxy.host] if name == "proxy" else [name])
    warning = backend_key_check(inv, targets, dry_run=dry_run, no_backend_key=no_backend_key)
    if warning:
        say(warning)
    acc, opts = access(c, inv), options(c, inv, dry_run=dry_run, force_unlock=force_unlock)
    with user_errors():
        if name is None:
            outcomes = deploy_run.deploy_all(inv, access=acc, options=opts, say=say)
        elif name == "proxy":
            outcomes = [deploy_run.deploy_host(inv, inv.proxy.host, access=acc, options=opts,
                                               say=say, services=("proxy",),
                                               task="deploy.proxy")]
        else:
            outcomes = [deploy_run.deploy_host(inv, name, access=acc, options=opts, say=say)]
    finish(outcomes, action="dry run" if dry_run else "deploy")


@task(name="all", help=_HELP)
def all_(c: Context, inventory: str | None = None, dry_run: bool = False,
         force_unlock: bool = False, no_backend_key: bool = False) -> None:
    """Deploy every vLLM host in parallel, then the proxy (backend key: hosts first, then proxy)."""
    _deploy(c, None, inventory=inventory, dry_run=dry_run, force_unlock=force_unlock,
            no_backend_key=no_backend_key)


@task(help=_HELP)
def proxy(c: Context, inventory: str | None = None, dry_run: bool = False,
          force_unlock: bool = False, no_backend_key: bool = False) -> None:
    """Deploy the LiteLLM proxy: config, limits, hooks, unit, backend key; verify every alias."""
    _deploy(c, "proxy", inventory=inventory, dry_run=dry_run, force_unlock=force_unlock,
            no_backend_key=no_backend_key)


def host_task(name: str) -> Task[Any]:
    """``deploy.<name>``: everything the host gets (vLLM and/or the proxy)."""
    def body(c: Context, inventory: str | None = None, dry_run: bool = False,
             force_unlock: bool = False, no_backend_key: bool = False) -> None:
        _deploy(c, name, inventory=inventory, dry_run=dry_run, force_unlock=force_unlock,
                no_backend_key=no_backend_key)

    body.__doc__ = (f"Deploy {name}: backup, push, restart, wait healthy, verify; "
                    "roll back on failure.")
    return Task(body, name=name, help=_HELP)


def hosts_at_import(root: Path, *, vllm_only: bool = False) -> list[str]:
    """The inventory's host names (with ``vllm_only``: the hosts that run vLLM) when
    ``tasks.py`` (in folder ``root``) is imported, or [] if it cannot load.

    The inventory is the one a task would use: the ``inventory`` setting as invoke loads it
    (``INVOKE_VLLMFLEET_INVENTORY``, ``inv -f FILE``, ``root``/invoke.yaml, ~/.invoke.yaml …).
    A broken inventory (or ``inventory`` setting) must not break ``inv --list``: the per-host
    tasks are then simply absent, and ``inv validate`` explains.
    """
    try:
        config = project_config(root, runtime_path=cli_runtime_path())
        inventory = load(inventory_of(config))
        return list(inventory.vllm_hosts if vllm_only else inventory.hosts)
    except (Exit, FleetError, OSError, ValueError, yaml.YAMLError, AmbiguousEnvVar,
            UncastableEnvVar, UnknownFileType):  # invoke reports a broken config file itself
        return []


def collection(hosts: Sequence[str]) -> Collection:
    ns = per_host("deploy", hosts, host_task, reserved=RESERVED)
    ns.add_task(all_, name="all")
    ns.add_task(proxy)
    return ns
