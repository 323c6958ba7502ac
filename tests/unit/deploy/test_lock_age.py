"""Lock staleness by age, in-process (a LocalAdapter and a fixed clock): a lock older than
``stale_after_s`` is called stale with the --force-unlock fix; a younger one says wait. Before
this it was tested only over sshd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vllmfleet.deploy import locks
from vllmfleet.errors import DeployError, HostError
from vllmfleet.remote import LocalAdapter

PATH = "/opt/vllmfleet/" + locks.LOCK_NAME
TAKEN = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
HOUR = 3600.0


def held(tmp_path: Path, *, age_s: float, stale_after_s: float) -> str:
    adapter = LocalAdapter(host="h", root=tmp_path)
    locks.acquire(adapter, PATH, owner="alice@box", action="deploy", task="deploy.h", now=TAKEN)
    with pytest.raises(DeployError) as caught:
        locks.acquire(adapter, PATH, owner="bob@box", action="deploy", task="deploy.h",
                      stale_after_s=stale_after_s, now=TAKEN + timedelta(seconds=age_s))
    return str(caught.value)


@pytest.mark.parametrize(("age_s", "stale_after_s"), [(HOUR + 1, HOUR), (2 * HOUR, HOUR),
                                                      (61, 60), (30 * 86400, HOUR)])
def test_an_old_lock_is_stale(tmp_path: Path, age_s: float, stale_after_s: float) -> None:
    message = held(tmp_path, age_s=age_s, stale_after_s=stale_after_s)
    assert "looks STALE" in message and "inv deploy.h --force-unlock" in message
    assert "alice@box (deploy) since 2026-12-01T12:00:00Z" in message


@pytest.mark.parametrize(("age_s", "stale_after_s"), [(0, HOUR), (HOUR - 1, HOUR), (HOUR, HOUR),
                                                      (59, 60), (-30, HOUR)])
def test_a_young_lock_says_wait(tmp_path: Path, age_s: float, stale_after_s: float) -> None:
    message = held(tmp_path, age_s=age_s, stale_after_s=stale_after_s)
    assert "STALE" not in message and "wait until that deploy finishes" in message


@pytest.mark.parametrize(("age_s", "shown"), [(90, "90 s ago"), (30 * 60, "30 min ago"),
                                              (3 * HOUR, "3.0 h ago")])
def test_the_age_is_said_in_human_units(tmp_path: Path, age_s: float, shown: str) -> None:
    assert shown in held(tmp_path, age_s=age_s, stale_after_s=10 * HOUR)


@pytest.mark.parametrize("created", ["", "yesterday", "2026-12-01T12:00:00"])
def test_a_lock_without_a_usable_time_is_stale(tmp_path: Path, created: str) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    info = locks.LockInfo(owner="alice", action="deploy", token="t", created=created)
    adapter.put(PATH, info.to_bytes())
    with pytest.raises(DeployError, match="looks STALE"):
        locks.acquire(adapter, PATH, owner="bob", action="deploy", task="deploy.h",
                      stale_after_s=10 * 365 * 86400.0, now=TAKEN)


@pytest.mark.parametrize(("age_s", "shown"), [(0, "(0 s ago)"), (119, "(119 s ago)"),
                                              (120, "(2 min ago)"), (3000, "(50 min ago)"),
                                              (7199, "(120 min ago)"), (7200, "(2.0 h ago)"),
                                              (3_600_000, "(1000.0 h ago)")])
def test_the_age_units_switch_at_two_minutes_and_two_hours(tmp_path: Path, age_s: float,
                                                           shown: str) -> None:
    assert shown in held(tmp_path, age_s=age_s, stale_after_s=10 * 365 * 86400.0)


def test_the_lock_file_is_world_readable_json_with_every_field(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    lock = locks.acquire(adapter, PATH, owner="alice@box", action="rollback", task="deploy.h",
                         now=TAKEN)
    on_disk = tmp_path / PATH.lstrip("/")
    assert on_disk.stat().st_mode & 0o777 == 0o644  # anyone on the host can see who holds it
    assert locks.LockInfo.parse(on_disk.read_bytes()) == lock.info
    assert lock.info.created == "2026-12-01T12:00:00Z" and lock.info.action == "rollback"


@pytest.mark.parametrize(("raw", "described"), [
    (b"garbage", "unknown (unreadable lock file: b'garbage') (?) since an unknown time"),
    (b'{"owner": "alice", "token": "t", "created": "2026-12-01T12:00:00Z"}',
     "alice (?) since 2026-12-01T12:00:00Z"),
    (b"\xff\xfe", "unknown (unreadable lock file: b'\\xff\\xfe') (?)"),
])
def test_a_lock_file_read_back_is_described_as_it_can_be(raw: bytes, described: str) -> None:
    info = locks.LockInfo.parse(raw)
    assert described in info.describe(TAKEN)
    assert info.token == ("t" if b"token" in raw else "")


class LostLinkAnswer(LocalAdapter):
    """The exclusive link happens, but its answer says it failed (a reply lost in transit)."""

    def link_exclusive(self, source: str, target: str) -> str:
        super().link_exclusive(source, target)
        return "connection reset"


def test_a_link_reported_failed_that_made_our_lock_is_ours(tmp_path: Path) -> None:
    adapter = LostLinkAnswer(host="h", root=tmp_path)
    LocalAdapter(host="h", root=tmp_path).put(PATH, locks.LockInfo(
        owner="old", action="deploy", token="o", created="").to_bytes())
    lock = locks.acquire(adapter, PATH, owner="bob", action="deploy", task="deploy.h",
                         force=True, now=TAKEN)
    assert (lock.adapter, lock.path, lock.info.owner) == (adapter, PATH, "bob")
    assert lock.broke is not None and lock.broke.owner == "old"
    assert lock.release() == "" and adapter.read(PATH) is None


class NoLink(LocalAdapter):
    def link_exclusive(self, source: str, target: str) -> str:
        return "Permission denied"


def test_a_lock_that_cannot_be_created_says_why_and_where(tmp_path: Path) -> None:
    with pytest.raises(HostError) as caught:
        locks.acquire(NoLink(host="h", root=tmp_path), PATH, owner="bob", action="deploy",
                      task="deploy.h")
    assert caught.value.host == "h"
    assert f"could not create the deploy lock {PATH}: Permission denied" in str(caught.value)
