"""The ``linux`` adapter for real, over OpenSSH's sshd on 127.0.0.1 (host-key checking on).

The sshd runs on this machine, so the "remote" files are local paths the test can also look
at directly. Needs /usr/sbin/sshd: ``scripts/install-os-deps`` installs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.integration.sshd import Sshd, sshd_log
from vllmfleet.deploy import backups
from vllmfleet.errors import HostError
from vllmfleet.inventory import Inventory
from vllmfleet.remote import HostAdapter, adapter_for


@pytest.fixture
def linux(sshd_server: Sshd) -> Iterator[HostAdapter]:
    with adapter_for(sshd_server.host("motoko"), known_hosts=sshd_server.known_hosts) as adapter:
        yield adapter


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_put_read_and_remove(linux: HostAdapter, tmp_path: Path) -> None:
    target = tmp_path / "opt" / "vllmfleet" / "vllm-compose.yaml"
    assert linux.read(str(target)) is None
    linux.put(str(target), b"services: {}\n", mode=0o640)
    assert target.read_bytes() == b"services: {}\n"
    assert target.stat().st_mode & 0o777 == 0o640
    found = linux.read_file(str(target))
    assert found is not None and (found.content, found.mode) == (b"services: {}\n", 0o640)
    linux.put(str(target), b"services: {vllm: {}}\n")
    assert target.read_bytes() == b"services: {vllm: {}}\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert leftovers(target.parent) == []
    linux.remove(str(target))
    linux.remove(str(target))  # already gone: fine
    assert not target.exists()


def test_run_reports_exit_codes_and_stderr(linux: HostAdapter) -> None:
    result = linux.run("echo out; echo err >&2; exit 7", check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert linux.run("printf '%s' \"$((6 * 7))\"").stdout == "42"
    with pytest.raises(HostError) as caught:
        linux.run("echo 'disk full' >&2; exit 3")
    message = str(caught.value)
    assert message.startswith("motoko: command failed (exit 3): echo 'disk full' >&2; exit 3")
    assert "disk full" in message
    assert caught.value.host == "motoko" and caught.value.command is not None


def test_a_put_cut_mid_upload_leaves_the_target_untouched(
        linux: HostAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "config.yaml"
    target.write_bytes(b"old: config\n")
    big = bytes(range(256)) * 32768  # 8 MiB
    real_write = paramiko.SFTPFile.write
    written = []

    def cut_after_some_chunks(handle: paramiko.SFTPFile, data: bytes) -> None:
        written.append(len(data))
        if len(written) == 16:  # 512 KiB in: the network goes away
            handle.sftp.sock.get_transport().close()
        real_write(handle, data)

    monkeypatch.setattr(paramiko.SFTPFile, "write", cut_after_some_chunks)
    with pytest.raises(HostError, match=r"motoko: uploading .*was cut.*run it again"):
        linux.put(str(target), big)
    monkeypatch.undo()

    assert target.read_bytes() == b"old: config\n"
    [partial] = leftovers(tmp_path)  # the interrupted temp file, never renamed
    assert (tmp_path / partial).stat().st_size < len(big)

    linux.put(str(target), big)  # the re-run reconnects and succeeds
    assert target.read_bytes() == big
    assert leftovers(tmp_path) == []  # and cleans up the stale temp file
    assert linux.connection_count == 2


def test_connection_is_opened_once_and_reused(sshd_server: Sshd,
                                              tmp_path: Path) -> None:
    accepted_before = sshd_log(sshd_server).count("Accepted publickey")
    with adapter_for(sshd_server.host("motoko"), known_hosts=sshd_server.known_hosts) as linux:
        assert linux.connection_count == 0  # lazy: nothing opened yet
        for n in range(10):
            linux.put(str(tmp_path / f"f{n}"), str(n).encode())
            assert linux.read(str(tmp_path / f"f{n}")) == str(n).encode()
            linux.run("true")
        assert linux.connection_count == 1
    assert sshd_log(sshd_server).count("Accepted publickey") == accepted_before + 1


def test_an_unknown_host_key_is_refused(sshd_server: Sshd, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    other_host = tmp_path / "known_hosts"
    other_host.write_text(f"[127.0.0.1]:1 {sshd_server.host_public_key}\n")
    adapter = adapter_for(sshd_server.host("motoko"), known_hosts=other_host)
    with pytest.raises(HostError) as caught:
        adapter.run("true")
    message = str(caught.value)
    assert f"host key of 127.0.0.1:{sshd_server.port} is unknown" in message
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {other_host}" in message
    assert adapter.connection_count == 0

    # the default known_hosts is ~/.ssh/known_hosts: an empty home knows no host
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(HostError, match=r"host key .* is unknown"):
        adapter_for(sshd_server.host("motoko")).run("true")


def test_a_changed_host_key_is_refused(sshd_server: Sshd, tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(sshd_server.key_file))  # not the host's
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 {key.get_base64()}\n")
    with pytest.raises(HostError, match=r"host key of 127\.0\.0\.1:.* CHANGED"):
        adapter_for(sshd_server.host("motoko"), known_hosts=known).run("true")


def test_a_wrong_user_key_is_refused(sshd_server: Sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True, timeout=30)
    with pytest.raises(HostError, match=r"SSH authentication as .* failed"):
        adapter_for(sshd_server.host("motoko"), known_hosts=sshd_server.known_hosts,
                    key_file=stranger).run("true")


def test_service_commands_run_in_a_real_shell(sshd_server: Sshd, tmp_path: Path,
                                              reference: Inventory) -> None:
    calls = tmp_path / "docker-calls"
    shim = sshd_server.bin_dir / "docker"
    shim.write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> {calls}\n"
        "case \"$1\" in\n"
        "  inspect) echo running ;;\n"
        "  logs) printf 'line 1\\nline 2\\n' ;;\n"
        "esac\n")
    shim.chmod(0o755)
    try:
        vllm = reference.hosts["wintermute"].vllm
        host = sshd_server.host("wintermute", vllm=vllm, workdir=str(tmp_path))
        with adapter_for(host, known_hosts=sshd_server.known_hosts) as adapter:
            adapter.restart()
            status = adapter.status()
            assert adapter.logs(lines=2) == "line 1\nline 2\n"
    finally:
        shim.unlink()
    assert (status.running, status.state) == (True, "running")
    assert calls.read_text().splitlines() == [
        f"compose -f {tmp_path}/vllm-compose.yaml up -d --force-recreate",
        "inspect --format {{.State.Status}} vllm-wintermute",
        "logs --tail 2 vllm-wintermute",
    ]


def test_backup_over_ssh_and_restore_byte_identical(linux: HostAdapter, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "litellm"
    etc.mkdir(parents=True)
    (etc / "config.yaml").write_bytes(b"model_list: [a]\n")
    (etc / "config.yaml").chmod(0o640)
    (etc / "litellm.env").write_bytes(b"LITELLM_MASTER_KEY=sk-fake\n")
    (etc / "litellm.env").chmod(0o600)
    paths = [str(etc / "config.yaml"), str(etc / "litellm.env"), str(etc / "hooks.py")]
    store = tmp_path / "backups"
    backup = backups.create(linux, "motoko", paths, store=store, inventory_digest="abc",
                            note="test", secret_paths=[paths[1]])
    backups.verify(backups.load(store, "motoko", backup.id))
    secret = backup.path / "files" / paths[1].lstrip("/")
    assert secret.stat().st_mode & 0o777 == 0o600

    # a deploy changes the files …
    linux.put(paths[0], b"model_list: [b]\n")
    linux.put(paths[1], b"LITELLM_MASTER_KEY=sk-new\n", mode=0o644)
    linux.put(paths[2], b"# hooks\n")
    # … and a rollback puts back exactly what was there
    for remote_path, content, mode in backups.restore_plan(backup):
        if content is None:
            linux.remove(remote_path)
        else:
            linux.put(remote_path, content, mode=mode or 0o644)
    assert (etc / "config.yaml").read_bytes() == b"model_list: [a]\n"
    assert (etc / "config.yaml").stat().st_mode & 0o777 == 0o640
    assert (etc / "litellm.env").read_bytes() == b"LITELLM_MASTER_KEY=sk-fake\n"
    assert (etc / "litellm.env").stat().st_mode & 0o777 == 0o600
    assert not (etc / "hooks.py").exists()
    assert linux.connection_count == 1


def test_fixture_fails_without_sshd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.integration import sshd

    monkeypatch.setattr(sshd, "SSHD", tmp_path / "no-sshd")
    with pytest.raises(sshd.SshdError, match="run scripts/install-os-deps"):
        sshd.start_sshd(tmp_path / "x")
