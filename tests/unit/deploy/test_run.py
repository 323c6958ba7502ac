"""Deploy and rollback per inventory host: the backup a rollback takes, snapshots, summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmfleet.deploy import backups
from vllmfleet.deploy.apply import Options, Outcome
from vllmfleet.deploy.run import restorable, summary
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Inventory
from vllmfleet.remote import (
    LocalAdapter,
)


def test_rollback_default_skips_the_copies_a_rollback_takes(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path / "host")
    adapter.put("/opt/x", b"1")
    store = tmp_path / "backups"

    def take(note: str) -> str:
        return backups.create(adapter, "h", ["/opt/x"], store=store, inventory_digest="d",
                              note=note).id

    first = take("before deploy of inventory x")
    take("before rollback to y")
    assert restorable(store, "h").id == first
    with pytest.raises(Exception, match="no backups of nobody"):
        restorable(store, "nobody")


def test_summary_names_the_failed_hosts() -> None:
    ok = Outcome(host="a", action="deploy", services=("vllm",), result="deployed",
                 changed=("/x",), backup="20260101T000000Z", seconds=1.25, connections=1)
    bad = Outcome(host="b", action="deploy", services=("vllm",), result="failed",
                  backup="20260101T000000Z", restored=True, seconds=3, connections=1,
                  report="deploy b: FAILED at restart: boom")
    lines = summary([ok, bad]).splitlines()
    assert lines[0].split() == ["HOST", "SERVICES", "RESULT", "CHANGED", "BACKUP", "TIME", "SSH"]
    assert lines[1].split() == ["a", "vllm", "deployed", "1", "20260101T000000Z", "1.2", "s",
                                "1"]
    assert "FAILED (rolled back)" in lines[2] and lines[-1] == "failed: b"
    ok.raise_for_failure()
    with pytest.raises(DeployError) as caught:
        bad.raise_for_failure()
    assert str(caught.value) == caught.value.report == bad.report
    assert caught.value.host == "b" and caught.value.backup == "20260101T000000Z"
    assert caught.value.restored is True


def test_a_snapshot_whose_prune_fails_still_returns_the_backup(
        reference: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmfleet.deploy.run import Access, snapshot

    def broken(store: Path, host: str, *, keep: int) -> list[str]:
        raise OSError(30, "Read-only file system", str(store / host))

    monkeypatch.setattr(backups, "prune", broken)
    said: list[str] = []
    backup, _ = snapshot(reference, "wintermute", options=Options(store=tmp_path / "backups"),
                         access=Access(factory=lambda h: LocalAdapter(host=h.name,
                                                                      root=tmp_path / "h")),
                         say=said.append)
    assert backup.path.is_dir()
    assert len(said) == 1 and "could not prune" in said[0] and "Read-only" in said[0]
