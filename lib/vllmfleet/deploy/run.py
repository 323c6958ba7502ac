"""Deploy, roll back and snapshot hosts of an inventory: what ``inv deploy.*``,
``inv rollback.*`` and ``inv backups.create`` call.

- :func:`deploy_host`: render the host's files (all of them, or one service's) and
  :func:`vllmfleet.deploy.apply.apply` them through one adapter (one SSH connection).
- :func:`deploy_all`: every vLLM host in parallel (a thread and a connection each), then the
  proxy. A failed host does not stop the others; :func:`summary` says which failed.
- :func:`rollback_host`: load a backup (``--to ID``, default the newest one taken before a
  deploy or by ``backups.create``; the safety copies a rollback takes first are skipped),
  verify every checksum, and apply its files like a deploy (backup first, health-gated,
  restored again if the old config does not come up). A bad id, a path that escapes the
  store or a corrupted backup is refused before anything on the host changes.
- :func:`snapshot`: back up a host's current files without changing anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vllmfleet import render
from vllmfleet.deploy import backups
from vllmfleet.deploy.apply import (
    NOTE_DEPLOY,
    NOTE_ROLLBACK,
    NOTE_SNAPSHOT,
    Options,
    Outcome,
    Say,
    apply,
)
from vllmfleet.deploy.backend_key import check_key, secret_lines
from vllmfleet.deploy.plan import SERVICE_OF_KIND, Desired, from_backup, from_render, services_of
from vllmfleet.errors import BackupError, DeployError, FleetError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.remote import HostAdapter, ServiceName, adapter_for
from vllmfleet.tables import table

Sudo = Literal["proxy", "all", "none"]


@dataclass(frozen=True, kw_only=True)
class Access:
    """How hosts are reached: host-key file, sudo, templates, or an adapter factory (tests,
    the rollback suite's local hosts)."""

    known_hosts: Path | None = None
    sudo: Sudo = "proxy"
    templates: Path | None = None
    factory: Callable[[Host], HostAdapter] | None = None

    def adapter(self, inventory: Inventory, host: Host) -> HostAdapter:
        if self.factory is not None:
            return self.factory(host)
        sudo = (host.platform in ("linux", "wsl")
                and (self.sudo == "all"
                     or (self.sudo == "proxy" and inventory.proxy.host == host.name)))
        return adapter_for(host, proxy=inventory.proxy, known_hosts=self.known_hosts, sudo=sudo)


def _host(inventory: Inventory, name: str) -> Host:
    host = inventory.hosts.get(name)
    if host is None:
        raise DeployError(f"host {name!r} is not in {inventory.path}; its hosts are: "
                          + ", ".join(inventory.hosts))
    return host


def _prefixed(say: Say, name: str) -> Say:
    return lambda message: say(f"[{name}] {message}")


def _not_attempted(name: str, action: Literal["deploy", "rollback"],
                   services: Sequence[ServiceName], exc: FleetError, task: str) -> Outcome:
    return Outcome(host=name, action=action, services=tuple(services), result="failed",
                   report=f"{action} {name}: FAILED: {exc}\n  nothing was changed on the host."
                          f"\n  fix: see the error above, then run `inv {task}` again")


def _key_missing(options: Options, desired: Sequence[Desired]) -> str:
    if "proxy" in services_of(desired) and not options.master_key and not options.dry_run:
        return ("the proxy cannot be verified without its master key: "
                + (options.key_hint or "set the variable the inventory's "
                   "proxy.master_key_env names"))
    return ""


def deploy_host(inventory: Inventory, name: str, *, access: Access, options: Options,
                say: Say, services: Sequence[ServiceName] | None = None,
                task: str | None = None) -> Outcome:
    """Deploy ``name``'s rendered files (of ``services`` only, when given)."""
    task = task or f"deploy.{name}"
    host = _host(inventory, name)
    desired = from_render(render.render_host(inventory, name, templates=access.templates),
                          services)
    if not desired:
        say(f"[{name}] nothing to deploy (a local host is started by `inv fleet.up`)")
        return Outcome(host=name, action="deploy", services=(), result="unchanged")
    missing = _key_missing(options, desired)
    if missing:
        return _not_attempted(name, "deploy", services_of(desired),
                              DeployError(missing, host=name), task)
    try:
        keys = [] if options.backend_key is None else secret_lines(
            inventory, host, check_key(options.backend_key,
                                       variable=inventory.proxy.backend_key_env),
            tuple(services_of(desired)))
        adapter = access.adapter(inventory, host)
    except FleetError as exc:
        return _not_attempted(name, "deploy", services_of(desired), exc, task)
    with adapter:
        return apply(inventory=inventory, host=host, adapter=adapter, desired=desired,
                     options=options, say=_prefixed(say, name), task=task,
                     note=f"{NOTE_DEPLOY} of inventory {inventory.digest[:12]}", secrets=keys)


def deploy_all(inventory: Inventory, *, access: Access, options: Options,
               say: Say) -> list[Outcome]:
    """vLLM hosts in parallel (one thread and one connection each), then the proxy."""
    render.render_all(inventory, templates=access.templates)  # any render error: nothing moves
    lock = threading.Lock()

    def locked_say(message: str) -> None:
        with lock:
            say(message)

    gpu_hosts = list(inventory.vllm_hosts)
    with ThreadPoolExecutor(max_workers=max(1, len(gpu_hosts))) as pool:
        outcomes = list(pool.map(
            lambda n: deploy_host(inventory, n, access=access, options=options, say=locked_say,
                                  services=("vllm",)), gpu_hosts))
    outcomes.append(deploy_host(inventory, inventory.proxy.host, access=access,
                                options=options, say=say, services=("proxy",),
                                task="deploy.proxy"))
    return outcomes


def restorable(store: Path, host: str) -> backups.Backup:
    """The newest backup of ``host`` not taken by a rollback (see the module docstring)."""
    ids = backups.backup_ids(store, host)
    for backup_id in reversed(ids):
        backup = backups.load(store, host, backup_id)
        if not backup.note.startswith(NOTE_ROLLBACK):
            return backup
    if ids:
        return backups.load(store, host, ids[-1])
    return backups.latest(store, host)  # raises: there are none


def rollback_host(inventory: Inventory, name: str, *, to: str | None, access: Access,
                  options: Options, say: Say) -> Outcome:
    """Put ``name``'s files back as backup ``to`` (default: see :func:`restorable`) holds."""
    task = f"rollback.{name}"
    host = _host(inventory, name)
    try:
        backup = (backups.load(options.store, name, to) if to is not None
                  else restorable(options.store, name))
        items = backups.restore_plan(backup)  # every checksum, before the host is touched
    except BackupError as exc:
        return _not_attempted(name, "rollback", (), exc, task)
    if not any(item.content is not None for item in items):
        others = ", ".join(i for i in reversed(backups.backup_ids(options.store, name))
                           if i != backup.id) or "none"
        return _not_attempted(name, "rollback", (), BackupError(
            f"backup {name}/{backup.id} holds no file (it was taken before the first deploy): "
            "rolling back to it would delete the config and leave nothing to start; pick "
            f"another with --to (backups of {name}: {others})", host=name, backup_id=backup.id),
            task)
    try:
        rendered = render.render_host(inventory, name, templates=access.templates)
        known = {f.remote_path: (SERVICE_OF_KIND[f.kind], f.kind) for f in rendered}
    except FleetError:
        known = {}
    desired = from_backup(items, known=known,
                          default="vllm" if host.vllm is not None else "proxy")
    missing = _key_missing(options, desired)
    if missing:
        return _not_attempted(name, "rollback", services_of(desired),
                              DeployError(missing, host=name), task)
    say(f"[{name}] rolling back to backup {backup.id} ({backup.note}; checksums verified)")
    try:
        adapter = access.adapter(inventory, host)
    except FleetError as exc:
        return _not_attempted(name, "rollback", services_of(desired), exc, task)
    with adapter:
        return apply(inventory=inventory, host=host, adapter=adapter, desired=desired,
                     options=options, say=_prefixed(say, name), action="rollback", task=task,
                     note=f"{NOTE_ROLLBACK} to {backup.id}")


def snapshot(inventory: Inventory, name: str, *, access: Access, options: Options,
             say: Say | None = None) -> tuple[backups.Backup, int]:
    """Back up ``name``'s deployable files as they are now; (backup, SSH connections).

    A failure to prune older backups afterwards is a warning through ``say``."""
    host = _host(inventory, name)
    paths = [f.remote_path for f in render.render_host(inventory, name,
                                                       templates=access.templates)]
    if not paths:
        raise BackupError(f"{name} has no deployable files to back up (a local host)", host=name)
    with access.adapter(inventory, host) as adapter:
        backup = backups.create(adapter, name, paths, store=options.store,
                                inventory_digest=inventory.digest,
                                note=f"{NOTE_SNAPSHOT} by {options.owner}",
                                secret_paths=[inventory.proxy.env_file])
        count = adapter.connection_count
    warning = backups.prune_or_warn(options.store, name, keep=options.keep)
    if warning and say is not None:
        say(f"warning: {warning}")
    return backup, count


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line per host: result, changed files, backup, seconds, SSH connections."""
    rows: list[tuple[str, ...]] = []
    for o in outcomes:
        result = o.result.upper() if not o.ok else o.result
        if o.result == "failed" and o.restored is not None:
            result += " (rolled back)" if o.restored else " (ROLLBACK FAILED)"
        rows.append((o.host, "+".join(o.services) or "-", result, str(len(o.changed)),
                     o.backup or "-", f"{o.seconds:.1f} s", str(o.connections)))
    lines = table(rows, header=("HOST", "SERVICES", "RESULT", "CHANGED", "BACKUP", "TIME", "SSH"))
    failed = [o.host for o in outcomes if not o.ok]
    lines.append(f"failed: {', '.join(failed)}" if failed else "all hosts ok")
    return "\n".join(lines)
