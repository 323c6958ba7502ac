"""`inv fit.<host>` as a user runs it, against a host behind the test sshd whose container is
the vLLM emulator with the reference 12 GiB card (see docker_host.py): probes, vLLM's own
answers, the pinned value, the inventory diff (comments kept) and the fitted deploy."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_inv
from tests.integration.docker_host import DockerShim, emulate, inventory_data, write_inventory
from tests.integration.sshd import Sshd
from tests.integration.test_deploy_tasks import TIMEOUT_S, settings
from vllmfleet.inventory import load

COMMENT = "# the card of wintermute: 12 GiB, 0.5 kept by the desktop\n"


def _inventory(tmp_path: Path, sshd: Sshd, name: str = "gpu1", **vllm: object) -> Path:
    data = inventory_data(tmp_path, sshd, [name])
    data["hosts"][name]["vllm"].update(vllm)
    inventory = write_inventory(tmp_path, data)
    text = inventory.path.read_text()
    inventory.path.write_text(COMMENT + text)   # a comment the fit must keep
    return inventory.path


def test_fit_apply_from_a_length_that_does_not_fit(tmp_path: Path, sshd_server: Sshd,
                                                   docker_shim: DockerShim) -> None:
    path = _inventory(tmp_path, sshd_server, "wintermute")  # 12 GiB; 0.11: no auto-fit
    emulate(docker_shim, load(path))
    env = settings(path, sshd_server, tmp_path / "backups")
    try:
        first = run_inv("deploy.wintermute", env=env, timeout=TIMEOUT_S)
        assert first.returncode == 0, first.stdout + first.stderr
        path.write_text(path.read_text().replace("max_model_len: 16384",
                                                 "max_model_len: 100000"))
        plan = run_inv("fit.wintermute", "--dry-run", env=env, timeout=TIMEOUT_S)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "read vLLM's estimate from its refusal" in plan.stdout
        before = path.read_text()
        done = run_inv("fit.wintermute", "--apply", env=env, timeout=4 * TIMEOUT_S)
        print(done.stdout, done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "trying max_model_len 131,072" in done.stderr
        assert "the estimated maximum model length is 83952" in done.stderr
        assert "vLLM's own estimate: 83,952 tokens; confirming it" in done.stderr
        assert "pinned 41,728" in done.stdout
        after = path.read_text()
        assert after.startswith(COMMENT)
        changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
                   if a != b]
        assert changed == [("      max_model_len: 100000", "      max_model_len: 41728"),
                           ("    max_input_tokens: 7000", "    max_input_tokens: 33382")]
        assert "wintermute  vllm      deployed" in done.stdout
        fitted = load(path)
        assert fitted.hosts["wintermute"].vllm.max_model_len == 41728  # type: ignore[union-attr]

        healthy = run_inv("health", "--host", "wintermute", env=env, timeout=TIMEOUT_S)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "max_model_len 41728" in healthy.stdout and "vllm kv cache" in healthy.stdout

        measured = run_inv("plan", "--host", "wintermute", env=env, timeout=TIMEOUT_S)
        assert measured.returncode == 0, measured.stdout + measured.stderr
        assert "measured at the last start" in measured.stdout
        assert "83,952" in measured.stdout
    finally:
        docker_shim.stop_all()


def test_fit_with_auto_fit_reads_the_auto_fit_line(tmp_path: Path, sshd_server: Sshd,
                                                   docker_shim: DockerShim) -> None:
    path = _inventory(tmp_path, sshd_server, image="vllm/vllm-openai:v0.14.0",
                      max_model_len=100000)
    emulate(docker_shim, load(path))
    env = settings(path, sshd_server, tmp_path / "backups")
    try:
        before = path.read_text()
        done = run_inv("fit.gpu1", env=env, timeout=4 * TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "trying max_model_len auto" in done.stderr
        assert "auto-fit 131072 -> 83952" in done.stderr
        assert "+      max_model_len: 41728" in done.stdout and "--apply" in done.stdout
        assert path.read_text() == before                    # not written without --apply
    finally:
        docker_shim.stop_all()
