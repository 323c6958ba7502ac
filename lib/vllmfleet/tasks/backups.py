"""backups.*: snapshot hosts' files without deploying, list the store, verify checksums.

The store is ``vllmfleet.backups_dir`` (default ``backups/``): ``<host>/<UTC id>/`` with a
manifest of every file's remote path, sha256, size and mode. A deploy and a rollback each
take one first; ``backups.create`` takes one on demand (what ``make backup-configs`` was for).
"""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from vllmfleet.deploy import backups
from vllmfleet.errors import BackupError, FleetError
from vllmfleet.tables import table
from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, pick_hosts, user_errors
from vllmfleet.tasks.deploy import access, options, say
from vllmfleet.tasks.settings import settings

_INV = INVENTORY_HELP
_HOST = "only these hosts (comma-separated; default: all)"
_STORED = "only these inventory hosts (comma-separated; default: every host in the store)"


def _store(c: Context) -> Path:
    return settings(c).backups_dir


def _hosts(c: Context, store: Path, host: str | None, inventory: str | None) -> list[str]:
    """``--host`` checked against the inventory (exit 2 naming its hosts); without it, every
    host with backups in the store (also one no longer in the inventory)."""
    if host:
        return pick_hosts(load_inventory(c, inventory), host)
    return backups.stored_hosts(store)


@task(help={"host": _HOST, "inventory": _INV})
def create(c: Context, host: str | None = None, inventory: str | None = None) -> None:
    """Back up every host's deployed files as they are now (changes nothing on the hosts)."""
    from vllmfleet.deploy import run as deploy_run

    inv = load_inventory(c, inventory)
    acc, opts = access(c, inv), options(c, inv)
    failed = []
    for name in pick_hosts(inv, host):
        try:
            backup, connections = deploy_run.snapshot(inv, name, access=acc, options=opts,
                                                          say=say)
        except FleetError as exc:
            print(f"{name:<12} FAILED: {exc}")
            failed.append(name)
            continue
        present = sum(1 for f in backup.files if f.present)
        print(f"{name:<12} {backup.id}  {present} file(s), {len(backup.files) - present} "
              f"absent on the host  {backup.path}  ({connections} SSH connection(s))")
    if failed:
        raise Exit(f"backups.create failed for: {', '.join(failed)}", code=1)


@task(name="list", help={"host": _STORED, "inventory": _INV})
def list_(c: Context, host: str | None = None, inventory: str | None = None) -> None:
    """List the backups in the store, newest first per host."""
    store = _store(c)
    rows = []
    names = _hosts(c, store, host, inventory)
    with user_errors():
        for name in names:
            for backup_id in reversed(backups.backup_ids(store, name)):
                try:
                    b = backups.load(store, name, backup_id)
                    present = sum(1 for f in b.files if f.present)
                    rows.append((name, b.id, b.created, f"{present}/{len(b.files)}", b.note))
                except BackupError as exc:
                    rows.append((name, backup_id, "?", "?", f"UNUSABLE: {exc}".splitlines()[0]))
    if not rows:
        print(f"no backups in {store}" + (f" for {host}" if host else ""))
        return
    for line in table(rows, header=("HOST", "ID", "CREATED", "FILES", "NOTE"), rstrip=False):
        print(line)


@task(help={"host": _STORED, "inventory": _INV})
def verify(c: Context, host: str | None = None, inventory: str | None = None) -> None:
    """Check every backup's files against its manifest (sha256, size); exit 1 on damage."""
    store = _store(c)
    bad = good = 0
    names = _hosts(c, store, host, inventory)
    with user_errors():
        for name in names:
            for backup_id in backups.backup_ids(store, name):
                try:
                    backups.verify(backups.load(store, name, backup_id))
                except BackupError as exc:
                    bad += 1
                    print(f"CORRUPTED {name}/{backup_id}: {exc}")
                    continue
                good += 1
                print(f"ok        {name}/{backup_id}")
    print(f"{good} backup(s) ok, {bad} corrupted, in {store}")
    if bad:
        raise Exit(f"{bad} corrupted backup(s): a rollback refuses them; delete them or keep "
                   "them for forensics", code=1)
