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
  template (see :mod:`vllmfleet.render_proxy`).

:func:`vllm_args` is the one list of vLLM flags: the compose file, the Windows launcher,
the emulator and the local fleet all start vLLM with exactly these arguments.
Rendered text carries no timestamps or local paths, so the output is stable (golden files).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vllmfleet.errors import RenderError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.render_base import (
    MODE_FILE,
    MODE_SCRIPT,
    RenderedFile,
    Templates,
    generated_line,
    remote_join,
    to_json,
)
from vllmfleet.render_proxy import limits, litellm_config, proxy_host_files, render_proxy

__all__ = [
    "CONTAINER_HF_CACHE",
    "RenderedFile",
    "limits",
    "litellm_config",
    "render_all",
    "render_host",
    "render_proxy",
    "vllm_args",
    "write",
]

CONTAINER_HF_CACHE = "/root/.cache/huggingface"
COMPOSE_FILE = "vllm-compose.yaml"
LAUNCHER_FILE = "vllm-launcher.ps1"
LAUNCHER_CONFIG = "vllm-config.json"


def vllm_args(host: Host, *, bind: str = "0.0.0.0", port: int | None = None) -> list[str]:
    """The vLLM server arguments of ``host`` (after the image's entrypoint).

    ``bind`` and ``port`` let the local fleet serve on 127.0.0.1 and a free port; every
    other flag is the inventory's, so a local run uses the very same configuration.
    """
    if host.vllm is None:
        raise RenderError(f"host {host.name!r} has no vllm: section, so there is nothing to "
                          "launch; add one or pick a vLLM host")
    v = host.vllm
    args = [
        "--model", v.weights,
        "--served-model-name", v.served_model_name,
        "--host", bind,
        "--port", str(v.port if port is None else port),
        "--max-model-len", str(v.max_model_len),
        "--max-num-seqs", str(v.max_num_seqs),
        "--gpu-memory-utilization", str(v.gpu_memory_utilization),
        "--kv-cache-dtype", v.kv_cache_dtype,
    ]
    if v.quantization is not None:
        args += ["--quantization", v.quantization]
    args += ["--tensor-parallel-size", str(v.tensor_parallel_size)]
    if v.max_num_batched_tokens is not None:
        args += ["--max-num-batched-tokens", str(v.max_num_batched_tokens)]
    if v.enforce_eager:
        args.append("--enforce-eager")
    return args + list(v.extra_args)


def _gpus(host: Host) -> str:
    """Docker's GPU request: ``all``, or a count when the host has more cards than it uses."""
    assert host.vllm is not None
    count = host.gpu.count if host.gpu is not None else 1
    tp = host.vllm.tensor_parallel_size
    return "all" if tp >= count else str(tp)


def _launch_context(inventory: Inventory, host: Host) -> dict[str, Any]:
    assert host.vllm is not None
    gpus = _gpus(host)
    return {
        "generated": generated_line(inventory),
        "host": host,
        "vllm": host.vllm,
        "args": vllm_args(host),
        "gpu_count": gpus if gpus == "all" else int(gpus),
        "container_hf_cache": CONTAINER_HF_CACHE,
        "remote_path": remote_join(host.base_dir, COMPOSE_FILE),
    }


def _windows_config(inventory: Inventory, host: Host) -> dict[str, Any]:
    """What the PowerShell launcher reads (JSON has no comments: ``generated_by`` says it)."""
    assert host.vllm is not None
    v = host.vllm
    return {
        "generated_by": generated_line(inventory),
        "host": host.name,
        "container_name": v.container_name,
        "image": v.image,
        "port": v.port,
        "gpus": _gpus(host),
        "restart": v.restart_policy,
        "hf_cache": v.hf_cache,
        "container_hf_cache": CONTAINER_HF_CACHE,
        "served_model_name": v.served_model_name,
        "health_url": f"http://127.0.0.1:{v.port}/health",
        "vllm_args": vllm_args(host),
    }


def _vllm_files(inventory: Inventory, host: Host, templates: Templates) -> list[RenderedFile]:
    if host.vllm is None or host.platform == "local":
        return []
    name = host.name
    if host.platform == "windows":
        script_path = remote_join(host.base_dir, LAUNCHER_FILE)
        config_path = remote_join(host.base_dir, LAUNCHER_CONFIG)
        context = {"generated": generated_line(inventory), "host": host,
                   "script_path": script_path, "config_name": LAUNCHER_CONFIG}
        return [
            RenderedFile(host=name, relpath=f"{name}/{LAUNCHER_FILE}", remote_path=script_path,
                         content=templates.render("vllm-launcher.ps1.j2", context),
                         mode=MODE_SCRIPT, kind="windows-launcher"),
            RenderedFile(host=name, relpath=f"{name}/{LAUNCHER_CONFIG}", remote_path=config_path,
                         content=to_json(_windows_config(inventory, host)), mode=MODE_FILE,
                         kind="windows-config"),
        ]
    context = _launch_context(inventory, host)
    return [RenderedFile(host=name, relpath=f"{name}/{COMPOSE_FILE}",
                         remote_path=remote_join(host.base_dir, COMPOSE_FILE),
                         content=templates.render("vllm-compose.yaml.j2", context),
                         mode=MODE_FILE, kind="vllm-launch")]


def _host_files(inventory: Inventory, host: Host, templates: Templates) -> list[RenderedFile]:
    files = _vllm_files(inventory, host, templates)
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
