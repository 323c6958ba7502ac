"""Lock staleness by age, in-process (a LocalAdapter and a fixed clock): a lock older than
``stale_after_s`` is called stale with the --force-unlock fix; a younger one says wait. Before
this it was tested only over sshd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vllmfleet.deploy import locks
from vllmfleet.errors import DeployError
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
