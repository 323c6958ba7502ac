"""Deployable test hosts behind the test sshd: a ``docker`` shim whose containers are the
vLLM emulator (docker_shim.py), and inventories whose hosts reach them.

The ``docker_shim`` fixture (conftest.py) installs ``<sshd root>/bin/docker`` (first on the
sshd sessions' PATH) for one test with :func:`install_shim` and stops every container it
started afterwards, by PID.
:func:`write_inventory` writes a test inventory (next to a copy of the templates): GPU hosts
of platform ``linux`` over the sshd, on free ports, each with its own workdir and container,
and a proxy host of platform ``local`` (the proxy runs on this machine, see
:class:`vllmfleet.localfleet.hosts.LocalHosts`; nothing is ever written to this machine's /etc).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import FLEET_V011, ROOT, TEMPLATES
from tests.integration import docker_shim
from tests.integration.sshd import Sshd
from vllmfleet.inventory import Host, Inventory, load
from vllmfleet.localfleet.facts import emulator_facts
from vllmfleet.localfleet.processes import free_port
from vllmfleet.render import vllm_args

SHIM = Path(docker_shim.__file__)


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
        for pidfile in self.state.glob("*.pid"):
            docker_shim._stop(self.state, pidfile.stem)


def install_shim(sshd: Sshd, shim: DockerShim) -> Path:
    """Install the shim as ``docker`` on the sshd sessions' PATH; return the script."""
    script = sshd.bin_dir / "docker"
    # this checkout's code (the emulator included), not whatever the venv has installed
    path = f"{ROOT / 'lib'}:{ROOT}"
    script.write_text(f"#!/bin/sh\nPYTHONPATH={path} exec {sys.executable} {SHIM} --state "
                      f'{shim.state} "$@"\n')
    script.chmod(0o755)
    return script


# The hosts over sshd start from the 0.11 test fleet (a refused length names vLLM's estimate;
# tests that want auto-fit pin a newer image): the deploy mechanics do not depend on it.
def _vllm(name: str, **changes: Any) -> dict[str, Any]:
    reference = yaml.safe_load(FLEET_V011.read_text())
    vllm = dict(reference["hosts"]["wintermute"]["vllm"])
    vllm.update(port=free_port(), container_name=f"vllm-{name}", start_timeout_s=30)
    vllm.update(changes)
    return vllm


def inventory_data(folder: Path, sshd: Sshd, gpu_hosts: list[str]) -> dict[str, Any]:
    """An inventory (as data): ``gpu_hosts`` over the sshd, a local proxy host ``hub``."""
    reference = yaml.safe_load(FLEET_V011.read_text())
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
        shutil.copytree(TEMPLATES, templates)
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def emulate(shim: DockerShim, inventory: Inventory, *names: str) -> None:
    """Give each host's container its GPU and model facts, as ``inventory`` says now (a later
    change of the inventory file does not change the card)."""
    for name in names or tuple(inventory.vllm_hosts):
        host = inventory.hosts[name]
        assert host.vllm is not None
        facts = emulator_facts(inventory, name, launch=vllm_args(host))
        shim.set_extra(host.vllm.container_name, [*facts, "--emulator-time-scale", "0"])


def compose_path(host: Host) -> Path:
    return Path(host.base_dir) / "vllm-compose.yaml"
