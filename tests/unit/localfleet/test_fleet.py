"""The local fleet's bookkeeping: state file, master key, refusing a second fleet, down().

These start plain ``sleep``-like processes in their own session instead of servers; the
real fleet (emulators + LiteLLM) is exercised in tests/integration.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from tests.conftest import REFERENCE
from vllmfleet import inventory, localfleet
from vllmfleet.errors import LocalFleetError
from vllmfleet.localfleet import fleet
from vllmfleet.localfleet import processes as fleet_processes
from vllmfleet.localfleet.processes import is_ours, spawn, start_ticks, stop
from vllmfleet.localfleet.state import (
    FleetState,
    Process,
    read_state,
    write_secret,
    write_state,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
STUBBORN = [sys.executable, "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)"]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[tuple[int, int]]]:
    """PIDs the test starts; any still running at the end are killed."""
    pids: list[tuple[int, int]] = []
    yield pids
    stop(pids, grace_s=0.5)


def _process(tmp_path: Path, started: list[tuple[int, int]], name: str,
             argv: list[str] = SLEEPER) -> Process:
    proc, ticks = spawn(argv, log=tmp_path / "logs" / f"{name}.log")
    started.append((proc.pid, ticks))
    return Process(name=name, role="proxy" if name == "litellm" else "emulator", pid=proc.pid,
                   start_ticks=ticks, port=1, url="http://127.0.0.1:1", log="", argv=argv)


def _record(tmp_path: Path, *processes: Process, digest: str = "x" * 64,
            ready: bool = True) -> FleetState:
    proxy = next((p for p in processes if p.role == "proxy"), None)
    state = FleetState(build_dir=str(tmp_path.resolve()), engine="emulator",
                       inventory_path=str(REFERENCE), inventory_digest=digest,
                       master_key_env="LITELLM_MASTER_KEY",
                       master_key_file=str(tmp_path / "master_key"), started_at=time.time(),
                       emulators={p.name: p for p in processes if p.role == "emulator"},
                       proxy=proxy, ready=ready)
    write_state(state)
    return state


def test_state_file_round_trips(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    state = _record(tmp_path, _process(tmp_path, started, "litellm"),
                    _process(tmp_path, started, "wintermute"))
    again = read_state(tmp_path)
    assert again == state
    assert again.host_urls == {"wintermute": "http://127.0.0.1:1"}


def test_a_corrupt_state_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"version": 99}')
    with pytest.raises(LocalFleetError, match=r"state\.json: not a local-fleet state file.*"
                                              r"delete it"):
        localfleet.status(tmp_path)


def test_master_key_is_written_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "master_key"
    write_secret(key_file, "sk-secret")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    state = FleetState(build_dir=str(tmp_path), engine="emulator", inventory_path="",
                       inventory_digest="", master_key_env="K",
                       master_key_file=str(key_file), started_at=0.0)
    assert state.master_key == "sk-secret"
    assert "sk-secret" not in state.to_json()


def test_down_stops_exactly_the_recorded_processes(tmp_path: Path,
                                                   started: list[tuple[int, int]]) -> None:
    recorded = [_process(tmp_path, started, "litellm"), _process(tmp_path, started, "armitage")]
    bystander = _process(tmp_path, started, "bystander")
    _record(tmp_path, *recorded)
    assert sorted(localfleet.down(tmp_path)) == sorted(p.pid for p in recorded)
    assert not any(is_ours(p.pid, p.start_ticks) for p in recorded)
    assert is_ours(bystander.pid, bystander.start_ticks)
    assert read_state(tmp_path) is None
    assert localfleet.down(tmp_path) == []


def test_down_kills_what_ignores_sigterm(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    stubborn = _process(tmp_path, started, "wintermute", STUBBORN)
    log = tmp_path / "logs" / "wintermute.log"
    # the handler must be installed before we signal
    Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.05),
             retry=retry_if_result(lambda ready: not ready))(lambda: "ready" in log.read_text())
    _record(tmp_path, stubborn)
    assert localfleet.down(tmp_path, grace_s=0.3) == [stubborn.pid]
    assert not is_ours(stubborn.pid, stubborn.start_ticks)


def test_a_reused_pid_is_never_signalled(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    other = _process(tmp_path, started, "armitage")
    ticks = start_ticks(other.pid)
    assert ticks is not None
    # the state says "pid N started at another time": N now belongs to someone else
    _record(tmp_path, dataclasses.replace(other, start_ticks=ticks + 1))
    assert localfleet.down(tmp_path) == []
    assert is_ours(other.pid, ticks)


def test_up_refuses_while_another_fleet_runs(tmp_path: Path, started: list[tuple[int, int]],
                                             reference: inventory.Inventory) -> None:
    running = _process(tmp_path, started, "wintermute")
    _record(tmp_path, running, digest="another-inventory")
    with pytest.raises(LocalFleetError, match=rf"already running from .*\(PIDs {running.pid}\) "
                                              r"and it serves another inventory.*fleet\.down"):
        localfleet.up(reference, build_dir=tmp_path)
    assert is_ours(running.pid, running.start_ticks)  # refused, nothing touched


def test_up_cleans_a_stale_state_file(tmp_path: Path, reference: inventory.Inventory,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dead = Process(name="wintermute", role="emulator", pid=2**22 + 7, start_ticks=1, port=1,
                   url="http://127.0.0.1:1", log="")
    _record(tmp_path, dead)
    calls: list[Path] = []

    def fake_start(inv: object, **kwargs: object) -> str:
        calls.append(Path(str(kwargs["build_dir"])))
        return "started"

    monkeypatch.setattr(fleet, "_start", fake_start)
    messages: list[str] = []
    assert localfleet.up(reference, build_dir=tmp_path, progress=messages.append) == "started"
    assert calls == [tmp_path.resolve()]
    assert read_state(tmp_path) is None
    assert any("stale" in m for m in messages)


@pytest.mark.parametrize(("options", "message"), [
    ({"engine": "vllm-gpu"}, r"engine 'vllm-gpu' is not supported.*emulator"),
    ({"speed": 0}, r"speed 0 must be a number from 0.001 to 1000"),
    ({"speed": 1e-320}, r"speed 1e-320 must be a number from"),
    ({"speed": float("inf")}, r"speed inf must be a number from"),
    ({"speed": float("nan")}, r"speed nan must be a number from"),
    ({"host_args": {"motoko": ["--x"]}}, r"host_args names motoko.*known: wintermute, armitage"),
])
def test_bad_options_are_refused_before_anything_starts(
        tmp_path: Path, reference: inventory.Inventory, options: dict[str, object],
        message: str) -> None:
    with pytest.raises(LocalFleetError, match=message):
        localfleet.up(reference, build_dir=tmp_path, **options)  # type: ignore[arg-type]
    assert not (tmp_path / "state.json").exists()


def test_status_reports_dead_processes(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    gone = _process(tmp_path, started, "armitage")
    os.killpg(gone.pid, signal.SIGKILL)
    stop([(gone.pid, gone.start_ticks)], grace_s=1)
    _record(tmp_path, gone)
    report = localfleet.status(tmp_path)
    assert report is not None and not report.healthy
    assert [(c.process.name, c.alive, c.detail) for c in report.components] == [
        ("armitage", False, "not running")]
    assert localfleet.status(tmp_path / "nothing-here") is None


def test_stop_returns_only_when_the_whole_group_is_gone(tmp_path: Path) -> None:
    # a leader that starts a child in its own group (as vLLM starts its engine and worker);
    # the child ignores SIGTERM, so only the group SIGKILL ends it
    family = [sys.executable, "-c",
              "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print(\"child\", flush=True); time.sleep(120)']); time.sleep(120)"]
    proc, ticks = spawn(family, log=tmp_path / "family.log")
    Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.05),
             retry=retry_if_result(lambda count: count < 2))(
        lambda: len(fleet_processes.group_members(proc.pid)))  # the child is up
    assert stop([(proc.pid, ticks)], grace_s=0.5) == [proc.pid]
    assert fleet_processes.group_members(proc.pid) == []


def test_up_names_the_process_that_died(tmp_path: Path, started: list[tuple[int, int]],
                                        reference: inventory.Inventory) -> None:
    """LiteLLM died, the emulators run: fleet.up says which one died and where its log is."""
    emulator = _process(tmp_path, started, "wintermute")
    proxy = dataclasses.replace(_process(tmp_path, started, "litellm"),
                                log=str(tmp_path / "logs" / "litellm.log"))
    stop([(proxy.pid, proxy.start_ticks)], grace_s=0.5)
    _record(tmp_path, emulator, proxy, digest=reference.digest)
    with pytest.raises(LocalFleetError) as caught:
        localfleet.up(reference, build_dir=tmp_path)
    message = str(caught.value)
    assert f"the LiteLLM proxy (pid {proxy.pid}) is not running" in message
    assert str(tmp_path / "logs" / "litellm.log") in message
    assert "wintermute" not in message.split("but", 1)[1]  # the live emulator is not blamed
    assert is_ours(emulator.pid, emulator.start_ticks)  # nothing stopped behind the user's back


@pytest.mark.parametrize(("recorded", "asked"), [(1.0, 10.0), (20.0, 1.0), (0.5, 2.0)])
def test_up_says_when_the_running_fleet_has_another_speed(
        tmp_path: Path, started: list[tuple[int, int]], reference: inventory.Inventory,
        recorded: float, asked: float) -> None:
    argv = [*SLEEPER, "--emulator-time-scale", repr(1.0 / recorded)]
    emulator = dataclasses.replace(_process(tmp_path, started, "wintermute"), argv=argv)
    _record(tmp_path, emulator, digest=reference.digest)
    with pytest.raises(LocalFleetError, match=rf"at speed {recorded:g}, not the {asked:g} asked "
                                              rf"for; use it as it is \(--speed {recorded:g}\)"):
        localfleet.up(reference, build_dir=tmp_path, speed=asked)
