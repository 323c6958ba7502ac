"""`inv deploy.* / rollback.* / backups.* / health / logs.*` as a user runs them, against a
host behind the test sshd whose container is the vLLM emulator (see docker_host.py)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_inv
from tests.integration.docker_host import (
    DockerShim,
    compose_path,
    emulate,
    inventory_data,
    write_inventory,
)
from tests.integration.sshd import Sshd

BACKEND_KEY = "test-backend-key-" + "0123456789abcdef"  # the vLLM servers' --api-key
TIMEOUT_S = 180  # a deploy over SSH that waits for the emulator's health


def settings(inventory: Path, sshd: Sshd, store: Path) -> dict[str, str]:
    return {"INVOKE_VLLMFLEET_INVENTORY": str(inventory),
            "INVOKE_VLLMFLEET_KNOWN_HOSTS": str(sshd.known_hosts),
            "INVOKE_VLLMFLEET_BACKUPS_DIR": str(store),
            "INVOKE_VLLMFLEET_SUDO": "none", "VLLMFLEET_BACKEND_KEY": BACKEND_KEY}


def test_per_host_tasks_come_from_the_inventory_and_a_broken_one_keeps_list_working(
        tmp_path: Path, sshd_server: Sshd) -> None:
    inventory = write_inventory(tmp_path, inventory_data(tmp_path, sshd_server, ["gpu1"]))
    env = settings(inventory.path, sshd_server, tmp_path / "backups")
    listed = run_inv("--list", env=env, timeout=TIMEOUT_S)
    assert listed.returncode == 0, listed.stderr
    for name in ("deploy.gpu1", "deploy.hub", "deploy.all", "deploy.proxy", "rollback.gpu1",
                 "logs.gpu1", "backups.create", "backups.list", "backups.verify", "health"):
        assert f"  {name} " in listed.stdout, name

    inventory.path.write_text(inventory.path.read_text().replace("max_num_seqs", "max_num_seq"))
    broken = run_inv("--list", env=env, timeout=TIMEOUT_S)
    assert broken.returncode == 0, broken.stderr
    assert "deploy.gpu1" not in broken.stdout and "  deploy.all " in broken.stdout
    why = run_inv("validate", env=env, timeout=TIMEOUT_S)
    assert why.returncode == 1 and "did you mean 'max_num_seqs'?" in why.stderr


def test_deploy_health_logs_backups_and_a_failed_deploy_from_the_command_line(
        tmp_path: Path, sshd_server: Sshd, docker_shim: DockerShim) -> None:
    data = inventory_data(tmp_path, sshd_server, ["gpu1"])
    inventory = write_inventory(tmp_path, data)
    emulate(docker_shim, inventory)
    store = tmp_path / "backups"
    env = settings(inventory.path, sshd_server, store)
    compose = compose_path(inventory.hosts["gpu1"])
    try:
        plan = run_inv("deploy.gpu1", "--dry-run", env=env, timeout=TIMEOUT_S)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "--- /dev/null" in plan.stdout and "+      - '16384'" in plan.stdout
        assert not compose.exists()

        done = run_inv("deploy.gpu1", env=env, timeout=TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "gpu1  vllm      deployed" in done.stdout and "all hosts ok" in done.stdout
        assert "[gpu1] vllm verified" in done.stderr
        key_file = Path(inventory.hosts["gpu1"].base_dir) / "vllm.env"
        assert key_file.read_text() == f"VLLM_API_KEY={BACKEND_KEY}\n"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert BACKEND_KEY not in plan.stdout + plan.stderr + done.stdout + done.stderr

        healthy = run_inv("health", "--host", "gpu1", env=env, timeout=TIMEOUT_S)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "vllm /v1/models  ok      llama-gpu1, max_model_len 16384" in healthy.stdout
        assert "gpu memory" in healthy.stdout

        logs = run_inv("logs.gpu1", "--lines", "3", env=env, timeout=TIMEOUT_S)
        assert logs.returncode == 0, logs.stderr
        assert len(logs.stdout.splitlines()) == 3

        snap = run_inv("backups.create", "--host", "gpu1", env=env, timeout=TIMEOUT_S)
        assert snap.returncode == 0, snap.stdout + snap.stderr
        assert "1 file(s), 0 absent on the host" in snap.stdout
        listed = run_inv("backups.list", env=env, timeout=TIMEOUT_S)
        assert listed.returncode == 0 and listed.stdout.count("gpu1  ") == 2, listed.stdout
        assert "snapshot by" in listed.stdout and "before deploy" in listed.stdout

        before = compose.read_bytes()
        data["hosts"]["gpu1"]["vllm"]["max_model_len"] = 100000
        write_inventory(tmp_path, data)
        failed = run_inv("deploy.gpu1", env=env, timeout=TIMEOUT_S)
        print(failed.stdout, failed.stderr)  # what a failed deploy prints (see -s)
        assert failed.returncode == 1
        assert "deploy failed: gpu1 (rolled back)" in failed.stderr
        assert "largest max_model_len that fits = 83952" in failed.stdout
        assert "log tail of vllm" in failed.stdout and "Traceback" not in failed.stderr
        assert compose.read_bytes() == before

        bad = run_inv("rollback.gpu1", "--to", "../../etc/passwd", env=env, timeout=TIMEOUT_S)
        assert bad.returncode == 1 and "not a path" in bad.stdout, bad.stdout + bad.stderr

        docker_shim.stop_all()  # the container dies
        sick = run_inv("health", "--host", "gpu1", env=env, timeout=TIMEOUT_S)
        assert sick.returncode == 1 and "unhealthy: gpu1" in sick.stderr
        assert "FAIL" in sick.stdout

        [newest, *_] = sorted((store / "gpu1").iterdir(), reverse=True)
        stored = newest / "files" / str(compose).lstrip("/")
        stored.write_bytes(stored.read_bytes() + b"#")
        verify = run_inv("backups.verify", env=env, timeout=TIMEOUT_S)
        assert verify.returncode == 1 and f"CORRUPTED gpu1/{newest.name}" in verify.stdout
    finally:
        docker_shim.stop_all()
