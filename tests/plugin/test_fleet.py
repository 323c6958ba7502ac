"""The session's fleet object, in-process: endpoints, routes, the early start's hand-over."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_vllmfleet import fleet as fleet_mod
from pytest_vllmfleet.fleet import EarlyStart, Fleet, inventory_endpoints
from vllmfleet.errors import FleetError, LocalFleetError
from vllmfleet.inventory import Endpoints, Inventory


def test_the_real_fleet_is_reached_at_the_inventory_addresses(
        reference: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    endpoints = inventory_endpoints(reference)
    assert endpoints.hosts == {"wintermute": "http://wintermute.lan:8000",
                               "armitage": "http://armitage.lan:8000"}
    assert endpoints.proxy == "http://motoko.lan:4000"
    fleet = Fleet(mode="inventory", inventory=reference, hosts=("wintermute",),
                  endpoints=endpoints, timeout_s=5)
    try:
        with pytest.raises(FleetError, match="set LITELLM_MASTER_KEY to the proxy's master key"):
            fleet.route("wintermute", "proxy")
        direct = fleet.route("wintermute", "direct")
        assert (direct.model, direct.client.base_url) == ("llama31-8b-wintermute",
                                                          "http://wintermute.lan:8000")
        monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-real")
        keyed = Fleet(mode="inventory", inventory=reference, hosts=("wintermute",),
                      endpoints=inventory_endpoints(reference), timeout_s=5)
        proxy = keyed.route("wintermute", "proxy")
        # the main alias, not the burst profile that routes to the same host
        assert (proxy.model, proxy.client.base_url) == ("llama31-8b-wintermute",
                                                        "http://motoko.lan:4000")
        keyed.close()
        with pytest.raises(FleetError, match="'motoko' is not a vLLM host"):
            fleet.client("motoko")
    finally:
        fleet.close()


class _FakeStart:
    """Stands in for localfleet: records stops; ``release`` lets the start finish."""

    def __init__(self, error: Exception | None = None) -> None:
        self.release = threading.Event()
        self.stops = 0
        self.error = error
        self.engines: list[str] = []

    def __call__(self, reference: Inventory, workdir: Path, *, speed: float,
                 engine: str = "emulator") -> tuple[Endpoints, Callable[[], None]]:
        self.engines.append(engine)
        self.release.wait(timeout=10)
        if self.error is not None:
            raise self.error

        def stop() -> None:
            self.stops += 1

        return Endpoints(hosts={}, proxy="http://127.0.0.1:1", key="k"), stop


def test_an_early_start_nobody_claims_is_stopped(reference: Inventory, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeStart()
    monkeypatch.setattr(fleet_mod, "local_endpoints", fake)
    early = EarlyStart(reference, tmp_path, speed=1)
    fake.release.set()
    early.discard()
    assert fake.stops == 1


def test_a_claimed_early_start_is_left_to_its_fixture(reference: Inventory, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeStart()
    monkeypatch.setattr(fleet_mod, "local_endpoints", fake)
    early = EarlyStart(reference, tmp_path, speed=1)
    fake.release.set()
    fleet = fleet_mod.start(mode="local", inventory=reference, hosts=("armitage",),
                            workdir=tmp_path, speed=1, early=early)
    early.discard()
    assert fake.stops == 0
    fleet.close()
    assert fake.stops == 1


def test_an_early_start_failure_reaches_the_fixture(reference: Inventory, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeStart(LocalFleetError("the local fleet did not start: armitage exited"))
    monkeypatch.setattr(fleet_mod, "local_endpoints", fake)
    early = EarlyStart(reference, tmp_path, speed=1)
    fake.release.set()
    with pytest.raises(LocalFleetError, match="armitage exited"):
        early.wait()
    early.discard()
    assert fake.stops == 0


@pytest.mark.parametrize(("proxy_timeout", "client"), [(240, 216.0), (299, 269.1), (10, 9.0)])
def test_inventory_clients_give_up_before_the_proxy(reference: Inventory, proxy_timeout: int,
                                                    client: float) -> None:
    # DESIGN.md: the client timeout stays below the proxy's (request_timeout_s, under 300 s)
    changed = dataclasses.replace(reference, proxy=dataclasses.replace(
        reference.proxy, request_timeout_s=proxy_timeout))
    fleet = fleet_mod.start(mode="inventory", inventory=changed, hosts=("wintermute",),
                            workdir=None, speed=1.0)
    try:
        assert fleet.timeout_s == pytest.approx(client)
        assert fleet.timeout_s < proxy_timeout
        read_timeout = fleet.client("wintermute")._http.timeout.read
        assert read_timeout is not None and read_timeout < proxy_timeout
    finally:
        fleet.close()


def test_the_engine_reaches_the_local_fleet(reference: Inventory, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeStart()
    fake.release.set()
    monkeypatch.setattr(fleet_mod, "local_endpoints", fake)
    early = EarlyStart(reference, tmp_path, speed=1, engine="vllm")
    early.wait()
    fleet_mod.start(mode="local", inventory=reference, hosts=("armitage",), workdir=tmp_path,
                    speed=1, engine="vllm").close()
    assert fake.engines == ["vllm", "vllm"]
    early.discard()
