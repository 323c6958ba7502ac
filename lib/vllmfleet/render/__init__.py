"""Render every config file of the fleet from the inventory (``inv render``).

What each host gets (``relpath`` under the output folder → path on the host):

- ``linux``/``wsl`` vLLM host: ``<host>/vllm-compose.yaml`` → ``<base_dir>/vllm-compose.yaml``,
  a docker compose file (``docker compose -f … up -d --force-recreate``); inside WSL for
  ``wsl`` hosts.
- ``windows`` vLLM host: ``<host>/vllm-launcher.ps1`` (verbs Start, Stop, Restart, Status,
  Logs) and ``<host>/vllm-config.json``, which the launcher reads with ``ConvertFrom-Json``;
  both under ``<base_dir>`` (``C:/vllmfleet``).
- ``local`` vLLM host: nothing; the local fleet starts the engine with :func:`vllm_args`.
- the proxy host: the LiteLLM config, ``vllmfleet_limits.json`` and ``vllmfleet_hooks.py``
  in the config's folder, and unless it is ``local`` the systemd unit and the env-file
  template (see :mod:`vllmfleet.render.proxy`).

:func:`vllm_args` is the one list of vLLM flags: the compose file, the Windows launcher,
the emulator and the local fleet all start vLLM with exactly these arguments.
Rendered text carries no timestamps or local paths, so the output is stable (golden files).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vllmfleet.errors import RenderError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.render.base import RenderedFile, Templates
from vllmfleet.render.proxy import limits, litellm_config, proxy_host_files, render_proxy
from vllmfleet.render.vllm import (
    COMPOSE_FILE,
    CONTAINER_HF_CACHE,
    LAUNCHER_CONFIG,
    LAUNCHER_FILE,
    SECRET_FILE,
    launch_args,
    vllm_args,
    vllm_files,
)
from vllmfleet.vllm.args import flag_value  # the inverse of vllm_args, one flag

__all__ = [
    "COMPOSE_FILE",
    "CONTAINER_HF_CACHE",
    "LAUNCHER_CONFIG",
    "LAUNCHER_FILE",
    "SECRET_FILE",
    "RenderedFile",
    "flag_value",
    "launch_args",
    "limits",
    "litellm_config",
    "render_all",
    "render_host",
    "render_proxy",
    "vllm_args",
    "write",
]


def _host_files(inventory: Inventory, host: Host, templates: Templates) -> list[RenderedFile]:
    files = vllm_files(inventory, host, templates)
    if inventory.proxy.host == host.name:
        files += proxy_host_files(inventory, templates=templates)
    return files


def render_host(inventory: Inventory, host_name: str, *,
                templates: Path | None = None) -> list[RenderedFile]:
    """Every file ``host_name`` gets; ``templates`` overrides ``<inventory dir>/templates``."""
    host = inventory.hosts.get(host_name)
    if host is None:
        raise RenderError(f"host {host_name!r} is not in the inventory {inventory.path.name}; "
                          "known hosts: " + ", ".join(inventory.hosts))
    return _host_files(inventory, host, Templates.of(inventory, templates))


def render_all(inventory: Inventory, *, templates: Path | None = None) -> list[RenderedFile]:
    """Every file of every host, in inventory order."""
    env = Templates.of(inventory, templates)
    return [f for host in inventory.hosts.values() for f in _host_files(inventory, host, env)]


def write(files: Iterable[RenderedFile], out_dir: Path) -> list[Path]:
    """Write ``files`` under ``out_dir`` with their modes (atomically, creating folders)."""
    root = out_dir.resolve()
    written = []
    for f in files:
        target = (root / f.relpath).resolve()
        if not target.is_relative_to(root) or target == root:
            raise RenderError(f"{f.relpath!r} (host {f.host!r}) would be written outside "
                              f"{out_dir}; host names must be plain names, e.g. wintermute")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(f.content)
            os.chmod(tmp, f.mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(out_dir / f.relpath)
    return written
