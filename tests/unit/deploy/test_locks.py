"""The per-host deploy lock when the host answers badly: a lock we created is never left
behind on the host by a deploy that then reports "nothing was changed, run it again"."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from vllmfleet.deploy import locks
from vllmfleet.errors import DeployError, HostError
from vllmfleet.remote import CommandResult, LocalAdapter, WindowsAdapter

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


def test_lock_is_exclusive_and_released_only_by_its_owner(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    path = "/opt/vllmfleet/" + locks.LOCK_NAME
    first = locks.acquire(adapter, path, owner="a", action="deploy", task="deploy.h")
    with pytest.raises(DeployError,
                       match=r"h: another deploy holds the lock .* a \(deploy\)") as caught:
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h")
    assert caught.value.host == "h"
    second = locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h",
                           force=True)
    assert second.broke is not None and second.broke.owner == "a"
    assert "now held by b" in first.release()
    assert second.release() == "" and adapter.read(path) is None
    assert not [p for p in (tmp_path / "opt" / "vllmfleet").iterdir()]  # no temp file left


def test_an_unreadable_lock_counts_as_stale(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    path = "/opt/vllmfleet/" + locks.LOCK_NAME
    adapter.put(path, b"garbage")
    with pytest.raises(DeployError, match="STALE") as caught:
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h")
    assert "inv deploy.h --force-unlock" in str(caught.value)


class WindowsWire:
    """A Windows host by SFTP files and PowerShell ``Move-Item`` (without -Force: exclusive)."""

    connection_count = 1

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.scripts: list[str] = []

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        script = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
        self.scripts.append(script)
        put = re.search(r"\$target = '([^']+)'\n\$tmp = '([^']+)'", script)
        if put:  # the adapter's atomic put: Move-Item -Force of the uploaded temp file
            self.files["/" + put[1]] = self.files.pop("/" + put[2])
        move = re.search(r"Move-Item -LiteralPath '([^']+)' -Destination '([^']+)'( -Force)?",
                         script)
        if move:
            src, dst, force = "/" + move[1], "/" + move[2], move[3]
            if dst in self.files and not force:
                return CommandResult(command=command, exit_code=1, stdout="",
                              stderr="Cannot create a file when that file already exists.")
            self.files[dst] = self.files.pop(src)
        return CommandResult(command=command, exit_code=0, stdout="", stderr="")

    def upload(self, path: str, content: bytes) -> None:
        self.files[path] = content

    def download(self, path: str) -> bytes | None:
        return self.files.get(path)

    def stat(self, path: str) -> int | None:
        return 0o644 if path in self.files else None

    def makedirs(self, path: str) -> None: ...

    def remove(self, path: str) -> None:
        self.files.pop(path, None)

    def home(self) -> str:
        return "/C:/Users/ops"

    def close(self) -> None: ...


def test_the_lock_on_windows_is_an_exclusive_move() -> None:
    wire = WindowsWire()
    adapter = WindowsAdapter(host="armitage", transport=wire, base_dir="C:/vllmfleet")
    path = locks.lock_path("C:/vllmfleet")
    held = locks.acquire(adapter, path, owner="a", action="deploy", task="deploy.armitage")
    assert any("Move-Item -LiteralPath 'C:/vllmfleet/.vllmfleet-deploy.lock." in s
               and "-Destination 'C:/vllmfleet/.vllmfleet-deploy.lock'" in s
               and "-Force" not in s.split("Move-Item -LiteralPath 'C:/vllmfleet/.vllmfleet-"
                                           "deploy.lock.")[1].splitlines()[0]
               for s in wire.scripts)
    with pytest.raises(DeployError, match="a \\(deploy\\)"):
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.armitage")
    assert held.release() == "" and list(wire.files) == []
