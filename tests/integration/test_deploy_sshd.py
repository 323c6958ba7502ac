"""Deploy and rollback for real: linux adapter over OpenSSH's sshd on 127.0.0.1, a docker shim
whose container is the vLLM emulator (a config that does not fit fails at start exactly as
vLLM does). Every fault test shows that nothing was lost: the host's files are
byte-identical to before and the host serves its previous config.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paramiko
import pytest

from tests.integration.docker_host import (
    DockerShim,
    compose_path,
    emulate,
    inventory_data,
    write_inventory,
)
from tests.integration.sshd import Sshd
from vllmfleet.deploy import backups, locks
from vllmfleet.deploy.apply import Options, Outcome
from vllmfleet.deploy.run import Access, deploy_host, rollback_host
from vllmfleet.inventory import Inventory
from vllmfleet.remote import SSHTransport

HOST = "gpu1"


class Bench:
    """One test's host: its inventory (rewritable), backup store and how to deploy."""

    def __init__(self, folder: Path, sshd: Sshd, shim: DockerShim) -> None:
        self.folder, self.sshd, self.shim = folder, sshd, shim
        self.data = inventory_data(folder, sshd, [HOST])
        self.inventory = write_inventory(folder, self.data)
        emulate(shim, self.inventory)
        self.access = Access(known_hosts=sshd.known_hosts, sudo="none")
        self.store = folder / "backups"
        self.said: list[str] = []

    @property
    def vllm(self) -> dict[str, Any]:
        return self.data["hosts"][HOST]["vllm"]  # type: ignore[no-any-return]

    def change(self, **vllm: Any) -> Inventory:
        self.data = copy.deepcopy(self.data)
        self.vllm.update(vllm)
        self.inventory = write_inventory(self.folder, self.data)
        return self.inventory

    def options(self, **changes: Any) -> Options:
        return Options(store=self.store, **changes)

    def deploy(self, **options: Any) -> Outcome:
        return deploy_host(self.inventory, HOST, access=self.access,
                           options=self.options(**options), say=self.said.append)

    def rollback(self, to: str | None = None) -> Outcome:
        return rollback_host(self.inventory, HOST, to=to, access=self.access,
                             options=self.options(), say=self.said.append)

    @property
    def compose(self) -> Path:
        return compose_path(self.inventory.hosts[HOST])

    def served(self) -> dict[str, int]:
        """What the running server reports on /v1/models: served name → max_model_len."""
        url = f"http://127.0.0.1:{self.vllm['port']}/v1/models"
        data = httpx.get(url, timeout=5, trust_env=False).json()["data"]
        return {m["id"]: m["max_model_len"] for m in data}

    def restarts(self) -> int:
        return self.shim.restarts(str(self.compose))


@pytest.fixture
def bench(tmp_path: Path, sshd_server: Sshd,
          docker_shim: DockerShim) -> Iterator[Bench]:
    yield Bench(tmp_path, sshd_server, docker_shim)
    docker_shim.stop_all()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deployed(bench: Bench) -> tuple[bytes, str]:
    """Deploy the bench's inventory as the baseline; return the file's bytes and mode."""
    outcome = bench.deploy()
    assert outcome.result == "deployed", outcome.report
    return bench.compose.read_bytes(), oct(bench.compose.stat().st_mode & 0o777)


def test_deploy_starts_the_config_and_a_second_run_changes_nothing(bench: Bench) -> None:
    outcome = bench.deploy()
    assert outcome.result == "deployed", outcome.report
    assert bench.served() == {"llama-gpu1": 16384}
    assert "--max-model-len" in bench.compose.read_text()
    assert outcome.connections == 1  # one SSH connection for the whole deploy
    assert not (bench.compose.parent / locks.LOCK_NAME).exists()  # released

    again = bench.deploy()
    assert again.result == "unchanged"
    assert bench.restarts() == 1  # nothing changed: nothing restarted
    assert len(backups.backup_ids(bench.store, HOST)) == 1  # and no backup taken


