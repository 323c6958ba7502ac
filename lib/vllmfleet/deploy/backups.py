"""Backups of a host's files, taken before anything on the host changes.

Layout of the store (default ``backups/``)::

    backups/<host>/<id>/manifest.json
    backups/<host>/<id>/files/<remote path>      e.g. files/etc/litellm/config.yaml

``<id>`` is the UTC time of the backup, ``20261122T120301Z``. The manifest records, per file,
the remote path, whether it existed, and its sha256, size and mode, plus the inventory
digest and a note of what was deployed next. A file missing on the host is recorded as
``present: false``: restoring it means removing the file again.

:func:`create` downloads every file, writes the backup into a hidden ``.partial-…`` folder,
re-reads it from disk and checks every sha256, and only then renames it to its id: a backup
that exists is complete and verified. Files named in ``secret_paths`` (the proxy's env file)
are stored with mode 0600 and their contents never appear in logs or messages.

:func:`load` accepts only ids in the timestamp format that name a real folder inside the
store; anything else (``latest``, ``../x``, an absolute path, a symlink) is refused with a
:class:`~vllmfleet.errors.BackupError` that lists the ids there are.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from vllmfleet.errors import BackupError
from vllmfleet.inventory.names import HOST_NAME
from vllmfleet.remote import HostAdapter, RemoteFile, check_remote_path, sha256

log = logging.getLogger(__name__)

ID_FORMAT = "%Y%m%dT%H%M%SZ"
ID_PATTERN = re.compile(r"\d{8}T\d{6}Z")
ID_EXAMPLE = "20261122T120301Z"
HOST_PATTERN = HOST_NAME  # the inventory's one host-name rule
MANIFEST = "manifest.json"
FILES = "files"
FORMAT = 1
DEFAULT_STORE = Path("backups")


@dataclass(frozen=True, kw_only=True)
class BackupFile:
    """One file of a backup, as it was on the host (``present=False``: it did not exist)."""

    remote_path: str
    present: bool
    stored_as: str | None = None
    sha256: str | None = None
    size: int | None = None
    mode: int | None = None
    secret: bool = False


@dataclass(frozen=True, kw_only=True)
class Backup:
    """A verified backup in the store."""

    host: str
    id: str
    path: Path
    created: str
    inventory_digest: str
    note: str
    files: tuple[BackupFile, ...]


class RestoreItem(NamedTuple):
    """What to put back: the bytes and mode, or ``content=None`` to remove the file."""

    remote_path: str
    content: bytes | None
    mode: int | None


def _check_host(host: str) -> str:
    if not isinstance(host, str) or not HOST_PATTERN.fullmatch(host) or host in {".", ".."}:
        raise BackupError(f"host name {host!r} cannot name a backup folder: use a host name "
                          "from the inventory (lower-case letters, digits, '_', '-')",
                          host=host if isinstance(host, str) else None)
    return host


def _stored_as(remote_path: str) -> str:
    path = remote_path
    if path[1:2] == ":":  # C:/vllmfleet/x → files/C/vllmfleet/x
        path = path[0] + path[2:]
    return f"{FILES}/{path.lstrip('/')}"


def backup_ids(store: Path, host: str) -> list[str]:
    """The ids of ``host``'s backups, oldest first (real folders with a valid id only)."""
    folder = Path(store) / _check_host(host)
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if _valid_id(p.name) and p.is_dir() and not p.is_symlink())


def _valid_id(backup_id: object) -> bool:
    if not isinstance(backup_id, str) or not ID_PATTERN.fullmatch(backup_id):
        return False
    try:
        datetime.strptime(backup_id, ID_FORMAT)
    except ValueError:
        return False
    return True


def _available(store: Path, host: str) -> str:
    ids = backup_ids(store, host)
    if not ids:
        return f"there are no backups of {host} in {store}"
    return f"backups of {host} (newest first): " + ", ".join(reversed(ids))


