"""`inv fleet.*` and the README's first command as a user runs them, real LiteLLM included.

Each test starts its own fleet through the CLI (in its own build folder, so it never meets
the session fleet of conftest.py) and checks that nothing is left running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from vllmfleet.localfleet.processes import is_ours

ROOT = Path(__file__).resolve().parents[2]


def inv(build: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_VLLMFLEET_BUILD_DIR": str(build)}
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def test_up_status_up_again_down_leaves_nothing(tmp_path: Path) -> None:
    up = inv(tmp_path, "fleet.up", "--speed", "10")
    assert up.returncode == 0, up.stderr
    assert "LiteLLM proxy is ready" in up.stderr  # the progress display
    state = json.loads((tmp_path / "localfleet" / "state.json").read_text())
    pids = [(p["pid"], p["start_ticks"]) for p in [state["proxy"], *state["emulators"].values()]]
    try:
        assert len(pids) == 3 and all(is_ours(pid, ticks) for pid, ticks in pids)
        key_file = tmp_path / "localfleet" / "master_key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert key_file.read_text().strip() not in up.stdout + up.stderr  # never printed

        status = inv(tmp_path, "fleet.status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == 3

        again = inv(tmp_path, "fleet.up")  # the running fleet is reused, never a second one
        assert again.returncode == 0, again.stderr
        assert json.loads((tmp_path / "localfleet" / "state.json").read_text()) == state
    finally:
        down = inv(tmp_path, "fleet.down")
    assert down.returncode == 0, down.stderr
    assert all(str(pid) in down.stdout for pid, _ in pids)
    assert not [pid for pid, ticks in pids if is_ours(pid, ticks)]
    gone = inv(tmp_path, "fleet.status")
    assert gone.returncode == 1 and "no local fleet is recorded" in gone.stderr


def test_bad_speed_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = inv(tmp_path, "fleet.up", "--speed", "fast")
    assert result.returncode == 2
    assert "--speed 'fast' is not a number" in result.stderr
    assert not (tmp_path / "localfleet" / "state.json").exists()


def test_demo_runs_the_main_job_and_stops_the_fleet(tmp_path: Path) -> None:
    result = inv(tmp_path, "fleet.demo", "--speed", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for alias in ("llama31-8b-wintermute", "local/reasoner", "llama31-8b-wintermute-burst",
                  "qwen2.5-7b-armitage", "local/chat"):
        assert f"proxy   {alias} " in out, out
    assert re.search(r"max_input 14000\s+ok", out) and re.search(r"max_output 768\s+ok", out)
    assert "direct  wintermute" in out and "max_model_len=16384" in out
    assert "checks passed" in out and "local fleet stopped" in out
    assert not (tmp_path / "localfleet" / "state.json").exists()