def test_dry_run_prints_the_diff_and_changes_nothing(bench: Bench) -> None:
    before, _ = deployed(bench)
    bench.change(max_model_len=12288)
    outcome = bench.deploy(dry_run=True)
    assert outcome.result == "planned"
    assert f"--- {HOST}:{bench.compose} (on the host)" in outcome.report
    assert "-      - '16384'" in outcome.report and "+      - '12288'" in outcome.report
    assert bench.compose.read_bytes() == before
    assert bench.restarts() == 1 and len(backups.backup_ids(bench.store, HOST)) == 1
    assert bench.served() == {"llama-gpu1": 16384}


def test_a_config_that_does_not_fit_is_rolled_back(bench: Bench) -> None:
    before, mode = deployed(bench)
    bench.change(max_model_len=100000)  # 12 GiB cannot hold the KV cache of 100000 tokens
    outcome = bench.deploy()

    assert outcome.result == "failed" and outcome.restored is True
    assert bench.compose.read_bytes() == before  # byte-identical
    assert oct(bench.compose.stat().st_mode & 0o777) == mode
    assert bench.served() == {"llama-gpu1": 16384}  # healthy on the old config
    report = outcome.report
    assert "FAILED at wait healthy / verify" in report
    assert "estimated maximum model length is 83952" in report  # vLLM's own message, log tail
    assert "largest max_model_len that fits = 83952" in report  # the capacity planner
    assert f"set hosts.{HOST}.vllm.max_model_len to at most 83952" in report
    assert "rolled back:   yes" in report
    assert not (bench.compose.parent / locks.LOCK_NAME).exists()


def test_health_that_never_turns_green_is_rolled_back(bench: Bench) -> None:
    before, _ = deployed(bench)
    # the new config starts but never answers within the inventory's start timeout
    bench.change(extra_args=["--emulator-slow-start", "120"], start_timeout_s=10)
    outcome = bench.deploy()
    assert outcome.result == "failed" and outcome.restored is True, outcome.report
    assert "did not answer 200 within 10 s" in outcome.report
    assert bench.compose.read_bytes() == before
    assert bench.served() == {"llama-gpu1": 16384}


