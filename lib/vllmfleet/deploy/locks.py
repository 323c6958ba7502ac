"""The per-host deploy lock: a small file ON the host that says who is deploying there.

``<base_dir>/.vllmfleet-deploy.lock`` holds JSON: owner (``user@machine pid N``), what they
run (``deploy``/``rollback``), a random token and the UTC time it was taken. It is created
atomically and exclusively: the JSON is first put (complete) under a unique temporary name
through the host adapter, then hard-linked (``ln``; ``Move-Item`` without ``-Force`` on
Windows; ``os.link`` for a local host) to the lock name, which fails when a lock exists. So
two deploys racing for one host never both win, and nobody ever reads a half-written lock.

A lock that exists is never broken silently: :func:`acquire` raises
:class:`~vllmfleet.errors.DeployError` naming the holder and how old the lock is; one older
than ``stale_after_s`` is called stale (its deploy probably died) and the message gives the
escape hatch, ``--force-unlock``, which removes it (and says whose it was) before locking.
A successful exclusive create is the proof the lock is ours (no re-read that could fail and
leave it behind); when the link command's answer is lost, a lock carrying our token is removed.
:meth:`HostLock.release` removes the lock only while it still carries our token.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from vllmfleet.errors import DeployError, HostError
from vllmfleet.remote import HostAdapter, random_token

LOCK_NAME = ".vllmfleet-deploy.lock"
DEFAULT_STALE_AFTER_S = 3600.0


def lock_path(base_dir: str) -> str:
    """Where the deploy lock of a host whose files live in ``base_dir`` is."""
    return f"{base_dir.rstrip('/')}/{LOCK_NAME}"


def default_owner() -> str:
    """``user@machine pid N``: enough to find the process that holds a lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _utc(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


@dataclass(frozen=True, kw_only=True)
class LockInfo:
    """What a lock file says."""

    owner: str
    action: str
    token: str
    created: str  # ISO 8601, UTC

    def to_bytes(self) -> bytes:
        return (json.dumps({"owner": self.owner, "action": self.action, "token": self.token,
                            "created": self.created}, indent=2) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> LockInfo:
        try:
            data = json.loads(raw.decode("utf-8"))
            return cls(owner=str(data["owner"]), action=str(data.get("action", "?")),
                       token=str(data["token"]), created=str(data["created"]))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return cls(owner=f"unknown (unreadable lock file: {raw[:60]!r})", action="?",
                       token="", created="")

    def age_s(self, now: datetime | None = None) -> float | None:
        try:
            taken = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError:
            return None
        if taken.tzinfo is None:
            return None
        return (_utc(now) - taken).total_seconds()

    def describe(self, now: datetime | None = None) -> str:
        age = self.age_s(now)
        when = (f"since {self.created} ({_human(age)} ago)" if age is not None
                else "since an unknown time")
        return f"{self.owner} ({self.action}) {when}"


def _human(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def read(adapter: HostAdapter, path: str) -> LockInfo | None:
    """The lock at ``path`` on the host, or None when there is none."""
    raw = adapter.read(path)
    return None if raw is None else LockInfo.parse(raw)


class HostLock:
    """A held deploy lock; :meth:`release` it (or use it as a context manager)."""

    def __init__(self, adapter: HostAdapter, path: str, info: LockInfo,
                 broke: LockInfo | None = None) -> None:
        self.adapter = adapter
        self.path = path
        self.info = info
        self.broke = broke  # the lock --force-unlock removed, if any
        self.released = False

    def release(self) -> str:
        """Remove the lock if it is still ours; return a warning ('' when all is well)."""
        if self.released:
            return ""
        self.released = True
        current = read(self.adapter, self.path)
        if current is None:
            return f"the deploy lock {self.path} had already been removed"
        if current.token != self.info.token:
            return (f"the deploy lock {self.path} is now held by {current.describe()} "
                    "(ours was force-unlocked); left it in place")
        self.adapter.remove(self.path)
        return ""

    def __enter__(self) -> HostLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_message(host: str, path: str, holder: LockInfo, *, task: str,
                 stale_after_s: float, now: datetime | None = None) -> str:
    age = holder.age_s(now)
    stale = age is None or age > stale_after_s
    text = f"{host}: another deploy holds the lock {path}: {holder.describe(now)}.\n"
    if stale:
        text += ("    it looks STALE (older than "
                 f"{_human(stale_after_s)}, or unreadable): its deploy probably died.\n"
                 "    fix: make sure no deploy is running on this host, then run "
                 f"`inv {task} --force-unlock` (it removes this lock and deploys)")
    else:
        text += ("    nothing was changed. fix: wait until that deploy finishes and run it "
                 "again; if it crashed, run "
                 f"`inv {task} --force-unlock` after checking no deploy is running")
    return text


def _remove_if_ours(adapter: HostAdapter, path: str, token: str) -> None:
    """Best effort: remove the lock at ``path`` if it carries ``token`` (never another's)."""
    with contextlib.suppress(HostError):
        holder = read(adapter, path)
        if holder is not None and holder.token == token:
            adapter.remove(path)


def acquire(adapter: HostAdapter, path: str, *, owner: str, action: str, task: str,
            force: bool = False, stale_after_s: float = DEFAULT_STALE_AFTER_S,
            now: datetime | None = None) -> HostLock:
    """Take the deploy lock at ``path`` or raise DeployError naming its holder.

    ``task`` is the command to suggest with ``--force-unlock`` (e.g. ``deploy.wintermute``).
    ``force`` removes an existing lock first (the returned lock's ``broke`` says whose).
    """
    info = LockInfo(owner=owner, action=action, token=random_token(),
                    created=_utc(now).isoformat(timespec="seconds").replace("+00:00", "Z"))
    broke = read(adapter, path) if force else None
    if broke is not None:
        adapter.remove(path)
    tmp = f"{path}.{info.token}.new"
    adapter.put(tmp, info.to_bytes(), mode=0o644)
    try:
        error = adapter.link_exclusive(tmp, path)
    except HostError:  # the link may have landed before its answer was lost
        _remove_if_ours(adapter, path, info.token)
        raise
    finally:
        with contextlib.suppress(HostError):
            adapter.remove(tmp)
    if not error:  # the exclusive create succeeded: the lock is ours, no re-read needed
        return HostLock(adapter, path, info, broke)
    holder = read(adapter, path)
    if holder is not None and holder.token == info.token:
        return HostLock(adapter, path, info, broke)
    if holder is None:
        raise HostError(f"could not create the deploy lock {path}: {error}; check that the SSH "
                        "user may write to that folder", host=adapter.host)
    raise DeployError(held_message(adapter.host, path, holder, task=task,
                                   stale_after_s=stale_after_s, now=now), host=adapter.host)