def _bad_id(store: Path, host: str, backup_id: object, why: str) -> BackupError:
    return BackupError(
        f"backup id {backup_id!r} for host {host} refused: {why}.\n"
        f"    {_available(store, host)}\n"
        f"    fix: pass one of those ids (a UTC timestamp like {ID_EXAMPLE}), or leave the id "
        f"out to use the newest; `inv backups.list --host {host}` lists them",
        host=host, backup_id=backup_id if isinstance(backup_id, str) else None)


# --- create ---------------------------------------------------------------------------------

def create(adapter: HostAdapter, host: str, remote_paths: Iterable[str], *,
           store: Path = DEFAULT_STORE, inventory_digest: str, note: str,
           secret_paths: Iterable[str] = (), now: datetime | None = None) -> Backup:
    """Back up ``remote_paths`` of ``host`` (read through ``adapter``); verified on return.

    Nothing is written to the store until every file was read from the host; the backup
    appears under its id only after every stored file's sha256 was checked on disk.
    """
    _check_host(host)
    paths = list(dict.fromkeys(check_remote_path(host, p) for p in remote_paths))
    secret = {check_remote_path(host, p) for p in secret_paths}
    stored = [_stored_as(p) for p in paths]
    if len(set(stored)) != len(stored):
        raise BackupError(f"backup of {host}: two remote paths map to the same stored file "
                          f"({', '.join(paths)}); pass each file once", host=host)
    found: list[RemoteFile | None] = [adapter.read_file(p) for p in paths]
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    created = moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    host_dir = Path(store) / host
    if host_dir.is_symlink():
        raise BackupError(f"{host_dir} is a symbolic link: backups must be real folders "
                          "inside the store; remove the link", host=host)
    host_dir.mkdir(parents=True, exist_ok=True)
    backup_id = moment.strftime(ID_FORMAT)
    while (host_dir / backup_id).exists():  # two backups in one second: take the next one
        moment += timedelta(seconds=1)
        backup_id = moment.strftime(ID_FORMAT)

    files = []
    for path, where, remote in zip(paths, stored, found, strict=True):
        if remote is None:
            files.append(BackupFile(remote_path=path, present=False, secret=path in secret))
        else:
            files.append(BackupFile(remote_path=path, present=True, stored_as=where,
                                    sha256=sha256(remote.content), size=len(remote.content),
                                    mode=remote.mode, secret=path in secret))
    partial = host_dir / f".partial-{backup_id}-{secrets.token_hex(4)}"
    backup = Backup(host=host, id=backup_id, path=partial, created=created,
                    inventory_digest=inventory_digest, note=note, files=tuple(files))
    try:
        partial.mkdir(mode=0o700 if secret else 0o755)
        for entry, remote in zip(files, found, strict=True):
            if remote is not None and entry.stored_as is not None:
                _write(partial / entry.stored_as, remote.content,
                       mode=0o600 if entry.secret else 0o644)
        _write(partial / MANIFEST, (json.dumps(_manifest(backup), indent=2) + "\n").encode(),
               mode=0o644)
        _read_verified(_load_manifest(partial, host=host, backup_id=backup_id))
        final = host_dir / backup_id
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    absent = sum(1 for f in files if not f.present)
    log.info("backup %s/%s: %d file(s) saved, %d absent on the host, verified", host, backup_id,
             len(files) - absent, absent)
    return replace(backup, path=final)


def _write(path: Path, content: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)  # O_CREAT's mode is filtered by the umask


def _manifest(backup: Backup) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "host": backup.host,
        "id": backup.id,
        "created": backup.created,
        "inventory_digest": backup.inventory_digest,
        "note": backup.note,
        "files": [
            {"remote_path": f.remote_path, "present": f.present, "stored_as": f.stored_as,
             "sha256": f.sha256, "size": f.size,
             "mode": None if f.mode is None else f"{f.mode:04o}", "secret": f.secret}
            for f in backup.files
        ],
    }


