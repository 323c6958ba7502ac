"""vLLM's launch files: the one list of vLLM flags (:func:`vllm_args`) and the files that carry it.

- ``linux``/``wsl``: a docker compose file, ``<base_dir>/vllm-compose.yaml``;
- ``windows``: the PowerShell launcher ``vllm-launcher.ps1`` and the JSON it reads,
  ``vllm-config.json``;
- ``local``: nothing (the local fleet starts the engine with :func:`vllm_args`).

:func:`launch_args` is the inverse: the vLLM arguments a rendered launch file holds, which a
deploy checks the restarted server against.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from vllmfleet.errors import RenderError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.render.base import (
    MODE_FILE,
    MODE_SCRIPT,
    RenderedFile,
    Templates,
    generated_line,
    remote_join,
    to_json,
)
from vllmfleet.vllm.versions import facts_for, version_of_image

CONTAINER_HF_CACHE = "/root/.cache/huggingface"
COMPOSE_FILE = "vllm-compose.yaml"
LAUNCHER_FILE = "vllm-launcher.ps1"
LAUNCHER_CONFIG = "vllm-config.json"
SECRET_FILE = "vllm.env"
"""The 0600 file on each vLLM host with ``VLLM_API_KEY=<the backend key>`` (never rendered)."""


def vllm_args(host: Host, *, bind: str = "0.0.0.0", port: int | None = None,
              inventory: Inventory | None = None) -> list[str]:
    """The vLLM server arguments of ``host`` (after the image's entrypoint).

    ``bind`` and ``port`` let the local fleet serve on 127.0.0.1 and a free port; every
    other flag is the inventory's, so a local run uses the very same configuration.
    With ``inventory``, the aliases served by ``host`` bound vLLM's own queue where the
    pinned version has the flag (see :func:`max_num_queued_reqs`).
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
    queued = None if inventory is None else max_num_queued_reqs(inventory, host)
    if queued is not None:
        args += ["--max-num-queued-reqs", str(queued)]
    return args + list(v.extra_args)


def max_num_queued_reqs(inventory: Inventory, host: Host) -> int | None:
    """vLLM's ``--max-num-queued-reqs`` for ``host``: what its aliases let the proxy have in
    flight there (each alias's ``concurrency + queue_depth``, summed: a profile keeps its
    own counters): the proxy never sends more, and vLLM itself refuses anything beyond
    (traffic that bypasses the proxy) with 503 at once instead of queueing it. None where
    the pinned version lacks the flag (0.29+, see :data:`vllmfleet.vllm.versions.FACTS`),
    no alias uses the host, or ``extra_args`` already sets it."""
    assert host.vllm is not None
    version = version_of_image(host.vllm.image) if getattr(host.vllm, "image", None) else None
    aliases = inventory.aliases_of(host.name)
    if version is None or not aliases or not facts_for(version).queue_bounds:
        return None
    if any(a.split("=", 1)[0] == "--max-num-queued-reqs" for a in host.vllm.extra_args):
        return None
    return sum(alias.max_parallel for alias in aliases)


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
        "args": vllm_args(host, inventory=inventory),
        "gpu_count": gpus if gpus == "all" else int(gpus),
        "container_hf_cache": CONTAINER_HF_CACHE,
        "remote_path": remote_join(host.base_dir, COMPOSE_FILE),
        "secret_path": remote_join(host.base_dir, SECRET_FILE),
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
        # VLLM_API_KEY=<key> (0600, installed by deploy; vLLM reads it as --api-key): the
        # launcher passes the file to `docker run --env-file` when it exists, never the key
        "env_file": remote_join(host.base_dir, SECRET_FILE),
        "vllm_args": vllm_args(host, inventory=inventory),
    }


def vllm_files(inventory: Inventory, host: Host, templates: Templates) -> list[RenderedFile]:
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


# --- the inverse (flag_value lives in vllmfleet.vllm.args) ---------------------------------

def launch_args(content: bytes, kind: str) -> list[str]:
    """The vLLM server arguments in a rendered compose file or Windows launcher JSON."""
    try:
        if kind == "windows-config":
            data: Any = json.loads(content.decode("utf-8"))
            args = data["vllm_args"]
        else:
            data = yaml.safe_load(content.decode("utf-8"))
            services = data["services"]
            args = next(iter(services.values()))["command"]
    except (UnicodeDecodeError, ValueError, yaml.YAMLError, KeyError, TypeError,
            StopIteration):
        return []
    return [str(a) for a in args] if isinstance(args, list) else []
