"""`up` twice, `status`, and start-up failures of a real local fleet."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.integration.fleetkit import LocalFleet
from vllmfleet import localfleet
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Inventory
from vllmfleet.localfleet.processes import is_ours


def test_status_shows_every_process_healthy(local_fleet: LocalFleet) -> None:
    report = localfleet.status(Path(local_fleet.state.build_dir))
    assert report is not None and report.healthy
    assert sorted(c.process.name for c in report.components) == [
        "armitage", "litellm", "wintermute"]


def test_master_key_file_is_private(local_fleet: LocalFleet) -> None:
    mode = stat.S_IMODE(os.stat(local_fleet.state.master_key_file).st_mode)
    assert mode == 0o600
    assert local_fleet.key not in Path(local_fleet.state.build_dir, "state.json").read_text()


def test_up_again_returns_the_running_fleet(local_fleet: LocalFleet) -> None:
    again = localfleet.up(local_fleet.inventory, build_dir=Path(local_fleet.state.build_dir))
    assert [p.pid for p in again.processes] == [p.pid for p in local_fleet.state.processes]


def test_up_with_another_inventory_is_refused(local_fleet: LocalFleet,
                                              reference: Inventory) -> None:
    with pytest.raises(LocalFleetError, match=r"already running.*another inventory.*fleet\.down"):
        localfleet.up(reference, build_dir=Path(local_fleet.state.build_dir))


@pytest.mark.parametrize(("flags", "expected"), [
    (["--emulator-fail-at-start"], "emulated start-up failure"),
    (["--gpu-memory-utilization", "0.99"], "Free memory on device"),
], ids=["fault-injected", "does-not-fit"])
def test_an_engine_that_fails_to_start_is_reported_and_nothing_is_left(
        tmp_path: Path, flags: list[str], expected: str, reference: Inventory) -> None:
    seen: list[str] = []
    with pytest.raises(LocalFleetError) as caught:
        localfleet.up(reference, build_dir=tmp_path, host_args={"armitage": flags},
                      progress=seen.append)
    message = str(caught.value)
    assert "host 'armitage' exited with code 1" in message
    assert expected in message
    assert str(tmp_path / "logs" / "armitage.log") in message
    assert localfleet.status(tmp_path) is None
    started = [int(line.split("(pid ")[1].split(")")[0]) for line in seen if "(pid " in line]
    assert started and not any(is_ours(pid, 0) for pid in started)
