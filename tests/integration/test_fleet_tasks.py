"""`inv fleet.*` and the README's first command as a user runs them, real LiteLLM included.

Each test starts its own fleet through the CLI (in its own build folder, so it never meets
the session fleet of conftest.py) and checks that nothing is left running.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import run_inv
from vllmfleet.localfleet.processes import is_ours

TIMEOUT_S = 300  # a fleet start (LiteLLM's import included) plus the task itself


def build_dir(folder: Path) -> dict[str, str]:
    return {"INVOKE_VLLMFLEET_BUILD_DIR": str(folder)}


def test_up_status_up_again_down_leaves_nothing(tmp_path: Path) -> None:
    up = run_inv("fleet.up", "--speed", "10", env=build_dir(tmp_path), timeout=TIMEOUT_S)
    assert up.returncode == 0, up.stderr
    assert "LiteLLM proxy is ready" in up.stderr  # the progress display
    state = json.loads((tmp_path / "localfleet" / "state.json").read_text())
    pids = [(p["pid"], p["start_ticks"]) for p in [state["proxy"], *state["emulators"].values()]]
    try:
        assert len(pids) == 3 and all(is_ours(pid, ticks) for pid, ticks in pids)
        key_file = tmp_path / "localfleet" / "master_key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert key_file.read_text().strip() not in up.stdout + up.stderr  # never printed

        status = run_inv("fleet.status", env=build_dir(tmp_path), timeout=TIMEOUT_S)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == 3

        # the running fleet is reused, never a second one
        again = run_inv("fleet.up", env=build_dir(tmp_path), timeout=TIMEOUT_S)
        assert again.returncode == 0, again.stderr
        assert json.loads((tmp_path / "localfleet" / "state.json").read_text()) == state

        # another speed is said, not ignored
        faster = run_inv("fleet.up", "--speed", "20", env=build_dir(tmp_path), timeout=TIMEOUT_S)
        assert faster.returncode == 1
        assert "at speed 10, not the 20 asked for" in faster.stderr

        # the demo uses the user's fleet and leaves it running
        demo = run_inv("fleet.demo", env=build_dir(tmp_path), timeout=TIMEOUT_S)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "left running" in demo.stdout
        assert all(is_ours(pid, ticks) for pid, ticks in pids)
    finally:
        down = run_inv("fleet.down", env=build_dir(tmp_path), timeout=TIMEOUT_S)
    assert down.returncode == 0, down.stderr
    assert all(str(pid) in down.stdout for pid, _ in pids)
    assert not [pid for pid, ticks in pids if is_ours(pid, ticks)]
    gone = run_inv("fleet.status", env=build_dir(tmp_path), timeout=TIMEOUT_S)
    assert gone.returncode == 1 and "no local fleet is recorded" in gone.stderr


def test_bad_speed_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = run_inv("fleet.up", "--speed", "fast", env=build_dir(tmp_path), timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert "--speed 'fast' is not a number" in result.stderr
    assert not (tmp_path / "localfleet" / "state.json").exists()


def test_demo_runs_the_main_job_and_stops_the_fleet(tmp_path: Path) -> None:
    result = run_inv("fleet.demo", "--speed", "10", env=build_dir(tmp_path), timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for alias in ("llama31-8b-wintermute", "local/reasoner", "llama31-8b-wintermute-burst",
                  "qwen2.5-7b-armitage", "local/chat"):
        assert f"proxy   {alias} " in out, out
    assert re.search(r"max_input 14000\s+ok", out) and re.search(r"max_output 768\s+ok", out)
    assert "direct  wintermute" in out and "max_model_len=16384" in out
    assert "checks passed" in out and "local fleet stopped" in out
    assert not (tmp_path / "localfleet" / "state.json").exists()
