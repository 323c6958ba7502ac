"""Backups: what lands in the store, what is refused, and that nothing is lost.

The host is a ``local`` adapter over a temp folder (no SSH); the same flow over real SSH is
in tests/integration/test_remote_sshd.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import run_inv
from vllmfleet.deploy import backups
from vllmfleet.errors import BackupError, HostError
from vllmfleet.inventory import SSH, Host
from vllmfleet.remote import LocalAdapter, adapter_for

CONFIG = "/etc/litellm/config.yaml"
ENV = "/etc/litellm/litellm.env"
MISSING = "/etc/litellm/vllmfleet_hooks.py"
SECRET = b"LITELLM_MASTER_KEY=sk-do-not-log-me\n"
T0 = datetime(2026, 11, 22, 12, 3, 1, tzinfo=UTC)


@pytest.fixture
def host(tmp_path: Path) -> LocalAdapter:
    adapter = adapter_for(Host(name="motoko", address="127.0.0.1", platform="local",
                               ssh=SSH(user="ops")), local_root=tmp_path / "hosts")
    assert isinstance(adapter, LocalAdapter)
    adapter.put(CONFIG, b"model_list: []\n", mode=0o640)
    adapter.put(ENV, SECRET, mode=0o600)
    return adapter


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def make(host: LocalAdapter, store: Path, *, now: datetime = T0) -> backups.Backup:
    return backups.create(host, "motoko", [CONFIG, ENV, MISSING], store=store,
                          inventory_digest="d" * 64, note="deploy of config v2",
                          secret_paths=[ENV], now=now)


def test_create_stores_every_file_as_it_was_and_a_manifest(host: LocalAdapter,
                                                           store: Path) -> None:
    backup = make(host, store)
    assert backup.id == "20261122T120301Z"
    assert backup.path == store / "motoko" / "20261122T120301Z"
    assert (backup.path / "files/etc/litellm/config.yaml").read_bytes() == b"model_list: []\n"
    assert (backup.path / "files/etc/litellm/litellm.env").read_bytes() == SECRET
    manifest = json.loads((backup.path / "manifest.json").read_text())
    assert manifest["host"] == "motoko" and manifest["id"] == "20261122T120301Z"
    assert manifest["created"] == "2026-11-22T12:03:01Z"
    assert manifest["inventory_digest"] == "d" * 64
    assert manifest["note"] == "deploy of config v2"
    by_path = {f["remote_path"]: f for f in manifest["files"]}
    assert by_path[CONFIG] == {
        "remote_path": CONFIG, "present": True, "stored_as": "files/etc/litellm/config.yaml",
        "sha256": hashlib.sha256(b"model_list: []\n").hexdigest(),
        "size": 15, "mode": "0640", "secret": False}
    assert by_path[ENV]["secret"] is True and by_path[ENV]["mode"] == "0600"
    assert by_path[MISSING] == {"remote_path": MISSING, "present": False, "stored_as": None,
                                "sha256": None, "size": None, "mode": None, "secret": False}
    assert [p.name for p in (store / "motoko").iterdir()] == ["20261122T120301Z"]  # no partial


def test_secret_file_is_0600_and_never_logged(host: LocalAdapter, store: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backup = make(host, store)
    stored = backup.path / "files/etc/litellm/litellm.env"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert backup.path.stat().st_mode & 0o777 == 0o700
    assert "sk-do-not-log-me" not in caplog.text
    assert "backup motoko/20261122T120301Z: 2 file(s) saved, 1 absent" in caplog.text


def test_restore_plan_gives_back_the_bytes_modes_and_absences(host: LocalAdapter,
                                                              store: Path) -> None:
    backup = make(host, store)
    plan = backups.restore_plan(backups.load(store, "motoko", backup.id))
    assert plan == [(CONFIG, b"model_list: []\n", 0o640), (ENV, SECRET, 0o600),
                    (MISSING, None, None)]


def test_list_load_and_latest(host: LocalAdapter, store: Path) -> None:
    first = make(host, store)
    second = make(host, store, now=datetime(2026, 11, 23, tzinfo=UTC))
    assert [b.id for b in backups.list_backups(store)] == [first.id, second.id]
    assert [b.id for b in backups.list_backups(store, "motoko")] == [first.id, second.id]
    assert backups.list_backups(store, "armitage") == []
    assert backups.latest(store, "motoko").id == "20261123T000000Z"
    loaded = backups.load(store, "motoko", first.id)
    assert loaded == first


def test_two_backups_in_one_second_get_distinct_ids(host: LocalAdapter, store: Path) -> None:
    ids = [make(host, store).id for _ in range(3)]
    assert ids == ["20261122T120301Z", "20261122T120302Z", "20261122T120303Z"]


def test_failed_read_leaves_nothing_in_the_store(host: LocalAdapter, store: Path) -> None:
    with pytest.raises(HostError, match="refusing remote path 'relative'"):
        backups.create(host, "motoko", [CONFIG, "relative"], store=store,
                       inventory_digest="x", note="")
    assert not (store / "motoko").exists() or list((store / "motoko").iterdir()) == []


@pytest.mark.parametrize(("bad", "why"), [
    ("../x", "not a path"),
    ("latest", "'latest' is not an id"),
    ("2026-11-22", "YYYYMMDDTHHMMSSZ"),
    ("/etc/passwd", "not a path"),
    ("20261399T999999Z", "YYYYMMDDTHHMMSSZ"),
    ("20261122T120301Z/../../..", "not a path"),
    ("", "no id given"),
])
def test_bad_ids_are_refused_with_the_available_ids(host: LocalAdapter, store: Path,
                                                    bad: str, why: str) -> None:
    good = make(host, store)
    with pytest.raises(BackupError) as caught:
        backups.load(store, "motoko", bad)
    message = str(caught.value)
    assert f"backup id {bad!r} for host motoko refused" in message
    assert why in message
    assert f"backups of motoko (newest first): {good.id}" in message
    assert "inv backups.list --host motoko" in message
    assert (caught.value.host, caught.value.backup_id) == ("motoko", bad)


def test_a_symlink_escaping_the_store_is_refused(host: LocalAdapter, store: Path,
                                                 tmp_path: Path) -> None:
    good = make(host, store)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "manifest.json").write_text((good.path / "manifest.json").read_text()
                                           .replace(good.id, "20250101T000000Z"))
    (store / "motoko" / "20250101T000000Z").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BackupError, match="is a symbolic link; backups must be real folders"):
        backups.load(store, "motoko", "20250101T000000Z")
    assert [b.id for b in backups.list_backups(store)] == [good.id]  # not listed either


def test_a_missing_id_lists_what_there_is(host: LocalAdapter, store: Path) -> None:
    good = make(host, store)
    with pytest.raises(BackupError, match=f"no such backup(.|\n)*newest first\\): {good.id}"):
        backups.load(store, "motoko", "20200101T000000Z")
    with pytest.raises(BackupError, match="there are no backups of armitage") as caught:
        backups.load(store, "armitage", "20200101T000000Z")
    assert (caught.value.host, caught.value.backup_id) == ("armitage", "20200101T000000Z")
    with pytest.raises(BackupError, match="there are no backups of armitage") as caught:
        backups.latest(store, "armitage")
    assert (caught.value.host, caught.value.backup_id) == ("armitage", None)


def test_a_bad_host_name_is_refused(store: Path) -> None:
    with pytest.raises(BackupError, match=r"host name '\.\./etc' cannot name a backup folder"):
        backups.load(store, "../etc", "20261122T120301Z")


def test_a_corrupted_file_is_refused_and_named(host: LocalAdapter, store: Path) -> None:
    older = make(host, store)
    backup = make(host, store, now=datetime(2026, 11, 23, tzinfo=UTC))
    (backup.path / "files/etc/litellm/config.yaml").write_bytes(b"model_list: [evil]\n")
    for check in (backups.verify, backups.restore_plan):
        with pytest.raises(BackupError) as caught:
            check(backups.load(store, "motoko", backup.id))
        message = str(caught.value)
        assert f"backup motoko/{backup.id} is corrupted: files/etc/litellm/config.yaml " \
               f"(of {CONFIG}) has changed" in message
        assert f"pick another backup ({older.id})" in message
        assert (caught.value.host, caught.value.backup_id) == ("motoko", backup.id)
    backups.verify(older)


def test_a_deleted_file_and_a_doctored_manifest_are_refused(host: LocalAdapter,
                                                             store: Path) -> None:
    backup = make(host, store)
    (backup.path / "files/etc/litellm/litellm.env").unlink()
    with pytest.raises(BackupError, match=re.escape(
            "litellm.env (of /etc/litellm/litellm.env) is missing")):
        backups.verify(backup)
    manifest = json.loads((backup.path / "manifest.json").read_text())
    manifest["files"][0]["stored_as"] = "../../../../etc/passwd"
    (backup.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="outside files/ or not where it belongs") as caught:
        backups.load(store, "motoko", backup.id)
    assert (caught.value.host, caught.value.backup_id) == ("motoko", backup.id)
    (backup.path / "manifest.json").write_text("{not json")
    with pytest.raises(BackupError, match=r"manifest\.json is unreadable"):
        backups.load(store, "motoko", backup.id)


def test_prune_keeps_the_newest(host: LocalAdapter, store: Path) -> None:
    made = [make(host, store, now=datetime(2026, 11, day, tzinfo=UTC)).id
            for day in (20, 21, 22, 23)]
    assert backups.prune(store, "motoko", keep=2) == made[:2]
    assert backups.backup_ids(store, "motoko") == made[2:]
    assert backups.prune(store, "motoko", keep=5) == []
    with pytest.raises(BackupError, match="keep=0: keep at least 1 backup"):
        backups.prune(store, "motoko", keep=0)
    assert backups.backup_ids(store, "motoko") == made[2:]


def test_create_verifies_what_it_wrote_before_returning(host: LocalAdapter, store: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = backups._write

    def flaky_disk(path: Path, content: bytes, *, mode: int) -> None:
        real_write(path, content.replace(b"model_list", b"model_lost"), mode=mode)

    monkeypatch.setattr(backups, "_write", flaky_disk)
    with pytest.raises(BackupError, match=r"files/etc/litellm/config\.yaml .* has changed"):
        make(host, store)
    assert list((store / "motoko").iterdir()) == []  # no backup, no partial folder left


@pytest.mark.parametrize("task", ["backups.list", "backups.verify"])
def test_an_unknown_host_is_refused_naming_the_known_ones(task: str, store: Path) -> None:
    result = run_inv(task, "--host", "nope", env={"INVOKE_VLLMFLEET_BACKUPS_DIR": str(store)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'nope' is not one of the inventory's hosts: wintermute, armitage, motoko" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_list_and_verify_read_the_store(host: LocalAdapter, store: Path) -> None:
    made = make(host, store)
    (store / "stray-folder").mkdir()  # a host the inventory does not know: still listed
    env = {"INVOKE_VLLMFLEET_BACKUPS_DIR": str(store)}
    listed = run_inv("backups.list", "--host", "motoko", env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"motoko  {made.id}" in listed.stdout and "deploy of config v2" in listed.stdout
    assert run_inv("backups.list", "--host", "wintermute", env=env).stdout.startswith(
        f"no backups in {store} for wintermute")
    checked = run_inv("backups.verify", env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"ok        motoko/{made.id}" in checked.stdout
    assert "1 backup(s) ok, 0 corrupted" in checked.stdout


def test_stored_hosts_are_the_host_folders(host: LocalAdapter, store: Path) -> None:
    make(host, store)
    (store / "Not A Host").mkdir()
    (store / "notes.txt").write_text("x")
    assert backups.stored_hosts(store) == ["motoko"]
    assert backups.stored_hosts(store / "absent") == []