# --- load / list ----------------------------------------------------------------------------

def _load_manifest(folder: Path, *, host: str, backup_id: str) -> Backup:
    where = folder / MANIFEST
    fix = "this backup cannot be used; pick another one or delete its folder"
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"backup {host}/{backup_id} has no {MANIFEST} ({where}): {fix}",
                          host=host, backup_id=backup_id) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"backup {host}/{backup_id}: {where} is unreadable ({exc}): {fix}",
                          host=host, backup_id=backup_id) from None
    try:
        if data["format"] != FORMAT or data["host"] != host or data["id"] != backup_id:
            raise BackupError(f"backup {host}/{backup_id}: {where} describes host "
                              f"{data.get('host')!r} id {data.get('id')!r} (format "
                              f"{data.get('format')!r}), not this folder: {fix}",
                              host=host, backup_id=backup_id)
        files = tuple(_file_entry(host, backup_id, item) for item in data["files"])
        return Backup(host=host, id=backup_id, path=folder, created=str(data["created"]),
                      inventory_digest=str(data["inventory_digest"]), note=str(data["note"]),
                      files=files)
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"backup {host}/{backup_id}: {where} is not a vllmfleet manifest "
                          f"({type(exc).__name__}: {exc}): {fix}",
                          host=host, backup_id=backup_id) from None


def _file_entry(host: str, backup_id: str, item: dict[str, Any]) -> BackupFile:
    present = bool(item["present"])
    remote_path = str(item["remote_path"])
    stored_as = item.get("stored_as")
    if present and stored_as != _stored_as(check_remote_path(host, remote_path)):
        raise BackupError(f"backup {host}/{backup_id}: the manifest stores {remote_path} as "
                          f"{stored_as!r}, outside {FILES}/ or not where it belongs; refusing "
                          "to read it (the manifest was edited or is damaged)",
                          host=host, backup_id=backup_id)
    mode = item.get("mode")
    return BackupFile(remote_path=remote_path, present=present,
                      stored_as=stored_as if present else None,
                      sha256=str(item["sha256"]) if present else None,
                      size=int(item["size"]) if present else None,
                      mode=int(mode, 8) if present and mode is not None else None,
                      secret=bool(item.get("secret", False)))


def load(store: Path, host: str, backup_id: str) -> Backup:
    """The backup ``backup_id`` of ``host``; refuses bad ids, escapes, symlinks, a missing id."""
    store = Path(store)
    _check_host(host)
    if not isinstance(backup_id, str) or not backup_id:
        raise _bad_id(store, host, backup_id, "no id given")
    if "/" in backup_id or "\\" in backup_id or ".." in backup_id or os.path.isabs(backup_id):
        raise _bad_id(store, host, backup_id,
                      "an id is the name of a backup folder, not a path")
    if backup_id.lower() in {"latest", "newest", "last", "head"}:
        raise _bad_id(store, host, backup_id, f"{backup_id!r} is not an id")
    if not _valid_id(backup_id):
        raise _bad_id(store, host, backup_id,
                      f"ids are UTC timestamps in the form {ID_EXAMPLE} (YYYYMMDDTHHMMSSZ)")
    host_dir = store / host
    folder = host_dir / backup_id
    if host_dir.is_symlink() or folder.is_symlink():
        link = host_dir if host_dir.is_symlink() else folder
        raise _bad_id(store, host, backup_id,
                      f"{link} is a symbolic link; backups must be real folders inside the "
                      f"store {store} (remove the link)")
    try:
        inside = folder.resolve(strict=False).is_relative_to(store.resolve(strict=False))
    except OSError:
        inside = False
    if not inside:
        raise _bad_id(store, host, backup_id, f"{folder} is outside the store {store}")
    if not folder.is_dir():
        raise _bad_id(store, host, backup_id, f"there is no such backup in {store}")
    return _load_manifest(folder, host=host, backup_id=backup_id)


