"""The per-host deploy lock when the host answers badly: a lock we created is never left
behind on the host by a deploy that then reports "nothing was changed, run it again"."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmfleet.deploy import locks
from vllmfleet.errors import HostError
from vllmfleet.remote import LocalAdapter

PATH = "/opt/vllmfleet/" + locks.LOCK_NAME


class FlakyReads(LocalAdapter):
    """Reading the lock file fails the first ``failures`` times (a dropped connection)."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(host="h", root=root)
        self.failures = failures

    def read(self, remote_path: str) -> bytes | None:
        if remote_path == PATH and self.failures > 0:
            self.failures -= 1
            raise HostError("downloading the lock: the SSH connection was cut", host="h")
        return super().read(remote_path)


def test_a_failed_reread_after_taking_the_lock_leaves_no_lock(tmp_path: Path) -> None:
    adapter = FlakyReads(tmp_path, failures=1)
    try:
        held = locks.acquire(adapter, PATH, owner="a", action="deploy", task="deploy.h")
    except HostError:
        pass  # acceptable: but then the lock must be gone
    else:
        adapter.failures = 0  # the host answers again by the end of the deploy
        assert held.release() == ""
    assert not (tmp_path / "opt" / "vllmfleet" / locks.LOCK_NAME).exists()
    assert not list((tmp_path / "opt" / "vllmfleet").iterdir())  # no temp file either
    # and the rerun is not refused
    locks.acquire(adapter, PATH, owner="b", action="deploy", task="deploy.h").release()


class LinkLandsThenDrops(LocalAdapter):
    """The exclusive create happens on the host, but its answer is lost on the way back."""

    def link_exclusive(self, source: str, target: str) -> str:
        assert super().link_exclusive(source, target) == ""
        raise HostError("running a command: the SSH connection was cut", host="h")


class LinkDrops(LocalAdapter):
    """The exclusive-create command never gets an answer (nothing happened on the host)."""

    def link_exclusive(self, source: str, target: str) -> str:
        raise HostError("running a command: the SSH connection was cut", host="h")


def test_a_link_whose_answer_is_lost_removes_our_lock(tmp_path: Path) -> None:
    adapter = LinkLandsThenDrops(host="h", root=tmp_path)
    with pytest.raises(HostError, match="connection was cut"):
        locks.acquire(adapter, PATH, owner="a", action="deploy", task="deploy.h")
    assert adapter.read(PATH) is None
    assert not list((tmp_path / "opt" / "vllmfleet").iterdir())


def test_a_lost_link_answer_never_removes_someone_elses_lock(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    other = locks.acquire(adapter, PATH, owner="ann", action="deploy", task="deploy.h")
    with pytest.raises(HostError):
        locks.acquire(LinkDrops(host="h", root=tmp_path), PATH, owner="b", action="deploy",
                      task="deploy.h")
    current = locks.read(adapter, PATH)
    assert current is not None and current.owner == "ann"
    assert other.release() == ""
