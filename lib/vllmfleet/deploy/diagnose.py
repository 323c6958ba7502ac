"""Why did a restarted service not come up? Read its log tail and name the likely cause.

A recognised vLLM out-of-memory message (KV cache too small for max_model_len, no memory
left for the cache blocks, less free memory than gpu_memory_utilization asks for, CUDA
OOM) leads to the capacity planner's figures for the config that was being deployed: the
largest max_model_len that fits, or the largest utilisation vLLM accepts. Other known
messages (a flag vLLM rejects, a max_model_len above the model's, fp8 KV cache on a GPU
without the kernels, a port in use) get a one-line cause and fix.
"""

from __future__ import annotations

import re

from vllmfleet.errors import FleetError
from vllmfleet.inventory import Inventory
from vllmfleet.inventory.plan import input_for
from vllmfleet.vllm import capacity

_VLLM_ESTIMATE = re.compile(r"estimated maximum model length is (\d+)")
_KV_TOO_SMALL = re.compile(r"max seq len \((\d+)\).*larger than the available KV cache",
                           re.DOTALL)
# "Free memory on device (F/T GiB)" and, from 0.10, "… device cuda:0 (F/T GiB)"
_FREE_MEMORY = re.compile(r"Free memory on device(?: [\w:]+)? \(([\d.]+)/([\d.]+) GiB\) on "
                          r"startup is less than desired GPU memory utilization \(([\d.]+)")
_OOM = ("No available memory for the cache blocks", "CUDA out of memory", "OutOfMemoryError")
_OTHER: tuple[tuple[str, str], ...] = (
    (r"is greater than the derived max_model_len",
     "max_model_len is above the model's max_position_embeddings: lower max_model_len "
     "(`inv validate` checks it against the models: catalogue)"),
    (r"unrecognized arguments|error: argument",
     "vLLM rejected a command-line flag: check vllm.extra_args and the image version"),
    (r"fp8e4nv|not supported in this architecture|CUDA arch < 89",
     "the fp8 (e4m3) KV cache needs compute capability 8.9: use kv_cache_dtype fp8_e5m2 "
     "or auto on this GPU"),
    (r"Address already in use|address already in use",
     "the port is taken by another process: stop it or change the port in the inventory"),
    (r"ModuleNotFoundError|ImportError",
     "a Python module is missing: for the proxy, vllmfleet_hooks.py must sit beside the "
     "LiteLLM config"),
)


def _planner(inventory: Inventory, host: str, **overrides: float) -> capacity.CapacityReport | None:
    try:
        return capacity.estimate(input_for(inventory, host, **overrides))
    except FleetError:
        return None


def _kv_diagnosis(log: str, inventory: Inventory, host: str) -> str:
    vllm = inventory.hosts[host].vllm
    report = _planner(inventory, host)
    asked = _KV_TOO_SMALL.search(log)
    own = _VLLM_ESTIMATE.search(log)
    mml = int(asked.group(1)) if asked else (vllm.max_model_len if vllm else 0)
    lines = [f"vLLM ran out of GPU memory for its KV cache: one request of max_model_len "
             f"{mml} does not fit"
             + (f" (vLLM's own estimate of the longest that fits: {own.group(1)} tokens)"
                if own else "") + "."]
    if report is not None and vllm is not None:
        largest = report.largest_max_model_len
        if own:
            largest = min(largest, int(own.group(1)))
        lines.append(f"capacity planner for {host} (gpu_memory_utilization "
                     f"{vllm.gpu_memory_utilization}, kv_cache_dtype {vllm.kv_cache_dtype}): "
                     f"largest max_model_len that fits = {report.largest_max_model_len}.")
        more = ("a higher gpu_memory_utilization" if vllm.kv_cache_dtype.startswith("fp8")
                else "kv_cache_dtype fp8 (half the KV memory) or a higher "
                     "gpu_memory_utilization")
        lines.append(f"fix: set hosts.{host}.vllm.max_model_len to at most {largest} in "
                     f"{inventory.path}, or make room ({more}); `inv plan --host {host}` "
                     "shows the figures.")
    return "\n".join(lines)


def _free_memory_diagnosis(match: re.Match[str], inventory: Inventory, host: str) -> str:
    free, total, asked = match.groups()
    text = (f"vLLM found only {free} of {total} GiB free at start, less than "
            f"gpu_memory_utilization {asked} asks for (the desktop or another process holds "
            "the rest).")
    report = _planner(inventory, host, gpu_memory_utilization=float(asked))
    if report is not None and report.suggested_utilization is not None:
        text += (f"\ncapacity planner for {host}: the largest gpu_memory_utilization that "
                 f"starts is {report.suggested_utilization:.2f}; its largest max_model_len "
                 "is shown by `inv plan`.")
        text += (f"\nfix: set hosts.{host}.vllm.gpu_memory_utilization to at most "
                 f"{report.suggested_utilization:.2f} (and check gpu.reserved_gib against "
                 "nvidia-smi).")
    else:
        text += f"\nfix: lower hosts.{host}.vllm.gpu_memory_utilization or free GPU memory."
    return text


def diagnose(log: str, *, inventory: Inventory, host: str) -> str:
    """A short cause-and-fix text for ``log`` (the failed service's log tail)."""
    if (_VLLM_ESTIMATE.search(log) or _KV_TOO_SMALL.search(log)
            or any(m in log for m in _OOM)) and host in inventory.vllm_hosts:
        return _kv_diagnosis(log, inventory, host)
    free = _FREE_MEMORY.search(log)
    if free and host in inventory.vllm_hosts:
        return _free_memory_diagnosis(free, inventory, host)
    for pattern, cause in _OTHER:
        if re.search(pattern, log):
            return cause
    return "no known cause recognised in the log; read the log tail above"
