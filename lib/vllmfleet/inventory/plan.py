"""The capacity plan of an inventory: a :class:`~vllmfleet.vllm.capacity.CapacityInput` per vLLM
host (GPU from ``hosts``, architecture and weights from ``models``, flags from ``vllm``), and
:func:`plan` (``inv plan``).
"""

from __future__ import annotations

import difflib
from dataclasses import fields, replace
from typing import Any

from vllmfleet.errors import CapacityError
from vllmfleet.inventory.model import Inventory
from vllmfleet.vllm.architecture import ARCHITECTURE_FIELDS
from vllmfleet.vllm.capacity import CapacityInput, CapacityReport, estimate
from vllmfleet.vllm.kernels import weight_format
from vllmfleet.vllm.versions import version_of_image

# The settings an override may name: the input's own and the architecture's, as in
# CapacityInput.flat().
_FIELDS = [name for f in fields(CapacityInput)
           for name in (ARCHITECTURE_FIELDS if f.name == "architecture" else (f.name,))]


def input_for(inventory: Inventory, host_name: str, **overrides: Any) -> CapacityInput:
    """The :class:`CapacityInput` of an inventory host; ``overrides`` replace single fields."""
    host = inventory.hosts.get(host_name)
    if host is not None and host.vllm is not None and host.cpu is not None:
        raise CapacityError(f"host {host_name!r} is served by vLLM's CPU build: the GPU "
                            "capacity model does not apply (see vllmfleet.inventory.cpu_plan)")
    if host is None or host.vllm is None or host.gpu is None:
        known = ", ".join(inventory.vllm_hosts) or "none"
        why = "is not in hosts:" if host is None else "does not run vLLM"
        raise CapacityError(f"host {host_name!r} {why}; vLLM hosts: {known}")
    for key in overrides:
        if key not in _FIELDS:
            hint = difflib.get_close_matches(key, _FIELDS, n=1)
            raise CapacityError(f"unknown capacity setting {key!r}"
                                + (f"; did you mean {hint[0]!r}?" if hint else ""))
    vllm, gpu = host.vllm, host.gpu
    model = inventory.models.get(vllm.model)
    if model is None:
        raise CapacityError(f"{host_name}: model {vllm.model!r} is not in the models: catalogue")
    fmt = weight_format(vllm.quantization)
    if fmt not in model.weights_gib:
        raise CapacityError(f"{host_name}: models.{model.name}.weights_gib has no {fmt!r} entry "
                            f"for quantization {vllm.quantization!r}; add weights_gib.{fmt}")
    architecture = replace(model.architecture, **{k: v for k, v in overrides.items()
                                                  if k in ARCHITECTURE_FIELDS})
    values: dict[str, Any] = {
        "vram_gib": gpu.vram_gib, "reserved_gib": gpu.reserved_gib,
        "gpu_memory_utilization": vllm.gpu_memory_utilization,
        "weights_gib": model.weights_gib[fmt], "architecture": architecture,
        "kv_cache_dtype": vllm.kv_cache_dtype, "max_model_len": vllm.max_model_len,
        "max_num_seqs": vllm.max_num_seqs, "max_num_batched_tokens": vllm.max_num_batched_tokens,
        "enforce_eager": vllm.enforce_eager, "tensor_parallel_size": vllm.tensor_parallel_size,
        "vllm_version": version_of_image(vllm.image), "gpu_name": gpu.name,
    }
    values.update({k: v for k, v in overrides.items() if k not in ARCHITECTURE_FIELDS})
    return CapacityInput(**values)


def plan(inventory: Inventory, hosts: list[str] | None = None) -> list[tuple[str, CapacityReport]]:
    """One report per GPU vLLM host (all of them, in inventory order, unless ``hosts`` names
    some); CPU hosts have :func:`vllmfleet.inventory.cpu_plan.cpu_plan` instead."""
    names = [n for n, h in inventory.vllm_hosts.items() if h.cpu is None] \
        if hosts is None else hosts
    return [(name, estimate(input_for(inventory, name))) for name in names]
