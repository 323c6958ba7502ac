"""One real local fleet for the whole session: an emulator per vLLM host, a real LiteLLM.

Started once from the reference inventory plus two probe aliases (see fleetkit.PROBES),
stopped at the end of the session and checked to leave no process behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fleetkit import TEMPLATES, LocalFleet, inventory_with_probes

from vllmfleet import localfleet
from vllmfleet.inventory import Inventory
from vllmfleet.localfleet.processes import is_ours


@pytest.fixture(scope="session")
def fleet_inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return inventory_with_probes(tmp_path_factory.mktemp("inventory"))


@pytest.fixture(scope="session")
def local_fleet(fleet_inventory: Inventory,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    """The session's local fleet; stopped at the end, and checked to leave no process."""
    build = tmp_path_factory.mktemp("localfleet")
    started = time.monotonic()
    state = localfleet.up(fleet_inventory, build_dir=build, speed=1.0, templates=TEMPLATES)
    fleet = LocalFleet(inventory=fleet_inventory, state=state,
                       startup_s=time.monotonic() - started)
    try:
        yield fleet
    finally:
        localfleet.down(build)
        left = [p.pid for p in state.processes if is_ours(p.pid, p.start_ticks)]
        assert not left, f"fleet.down left processes running: {left}"
