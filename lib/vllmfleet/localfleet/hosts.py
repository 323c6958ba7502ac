"""Deployable hosts on this machine: the ``local`` adapter with services that start exactly
what was deployed — the way the rollback suite deploys to a local fleet.

Each host of an inventory gets a :class:`~vllmfleet.remote.local.LocalAdapter` whose files
live under ``<root>/<host>`` (so ``/opt/vllmfleet/vllm-compose.yaml`` is a real file there)
and whose services read those files on every restart:

- :class:`EmulatedVLLM` — the vLLM "container": the server arguments of the deployed compose
  file (or the Windows launcher's JSON), run by the vLLM emulator bound to 127.0.0.1, with
  the host's GPU facts from a fixed inventory (the hardware does not change with a deploy).
  A config that does not fit exits at start with vLLM's own message, as on a real GPU.
- :class:`LocalLiteLLM` — the proxy "unit": the real LiteLLM on the deployed config.

Both read their deployed env file on each restart, as docker compose's ``env_file`` and
systemd's ``EnvironmentFile`` do (``<workdir>/vllm.env``: VLLM_API_KEY; ``proxy.env_file``:
the backend key the LiteLLM config passes on), so a deployed backend key takes effect.

:func:`localize` writes a copy of an inventory whose hosts are all 127.0.0.1 with free
ports, so its rendered files (the proxy's ``api_base`` included) work here unchanged.
Processes start in their own session and are stopped by PID (:mod:`vllmfleet.localfleet.processes`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from vllmfleet import render
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.localfleet.facts import emulator_facts
from vllmfleet.localfleet.processes import free_port, is_ours, spawn, stop
from vllmfleet.remote import LocalAdapter, LocalService, ServiceName
from vllmfleet.render import launch_args


def localize(inventory: Inventory, folder: Path) -> Path:
    """Write ``folder/<name of the inventory file>``: every host on 127.0.0.1, free ports."""
    data: Any = yaml.safe_load(inventory.path.read_text(encoding="utf-8"))
    for host in data["hosts"].values():
        host["address"] = "127.0.0.1"
        if host.get("vllm"):
            host["vllm"]["port"] = free_port()
    data["proxy"]["port"] = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / inventory.path.name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class _Process:
    """One restartable local process with its log; stopped by PID."""

    def __init__(self, *, log: Path) -> None:
        self.log = log
        self.pid: tuple[int, int] | None = None

    def start(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path) -> None:
        self.stop()
        proc, ticks = spawn(argv, log=self.log, env=env, cwd=cwd)
        self.pid = (proc.pid, ticks)

    def stop(self) -> None:
        if self.pid is not None:
            stop([self.pid], grace_s=5.0)
            self.pid = None

    def is_running(self) -> bool:
        return self.pid is not None and is_ours(*self.pid)

    def logs(self, lines: int) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a deployed env file ({} when it is absent); comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    env = {}
    for line in text.splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            env[name.strip()] = value.strip()
    return env


class EmulatedVLLM(_Process):
    """The vLLM emulator, started from the launch file deployed to a local host."""

    def __init__(self, *, adapter: LocalAdapter, host: Host, facts: Inventory, log: Path,
                 extra: Sequence[str] = ()) -> None:
        super().__init__(log=log)
        self.adapter, self.host, self.facts, self.extra = adapter, host, facts, list(extra)
        if host.platform == "windows":
            self.kind, name = "windows-config", render.LAUNCHER_CONFIG
        else:
            self.kind, name = "vllm-launch", render.COMPOSE_FILE
        self.remote_path = f"{host.base_dir.rstrip('/')}/{name}"
        self.secret_path = f"{host.base_dir.rstrip('/')}/{render.SECRET_FILE}"

    def argv(self) -> list[str]:
        path = self.adapter.path_of(self.remote_path)
        try:
            args = launch_args(path.read_bytes(), self.kind)
        except FileNotFoundError:
            raise LocalFleetError(f"{self.host.name}: {self.remote_path} is not deployed "
                                  f"({path} is missing): deploy it first") from None
        if not args:
            raise LocalFleetError(f"{self.host.name}: {path} holds no vLLM arguments")
        return [sys.executable, "-m", "vllmfleet.emulator", *args, "--host", "127.0.0.1",
                *emulator_facts(self.facts, self.host.name, launch=args), *self.extra]

    def restart(self) -> None:
        env = {**os.environ, **env_file(self.adapter.path_of(self.secret_path)),
               "PYTHONUNBUFFERED": "1"}
        self.start(self.argv(), env=env, cwd=self.adapter.root)


class LocalLiteLLM(_Process):
    """The real LiteLLM proxy on the config deployed to a local host."""

    def __init__(self, *, adapter: LocalAdapter, config_path: str, port: int, key_env: str,
                 key: str, log: Path, env_path: str = "") -> None:
        super().__init__(log=log)
        self.adapter, self.config_path, self.port = adapter, config_path, port
        self.env_path = env_path
        self.key_env, self.key = key_env, key

    def restart(self) -> None:
        config = self.adapter.path_of(self.config_path)
        if not config.is_file():
            raise LocalFleetError(f"{config} is not deployed: deploy the proxy first")
        deployed = env_file(self.adapter.path_of(self.env_path)) if self.env_path else {}
        env = {**os.environ, **deployed, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               self.key_env: self.key,
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
               "PYTHONUNBUFFERED": "1"}
        env.pop("VLLMFLEET_LIMITS", None)  # the limits file beside the hooks is the one
        self.start([sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config),
                    "--host", "127.0.0.1", "--port", str(self.port)], env=env,
                   cwd=config.parent)


class LocalHosts:
    """Every host of a (localized) inventory as a deployable local host; :meth:`close` stops
    every process started. ``adapter`` is an :class:`~vllmfleet.deploy.run.Access` factory."""

    def __init__(self, inventory: Inventory, root: Path, *, key: str,
                 emulator_args: Sequence[str] = ()) -> None:
        self.inventory, self.root, self.key = inventory, root, key
        self.facts = inventory  # GPU and model facts, fixed for the whole run
        self.processes: list[_Process] = []
        self._services: dict[str, dict[ServiceName, LocalService]] = {}
        for name, host in inventory.hosts.items():
            adapter = LocalAdapter(host=name, root=root / name)
            services: dict[ServiceName, LocalService] = {}
            if host.vllm is not None:
                vllm = EmulatedVLLM(adapter=adapter, host=host, facts=self.facts,
                                    log=root / "logs" / f"{name}-vllm.log", extra=emulator_args)
                services["vllm"] = vllm
                self.processes.append(vllm)
            if inventory.proxy.host == name:
                proxy = LocalLiteLLM(adapter=adapter, config_path=inventory.proxy.config_path,
                                     port=inventory.proxy.port,
                                     key_env=inventory.proxy.master_key_env, key=key,
                                     env_path=inventory.proxy.env_file,
                                     log=root / "logs" / f"{name}-litellm.log")
                services["proxy"] = proxy
                self.processes.append(proxy)
            self._services[name] = services

    def adapter(self, host: Host) -> LocalAdapter:
        if host.name not in self._services:
            raise LocalFleetError(f"{host.name} is not a host of {self.inventory.path}")
        return LocalAdapter(host=host.name, root=self.root / host.name,
                            services=self._services[host.name])

    def close(self) -> None:
        for process in self.processes:
            process.stop()

    def describe(self) -> str:
        return json.dumps({p.log.name: p.pid for p in self.processes})
