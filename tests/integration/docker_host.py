"""Deployable test hosts behind the test sshd: a ``docker`` shim whose containers are the
vLLM emulator (docker_shim.py), and inventories whose hosts reach them.

:func:`docker_shim` installs ``<sshd root>/bin/docker`` (first on the sshd sessions'
PATH) for one test and stops every container it started afterwards, by PID.
:func:`write_inventory` writes a test inventory (next to a copy of the templates): GPU hosts
of platform ``linux`` over the sshd, on free ports, each with its own workdir and container,
and a proxy host of platform ``local`` (the proxy runs on this machine, see
:class:`vllmfleet.localfleet.hosts.LocalHosts`; nothing is ever written to this machine's /etc).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sshd import Sshd

from vllmfleet.inventory import Host, Inventory, load
from vllmfleet.localfleet.processes import free_port

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "configs" / "fleet.yaml"
SHIM = Path(__file__).resolve().parent / "docker_shim.py"


@dataclass
class DockerShim:
    """The shim's state folder: PIDs, logs, extra emulator flags, the calls it got."""

    state: Path

    def set_extra(self, container: str, args: list[str]) -> None:
        (self.state / f"{container}.extra.json").write_text(json.dumps(args))

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def restarts(self, container_file: str = "") -> int:
        return sum(1 for c in self.calls() if c.startswith("compose") and container_file in c)

    def stop_all(self) -> None:
        from docker_shim import _stop

        for pidfile in self.state.glob("*.pid"):
            _stop(self.state, pidfile.stem)


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
    script = sshd_server.bin_dir / "docker"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {SHIM} --state {_docker_state.state} "
                      '"$@"\n')
    script.chmod(0o755)
    try:
        yield _docker_state
    finally:
        _docker_state.stop_all()
        script.unlink(missing_ok=True)


def _vllm(name: str, **changes: Any) -> dict[str, Any]:
    reference = yaml.safe_load(REFERENCE.read_text())
    vllm = dict(reference["hosts"]["wintermute"]["vllm"])
    vllm.update(port=free_port(), container_name=f"vllm-{name}", start_timeout_s=30)
    vllm.update(changes)
    return vllm


def inventory_data(folder: Path, sshd: Sshd, gpu_hosts: list[str]) -> dict[str, Any]:
    """An inventory (as data): ``gpu_hosts`` over the sshd, a local proxy host ``hub``."""
    reference = yaml.safe_load(REFERENCE.read_text())
    hosts: dict[str, Any] = {}
    aliases: dict[str, Any] = {}
    for name in gpu_hosts:
        hosts[name] = {
            "address": "127.0.0.1", "platform": "linux", "workdir": str(folder / name),
            "ssh": {"user": sshd.user, "port": sshd.port, "key_file": str(sshd.key_file)},
            "gpu": dict(reference["hosts"]["wintermute"]["gpu"]),
            "vllm": _vllm(name, served_model_name=f"llama-{name}"),
        }
        aliases[f"chat-{name}"] = {"host": name, "max_input_tokens": 7000,
                                   "max_output_tokens": 1024, "tpm": 1000000, "rpm": 1000,
                                   "concurrency": 2, "queue_depth": 4}
    hosts["hub"] = {"address": "127.0.0.1", "platform": "local", "ssh": {"user": sshd.user}}
    proxy = {"host": "hub", "port": free_port(),
             "config_path": "/etc/litellm/config.yaml", "env_file": "/etc/litellm/litellm.env"}
    return {"hosts": hosts, "proxy": proxy, "aliases": aliases,
            "models": {"llama-3.1-8b-instruct": reference["models"]["llama-3.1-8b-instruct"]}}


def write_inventory(folder: Path, data: dict[str, Any]) -> Inventory:
    """Write ``folder/fleet.yaml`` (with ``templates/`` beside it) and load it."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = folder / "templates"
    if not templates.exists():
        shutil.copytree(REPO / "configs" / "templates", templates)
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def emulate(shim: DockerShim, inventory: Inventory, *names: str) -> Path:
    """Give each host's container its GPU facts (a frozen copy of ``inventory``)."""
    facts = inventory.path.parent / "gpu-facts.yaml"
    if not facts.exists():
        shutil.copy(inventory.path, facts)
    for name in names or tuple(inventory.vllm_hosts):
        host = inventory.hosts[name]
        assert host.vllm is not None
        shim.set_extra(host.vllm.container_name,
                       ["--emulator-inventory", str(facts), "--emulator-host", name,
                        "--emulator-time-scale", "0"])
    return facts


def compose_path(host: Host) -> Path:
    return Path(host.base_dir) / "vllm-compose.yaml"