def latest(store: Path, host: str) -> Backup:
    """The newest backup of ``host``."""
    ids = backup_ids(Path(store), host)
    if not ids:
        raise BackupError(f"there are no backups of {host} in {store}: deploy once (it backs "
                          f"up first) or run `inv backups.create --host {host}`", host=host)
    return load(Path(store), host, ids[-1])


def stored_hosts(store: Path = DEFAULT_STORE) -> list[str]:
    """The hosts that have a folder in ``store``, sorted (none when it does not exist)."""
    store = Path(store)
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir()
                  if p.is_dir() and not p.is_symlink() and HOST_PATTERN.fullmatch(p.name))


def list_backups(store: Path = DEFAULT_STORE, host: str | None = None) -> list[Backup]:
    """Every backup in ``store`` (or only ``host``'s), by host, oldest first."""
    store = Path(store)
    hosts = [_check_host(host)] if host is not None else stored_hosts(store)
    return [load(store, name, backup_id) for name in hosts for backup_id in
            backup_ids(store, name)]


# --- verify / restore / prune ---------------------------------------------------------------

def _read_verified(backup: Backup) -> list[RestoreItem]:
    items = []
    for entry in backup.files:
        if not entry.present or entry.stored_as is None:
            items.append(RestoreItem(entry.remote_path, None, None))
            continue
        path = backup.path / entry.stored_as
        name = f"{entry.stored_as} (of {entry.remote_path})"
        problem = ""
        data = b""
        if path.is_symlink() or not path.resolve().is_relative_to(backup.path.resolve()):
            problem = "is a symbolic link or lies outside the backup"
        else:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                problem = "is missing"
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror or exc})"
        if not problem and (len(data) != entry.size or sha256(data) != entry.sha256):
            problem = (f"has changed: {len(data)} bytes with sha256 {sha256(data)[:16]}…, the "
                       f"manifest says {entry.size} bytes with sha256 {str(entry.sha256)[:16]}…")
        if problem:
            others = [i for i in backup_ids(backup.path.parent.parent, backup.host)
                      if i != backup.id]
            raise BackupError(
                f"backup {backup.host}/{backup.id} is corrupted: {name} {problem}.\n"
                f"    it was not used and nothing was restored; pick another backup"
                + (f" ({', '.join(reversed(others))})" if others else "")
                + f" or delete {backup.path}", host=backup.host, backup_id=backup.id)
        items.append(RestoreItem(entry.remote_path, data, entry.mode))
    return items


def verify(backup: Backup) -> None:
    """Check every stored file against the manifest; raise BackupError naming a bad one."""
    _read_verified(backup)


def restore_plan(backup: Backup) -> list[RestoreItem]:
    """What a rollback puts back, after verifying: (remote path, bytes or None, mode)."""
    return _read_verified(backup)


def prune(store: Path, host: str, *, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` backups of ``host``; return the deleted ids."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise BackupError(f"keep={keep!r}: keep at least 1 backup per host (the newest is what "
                          "a rollback uses); set vllmfleet.backups_keep in invoke.yaml to 1 "
                          "or more", host=host)
    ids = backup_ids(Path(store), host)
    doomed = ids[:-keep]
    for backup_id in doomed:
        shutil.rmtree(Path(store) / host / backup_id)
        log.info("pruned backup %s/%s", host, backup_id)
    return doomed


def prune_or_warn(store: Path, host: str, *, keep: int) -> str:
    """:func:`prune` after a successful deploy or snapshot: a failure is a warning ('' if
    none), never an error: the host's change and its backup already happened."""
    try:
        prune(store, host, keep=keep)
    except OSError as exc:
        return (f"could not prune old backups of {host} in {store} ({exc}); the {host} change "
                f"and its backup are fine; delete old backups there by hand (keep {keep})")
    return ""
