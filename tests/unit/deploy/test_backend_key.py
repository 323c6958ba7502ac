"""The backend key a deploy installs (issue 9, item 5): one 0600 line per host, kept out of
diffs, logs and backups; a changed key restarts and is rolled back from memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.deploy.test_deploy import COMPOSE, Host, probes, want  # noqa: F401
from vllmfleet.deploy import apply as deploy
from vllmfleet.deploy.apply import Options, Outcome
from vllmfleet.deploy.backend_key import (
    SecretLine,
    check_key,
    merged,
    secret_lines,
    secret_path,
)
from vllmfleet.errors import DeployError
from vllmfleet.health import Expect
from vllmfleet.inventory import Inventory

KEY = "k" * 20 + "OLD-key-0123456789"
NEW = "n" * 20 + "NEW-key-9876543210"
ENV = "/opt/vllmfleet/vllm.env"


def line(value: str) -> SecretLine:
    return SecretLine(remote_path=ENV, name="VLLM_API_KEY", value=value, service="vllm")


def run(inventory: Inventory, host: Host, tmp_path: Path, value: str, *, text: str = "cfg\n",
        dry_run: bool = False) -> Outcome:
    return deploy.apply(inventory=inventory, host=inventory.hosts["wintermute"],
                        adapter=host.adapter, desired=want(text), say=host.events.append,
                        options=Options(store=tmp_path / "backups", dry_run=dry_run),
                        secrets=[line(value)])


def secret_file(tmp_path: Path) -> Path:
    return tmp_path / "host" / ENV.lstrip("/")


def everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_merged_sets_one_line_and_keeps_the_others() -> None:
    have = b"HF_TOKEN=x\nVLLM_API_KEY=old\n# note\nexport VLLM_API_KEY = older\nOTHER=1"
    assert merged(have, line(KEY)) == f"HF_TOKEN=x\nVLLM_API_KEY={KEY}\n# note\nOTHER=1\n".encode()
    assert merged(None, line(KEY)) == f"VLLM_API_KEY={KEY}\n".encode()
    assert merged(b"VLLM_API_KEYS=a\n", line(KEY)) == (
        f"VLLM_API_KEYS=a\nVLLM_API_KEY={KEY}\n".encode())


@pytest.mark.parametrize("bad", ["short", "has space" * 3, "quote'" * 4, "new\nline" * 3,
                                 "dollar$" * 4, "hash#" * 5, ""])
def test_a_bad_key_is_refused_naming_the_variable_not_the_value(bad: str) -> None:
    with pytest.raises(DeployError) as caught:
        check_key(bad, variable="VLLMFLEET_BACKEND_KEY")
    assert "VLLMFLEET_BACKEND_KEY" in str(caught.value) and "token_urlsafe" in str(caught.value)
    assert not bad or bad not in str(caught.value)
    assert check_key(KEY, variable="X") == KEY


def test_each_vllm_host_and_the_proxy_get_their_line(reference: Inventory) -> None:
    gpu = reference.hosts[next(iter(reference.vllm_hosts))]
    lines = secret_lines(reference, gpu, KEY, ("vllm", "proxy"))
    assert [(s.remote_path, s.name) for s in lines if s.service == "vllm"] == [
        (secret_path(gpu), "VLLM_API_KEY")]
    proxy = reference.hosts[reference.proxy.host]
    assert [(s.remote_path, s.name, s.service) for s in secret_lines(
        reference, proxy, KEY, ("proxy",))] == [
        (reference.proxy.env_file, reference.proxy.backend_key_env, "proxy")]
    assert KEY not in repr(lines) and {s.mode for s in lines} == {0o600}
    armitage = reference.hosts["armitage"]  # Windows: no POSIX mode to compare or set
    assert [(s.remote_path, s.mode) for s in secret_lines(reference, armitage, KEY, ("vllm",))] \
        == [("C:/vllmfleet/vllm.env", None)]


def test_the_key_is_installed_0600_restarts_and_stays_out_of_diff_log_and_backup(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:  # noqa: F811
    host = Host(tmp_path)
    first = run(reference, host, tmp_path, KEY)
    assert first.result == "deployed" and ENV in first.changed
    assert secret_file(tmp_path).read_text() == f"VLLM_API_KEY={KEY}\n"
    assert os.stat(secret_file(tmp_path)).st_mode & 0o777 == 0o600
    assert run(reference, host, tmp_path, KEY).result == "unchanged"

    secret_file(tmp_path).write_text(f"HF_TOKEN=keep\nVLLM_API_KEY={KEY}\n")
    plan = run(reference, host, tmp_path, NEW, dry_run=True)
    assert plan.result == "planned" and "<secret: changed>" in plan.report
    assert KEY not in plan.report and NEW not in plan.report

    restarts = sum(e.startswith("restart with") for e in host.events)
    rotated = run(reference, host, tmp_path, NEW)
    assert rotated.result == "deployed" and rotated.changed == (ENV,)
    assert sum(e.startswith("restart with") for e in host.events) == restarts + 1
    assert secret_file(tmp_path).read_text() == f"HF_TOKEN=keep\nVLLM_API_KEY={NEW}\n"
    said = "\n".join(host.events)
    assert KEY not in said and NEW not in said
    stored = everything_under(tmp_path / "backups")
    assert KEY.encode() not in stored and NEW.encode() not in stored


def test_a_failed_rotation_puts_the_old_key_back(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:  # noqa: F811
    host = Host(tmp_path)
    assert run(reference, host, tmp_path, KEY).result == "deployed"
    secret_file(tmp_path).chmod(0o640)  # restored as it was, mode too

    def dies(_: Expect) -> None:
        raise DeployError("vllm does not answer")

    probes.append(dies)
    failed = run(reference, host, tmp_path, NEW)
    assert failed.result == "failed" and failed.restored is True
    assert secret_file(tmp_path).read_text() == f"VLLM_API_KEY={KEY}\n"
    assert os.stat(secret_file(tmp_path)).st_mode & 0o777 == 0o640
    assert KEY not in failed.report and NEW not in failed.report


def test_a_first_key_that_fails_is_removed_again(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:  # noqa: F811
    host = Host(tmp_path)
    host.file.parent.mkdir(parents=True)
    host.file.write_text("cfg\n")

    def dies(_: Expect) -> None:
        raise DeployError("vllm does not answer")

    probes.append(dies)
    assert run(reference, host, tmp_path, KEY).result == "failed"
    assert not secret_file(tmp_path).exists()


def test_the_proxy_env_file_must_exist_and_hold_the_master_key_first(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:  # noqa: F811
    host = Host(tmp_path)
    proxy_line = SecretLine(remote_path=ENV, name="VLLMFLEET_BACKEND_KEY", value=KEY,
                            service="vllm", needs="LITELLM_MASTER_KEY")

    def go() -> Outcome:
        return deploy.apply(inventory=reference, host=reference.hosts["wintermute"],
                            adapter=host.adapter, desired=want("cfg\n"), say=host.events.append,
                            options=Options(store=tmp_path / "backups"), secrets=[proxy_line])

    absent = go()
    assert absent.result == "failed" and "does not exist" in absent.report
    assert f"{ENV}.example" in absent.report and "nothing was changed" in absent.report
    assert not host.file.exists() and not secret_file(tmp_path).exists()
    secret_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    secret_file(tmp_path).write_text("OTHER=1\n")
    assert "does not set LITELLM_MASTER_KEY" in go().report
    secret_file(tmp_path).write_text("LITELLM_MASTER_KEY=sk-x\n")
    assert go().result == "deployed"
    assert secret_file(tmp_path).read_text() == (
        f"LITELLM_MASTER_KEY=sk-x\nVLLMFLEET_BACKEND_KEY={KEY}\n")
