"""The integration tests' fixtures: one real local fleet, the test sshd, the docker shim.

- ``local_fleet``: one fleet for the whole session — an emulator per vLLM host and a real
  LiteLLM, started from the reference inventory plus two probe aliases (see
  fleetkit.PROBES), stopped at the end of the session and checked to leave no process behind.
- ``sshd_server``: a throw-away OpenSSH server on 127.0.0.1 (see sshd.py), one per session.
- ``docker_shim``: ``docker`` on that sshd's PATH, whose containers are the vLLM emulator
  (see docker_host.py and docker_shim.py), for one test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import TEMPLATES
from tests.integration.docker_host import DockerShim, install_shim
from tests.integration.fleetkit import LocalFleet, inventory_with_probes
from tests.integration.sshd import Sshd, SshdError, start_sshd
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


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A running test sshd (session scope), stopped by PID at the end of the session."""
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdError as exc:
        pytest.fail(f"cannot start the test sshd: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _docker_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerShim]:
    shim = DockerShim(state=tmp_path_factory.mktemp("docker"))
    try:
        yield shim
    finally:
        shim.stop_all()


@pytest.fixture
def docker_shim(sshd_server: Sshd, _docker_state: DockerShim) -> Iterator[DockerShim]:
    """The shim installed as ``docker`` for one test (other tests may install their own);
    every container still running afterwards is stopped."""
    script = install_shim(sshd_server, _docker_state)
    try:
        yield _docker_state
    finally:
        _docker_state.stop_all()
        script.unlink(missing_ok=True)
