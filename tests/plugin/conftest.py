"""Helpers for the plugin's self-tests: a project with the reference inventory, emulators.

``project`` lays out a pytester directory as a user's project: ``configs/fleet.yaml`` (the
reference fleet) and ``configs/templates``. ``emulators`` starts vLLM emulators for hosts
of the reference inventory on free ports — with changed flags or fault injection — and
writes an inventory whose addresses point at them, for ``--fleet inventory`` runs that
need no LiteLLM.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore  # noqa: F401  # see below
import pytest
import yaml

from tests.conftest import REFERENCE, TEMPLATES
from vllmfleet import render
from vllmfleet.inventory import Inventory
from vllmfleet.localfleet.facts import emulator_facts
from vllmfleet.localfleet.processes import free_port, spawn, stop, wait_healthy

# httpx imports httpcore lazily and caches its exception classes on first use; pytester
# drops modules imported during a test, so a later test would get a fresh httpcore whose
# ConnectError httpx no longer recognises. Importing it here keeps one httpcore.


@pytest.fixture(autouse=True)
def _no_vllmfleet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs under test see only the options a test gives them."""
    for name in list(os.environ):
        if name.startswith("VLLMFLEET_"):
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A user's project: the reference inventory and templates under configs/."""
    configs = pytester.path / "configs"
    configs.mkdir()
    shutil.copy(REFERENCE, configs / "fleet.yaml")
    shutil.copytree(TEMPLATES, configs / "templates")
    return pytester.path


@dataclass
class Emulators:
    """Emulators of reference hosts; ``inventory()`` writes an inventory pointing at them."""

    folder: Path
    reference: Inventory
    ports: dict[str, int] = field(default_factory=dict)
    proxy_port: int | None = None
    _procs: list[tuple[int, int]] = field(default_factory=list)

    def start(self, host: str, *extra: str, names: Sequence[str] = (),
              as_proxy: bool = False) -> int:
        """Start ``host``'s emulator with its inventory flags plus ``extra``; return the port.

        ``as_proxy``: it stands in for the proxy (a "proxy" that enforces no limit).
        """
        port = free_port()
        args = render.vllm_args(self.reference.hosts[host], bind="127.0.0.1", port=port)
        argv = [sys.executable, "-m", "vllmfleet.emulator", *args,
                *emulator_facts(self.reference, host, launch=args),
                "--emulator-time-scale", "0.05", *extra]
        if names:
            argv += ["--served-model-name", *names]
        log = self.folder / f"{host}-{port}.log"
        proc, ticks = spawn(argv, log=log)
        self._procs.append((proc.pid, ticks))
        wait_healthy(name=f"emulator {host}", proc=proc, url=f"http://127.0.0.1:{port}/health",
                     log=log, timeout_s=30)
        if as_proxy:
            self.proxy_port = port
        else:
            self.ports[host] = port
        return port

    def inventory(self, path: Path) -> Path:
        """The reference inventory with the started hosts (and proxy) on 127.0.0.1."""
        data: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
        for host, port in self.ports.items():
            data["hosts"][host]["address"] = "127.0.0.1"
            data["hosts"][host]["vllm"]["port"] = port
        if self.proxy_port is not None:
            data["hosts"][data["proxy"]["host"]]["address"] = "127.0.0.1"
            data["proxy"]["port"] = self.proxy_port
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def stop(self) -> None:
        stop(self._procs, grace_s=5)


@pytest.fixture
def emulators(tmp_path: Path, reference: Inventory) -> Iterator[Emulators]:
    started = Emulators(folder=tmp_path / "emulators", reference=reference)
    try:
        yield started
    finally:
        started.stop()
