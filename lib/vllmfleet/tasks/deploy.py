"""deploy.*: change hosts safely — ``deploy.<host>`` (one per inventory host), ``deploy.proxy``
and ``deploy.all`` (vLLM hosts in parallel, then the proxy).

Every deploy: validate → render → diff (``--dry-run`` prints it and stops) → lock → backup
→ push → restart → wait healthy → verify → unlock; a failure after the push restores the
backup and exits 1 with a report (log tail and diagnosis). The helpers here (settings,
access, options) are shared by the rollback, backups, health and logs tasks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from vllmfleet.errors import FleetError
from vllmfleet.inventory import Inventory, load
from vllmfleet.tasks._common import load_inventory, setting, user_errors

if TYPE_CHECKING:  # the deploy machinery (Fabric, httpx) loads when a task runs, not for --list
    from vllmfleet.deploy.apply import Options, Outcome
    from vllmfleet.deploy.run import Access, Sudo

#: This module's keys of the ``vllmfleet`` config namespace (tasks.py merges them in).
#: The numbers are None here (their values are in NUMBERS): invoke casts an INVOKE_VLLMFLEET_*
#: variable to the default's type and would raise a bare ValueError for ``ten``; with None it
#: passes the text on and :func:`options` checks it.
DEFAULTS: dict[str, Any] = {
    "backups_dir": "backups",      # the local backup store
    "backups_keep": None,          # backups kept per host (older ones are pruned): 10
    "known_hosts": None,           # host keys are checked against this (~/.ssh/known_hosts)
    "sudo": "proxy",               # sudo -n for file writes: proxy (host), all, none
    "lock_stale_s": None,          # a deploy lock older than this is reported as stale: 3600
    "log_lines": None,             # log lines in a failure report: 40
}


@dataclass(frozen=True)
class _Number:
    default: int | float
    low: float
    high: float
    whole: bool  # an int (backups, lines) or any number (seconds)
    want: str


NUMBERS: dict[str, _Number] = {
    "backups_keep": _Number(10, 1, 10_000, True, "a whole number of backups per host, 1 or more"),
    "lock_stale_s": _Number(3600.0, 1, 10 * 365 * 86400, False, "a number of seconds, 1 or more"),
    "log_lines": _Number(40, 1, 10_000, True, "a whole number of lines from 1 to 10000"),
}
RESERVED = ("all", "proxy")  # deploy.all / deploy.proxy: a host with such a name gets no task
_INV = "inventory file (default: vllmfleet.inventory, configs/fleet.yaml)"
_DRY = "print the unified diff against each host and change nothing"
_UNLOCK = ("remove an existing deploy lock first (only when you are sure no deploy is "
           "running there; the holder is printed)")


def conf(c: Context, key: str, given: Any = None) -> Any:
    """A setting of this module: argument, then ``c.config.vllmfleet``, then DEFAULTS."""
    value = setting(c, key, given)
    if value is None:
        return NUMBERS[key].default if key in NUMBERS else DEFAULTS.get(key)
    return value


def number(c: Context, key: str) -> float:
    """A numeric setting of NUMBERS, checked; a bad one exits 2 naming key, value, example."""
    spec, value = NUMBERS[key], conf(c, key)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(value)
        parsed = (int(value) if spec.whole and not isinstance(value, float)
                  else float(value))
        if spec.whole and isinstance(parsed, float):
            raise ValueError(value)
        if not spec.low <= parsed <= spec.high:  # NaN fails this too
            raise ValueError(value)
    except ValueError:
        example = int(spec.default)
        raise Exit(f"error: vllmfleet.{key}={value!r} is not {spec.want}: set e.g. "
                   f"`vllmfleet: {{{key}: {example}}}` in invoke.yaml or "
                   f"INVOKE_VLLMFLEET_{key.upper()}={example}", code=2) from None
    return parsed


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def access(c: Context, inventory: Inventory) -> Access:
    from vllmfleet.deploy.run import Access

    sudo = str(conf(c, "sudo")).lower()
    sudo = {"true": "all", "yes": "all", "false": "none", "no": "none"}.get(sudo, sudo)
    if sudo not in ("proxy", "all", "none"):
        raise Exit(f"error: vllmfleet.sudo={sudo!r}: use proxy (sudo -n on the proxy host "
                   "only), all or none", code=2)
    known = conf(c, "known_hosts")
    return Access(known_hosts=Path(known).expanduser() if known else None,
                  sudo=cast("Sudo", sudo), templates=inventory.path.parent / "templates")


def options(c: Context, inventory: Inventory, *, dry_run: bool = False,
            force_unlock: bool = False) -> Options:
    from vllmfleet.deploy.apply import Options

    env = inventory.proxy.master_key_env
    with user_errors():
        return Options(store=Path(conf(c, "backups_dir")).expanduser(),
                       keep=int(number(c, "backups_keep")), dry_run=dry_run,
                       force_unlock=force_unlock, master_key=os.environ.get(env) or None,
                       key_hint=f"set {env} to the proxy's master key (the inventory's "
                                "proxy.master_key_env names that variable)",
                       stale_after_s=number(c, "lock_stale_s"),
                       log_lines=int(number(c, "log_lines")))


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


def _deploy(c: Context, name: str | None, *, inventory: str | None, dry_run: bool,
            force_unlock: bool) -> None:
    from vllmfleet.deploy import run as deploy_run

    inv = load_inventory(c, inventory)
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


@task(name="all", help={"inventory": _INV, "dry_run": _DRY, "force_unlock": _UNLOCK})
def all_(c: Context, inventory: str | None = None, dry_run: bool = False,
         force_unlock: bool = False) -> None:
    """Deploy every vLLM host in parallel, then the proxy; a failed host does not stop others."""
    _deploy(c, None, inventory=inventory, dry_run=dry_run, force_unlock=force_unlock)


@task(help={"inventory": _INV, "dry_run": _DRY, "force_unlock": _UNLOCK})
def proxy(c: Context, inventory: str | None = None, dry_run: bool = False,
          force_unlock: bool = False) -> None:
    """Deploy the LiteLLM proxy: config, limits, hooks, unit; verify every alias answers."""
    _deploy(c, "proxy", inventory=inventory, dry_run=dry_run, force_unlock=force_unlock)


def host_task(name: str) -> Task[Any]:
    """``deploy.<name>``: everything the host gets (vLLM and/or the proxy)."""
    def body(c: Context, inventory: str | None = None, dry_run: bool = False,
             force_unlock: bool = False) -> None:
        _deploy(c, name, inventory=inventory, dry_run=dry_run, force_unlock=force_unlock)

    body.__doc__ = (f"Deploy {name}: backup, push, restart, wait healthy, verify; "
                    "roll back on failure.")
    return Task(body, name=name, help={"inventory": _INV, "dry_run": _DRY,
                                       "force_unlock": _UNLOCK})


def hosts_at_import(default: Path) -> list[str]:
    """The inventory's host names when ``tasks.py`` is imported, or [] if it cannot load.

    The inventory is the one a task would use: ``INVOKE_VLLMFLEET_INVENTORY``, else
    ``vllmfleet.inventory`` in the project's ``invoke.yaml``, else ``default``. A broken
    inventory must not break ``inv --list``: the per-host tasks are then simply absent and
    ``inv validate`` explains.
    """
    path = os.environ.get("INVOKE_VLLMFLEET_INVENTORY")
    project = default.parent.parent / "invoke.yaml"
    if not path and project.is_file():
        try:
            data = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
            path = str((data.get("vllmfleet") or {}).get("inventory") or "") or None
        except (OSError, yaml.YAMLError, AttributeError):
            path = None
    try:
        return list(load(Path(path).expanduser() if path else default).hosts)
    except (FleetError, OSError, ValueError):
        return []


def collection(hosts: Sequence[str]) -> Collection:
    ns = Collection("deploy")
    ns.add_task(all_, name="all")
    ns.add_task(proxy)
    for name in hosts:
        if name not in RESERVED:
            ns.add_task(host_task(name), name=name)
    return ns