def test_a_push_cut_midway_leaves_the_host_file_untouched_and_a_rerun_succeeds(
        bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    before, _ = deployed(bench)
    bench.change(max_model_len=12288)
    real_upload, real_write = SSHTransport.upload, paramiko.SFTPFile.write
    cutting: list[bool] = []

    def upload(self: SSHTransport, path: str, content: bytes) -> None:
        cutting[:] = ["vllm-compose.yaml" in path]
        real_upload(self, path, content)

    def write(handle: paramiko.SFTPFile, data: bytes) -> None:
        if cutting and cutting[0]:  # the network goes away while the config uploads
            handle.sftp.sock.get_transport().close()
        real_write(handle, data)

    monkeypatch.setattr(SSHTransport, "upload", upload)
    monkeypatch.setattr(paramiko.SFTPFile, "write", write)
    outcome = bench.deploy()
    monkeypatch.undo()

    assert outcome.result == "failed", outcome.report
    assert "FAILED at push" in outcome.report and "was cut" in outcome.report
    assert bench.compose.read_bytes() == before  # untouched
    assert bench.restarts() == 1  # the old config was never restarted
    assert bench.served() == {"llama-gpu1": 16384}
    assert not (bench.compose.parent / locks.LOCK_NAME).exists()  # released after reconnecting

    rerun = bench.deploy()
    assert rerun.result == "deployed", rerun.report
    assert bench.served() == {"llama-gpu1": 12288}
    assert not [p for p in bench.compose.parent.iterdir() if p.name.endswith(".tmp")]


def test_rollback_restores_the_previous_files_and_behaviour(bench: Bench) -> None:
    before, mode = deployed(bench)
    bench.change(max_model_len=12288)
    changed = bench.deploy()
    assert changed.result == "deployed" and bench.served() == {"llama-gpu1": 12288}

    outcome = bench.rollback()  # default: the newest backup taken before a deploy
    assert outcome.result == "deployed", outcome.report
    assert outcome.action == "rollback" and outcome.connections == 1
    assert bench.compose.read_bytes() == before
    assert oct(bench.compose.stat().st_mode & 0o777) == mode
    assert bench.served() == {"llama-gpu1": 16384}

    restarts = bench.restarts()
    again = bench.rollback()  # still the pre-deploy backup, which the host now has
    assert again.result == "unchanged" and bench.restarts() == restarts

    undo = bench.rollback(to=outcome.backup)  # the rollback's own safety copy undoes it
    assert undo.result == "deployed" and bench.served() == {"llama-gpu1": 12288}


def test_a_corrupted_backup_is_refused_and_nothing_changes(bench: Bench) -> None:
    deployed(bench)
    bench.change(max_model_len=12288)
    changed = bench.deploy()
    assert changed.backup is not None
    now, restarts = bench.compose.read_bytes(), bench.restarts()
    stored = bench.store / HOST / changed.backup / "files" / str(bench.compose).lstrip("/")
    stored.write_bytes(stored.read_bytes().replace(b"16384", b"65536"))

    outcome = bench.rollback(to=changed.backup)
    assert outcome.result == "failed"
    assert f"backup {HOST}/{changed.backup} is corrupted" in outcome.report
    assert "has changed" in outcome.report and "nothing was changed on the host" in outcome.report
    for bad, why in [("latest", "is not an id"), ("../../etc", "not a path"),
                     ("20200101T000000Z", "there is no such backup"),
                     ("2020-01-01", "UTC timestamps")]:
        refused = bench.rollback(to=bad)
        assert refused.result == "failed" and why in refused.report, refused.report
    assert bench.compose.read_bytes() == now and bench.restarts() == restarts
    assert bench.served() == {"llama-gpu1": 12288}


def test_a_second_deploy_is_refused_by_the_lock(bench: Bench) -> None:
    before, _ = deployed(bench)
    bench.change(max_model_len=12288)
    lock_file = bench.compose.parent / locks.LOCK_NAME
    with bench.access.adapter(bench.inventory, bench.inventory.hosts[HOST]) as other:
        held = locks.acquire(other, str(lock_file), owner="ops@laptop pid 4242",
                             action="deploy", task=f"deploy.{HOST}")
        outcome = bench.deploy()
        assert outcome.result == "failed"
        assert "another deploy holds the lock" in outcome.report
        assert "ops@laptop pid 4242 (deploy)" in outcome.report
        assert "nothing was changed" in outcome.report
        assert bench.compose.read_bytes() == before and bench.restarts() == 1
        assert lock_file.exists()  # the other deploy's lock is left alone

        forced = bench.deploy(force_unlock=True)
        assert forced.result == "deployed", forced.report
        assert any("removed the lock of ops@laptop pid 4242" in s for s in bench.said)
        assert held.release() != ""  # it is not ours any more: the holder is told
    assert bench.served() == {"llama-gpu1": 12288}
    assert not lock_file.exists()


def test_a_stale_lock_is_reported_not_broken(bench: Bench) -> None:
    before, _ = deployed(bench)
    lock_file = bench.compose.parent / locks.LOCK_NAME
    lock_file.write_text('{"owner": "ci@runner pid 7", "action": "deploy", "token": "x", '
                         '"created": "2020-01-01T00:00:00Z"}\n')
    bench.change(max_model_len=12288)
    outcome = bench.deploy()
    assert outcome.result == "failed"
    assert "looks STALE" in outcome.report and f"inv deploy.{HOST} --force-unlock" in \
        outcome.report
    assert lock_file.exists() and bench.compose.read_bytes() == before
