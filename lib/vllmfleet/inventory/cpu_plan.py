"""What ``inv plan`` can and cannot predict for a host served by vLLM's CPU build.

The GPU capacity model (:mod:`vllmfleet.vllm.capacity`) follows CUDA memory accounting,
which a CPU host does not have. vLLM 0.32.0's CPU worker (``vllm/v1/worker/cpu_worker.py``)
instead:

- reads ``--gpu-memory-utilization`` as the fraction of the machine's memory to reserve
  (``total x fraction``) and refuses to start when less than that is available ("Available
  memory on node … is less than desired CPU memory utilization …");
- sizes the KV cache, after a warm-up forward pass, as that reservation minus the engine
  process's own resident memory at that moment — unless ``--kv-cache-memory-bytes`` (or
  the legacy ``VLLM_CPU_KVCACHE_SPACE`` GiB) fixes it, which also skips the check above.

So the reservation and, with ``--kv-cache-memory-bytes``, the KV cache in tokens are
predictable; the KV cache under the fraction rule and the memory free at start are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllmfleet.errors import CapacityError
from vllmfleet.inventory.model import Inventory
from vllmfleet.vllm.args import flag_value

GiB = 1 << 30
# vLLM's CPU backend runs a checkpoint in bfloat16 unless told otherwise (vLLM 0.32.0: it
# loads a float32 checkpoint into bfloat16 parameters), and the KV cache in the model dtype.
CPU_KV_BYTES = 2
KV_BYTES_FLAG = "--kv-cache-memory-bytes"
_UNITS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True, kw_only=True)
class CPUPlan:
    """The predictable part of a CPU host's memory, and the rest said plainly."""

    host: str
    ram_gib: float
    utilization: float
    kv_bytes_per_token: int
    max_model_len: int
    max_num_seqs: int
    kv_cache_bytes: int | None  # fixed by --kv-cache-memory-bytes, else None

    @property
    def reserved_gib(self) -> float:
        return self.ram_gib * self.utilization

    @property
    def kv_tokens(self) -> int | None:
        return None if self.kv_cache_bytes is None else \
            self.kv_cache_bytes // self.kv_bytes_per_token

    @property
    def fits(self) -> bool | None:
        """One request of max_model_len fits the fixed KV cache; None: not predictable."""
        tokens = self.kv_tokens
        return None if tokens is None else tokens >= self.max_model_len

    def lines(self) -> list[str]:
        out = [f"{self.host}: served by vLLM's CPU build (no GPU): the GPU capacity model "
               "does not apply"]
        tokens = self.kv_tokens
        if tokens is None:
            out.append(f"  reserved at start: {self.ram_gib:g} GiB RAM x {self.utilization:g} "
                       f"= {self.reserved_gib:.2f} GiB (vLLM refuses to start if less is "
                       "available)")
        else:
            out.append(f"  gpu_memory_utilization {self.utilization:g} is not used: "
                       f"{KV_BYTES_FLAG} fixes the KV cache (and skips vLLM's free-memory check)")
        out.append(f"  KV cache per token: {self.kv_bytes_per_token:,} bytes (bfloat16)")
        if tokens is None:
            out.append("  KV cache: NOT PREDICTABLE here: vLLM sizes it at start as the "
                       "reservation minus its own resident memory after a warm-up pass; set "
                       f"{KV_BYTES_FLAG} in extra_args to fix it")
        else:
            verdict = "fits" if self.fits else "DOES NOT FIT"
            out.append(f"  KV cache: {self.kv_cache_bytes:,} bytes ({KV_BYTES_FLAG}) = "
                       f"{tokens:,} tokens; one request of max_model_len "
                       f"{self.max_model_len:,} {verdict}; concurrency at full length "
                       f"{tokens / self.max_model_len:.2f}x")
        out.append("  not predicted: memory free at start on a shared machine, speed")
        return out


def as_json(plan: CPUPlan) -> dict[str, object]:
    """The plan as ``inv plan --json`` prints it (``null``: not predictable)."""
    return {"host": plan.host, "device": "cpu",
            "verdict": {True: "fits", False: "does not fit", None: "not predictable"}[plan.fits],
            "ram_gib": plan.ram_gib, "gpu_memory_utilization": plan.utilization,
            "reserved_gib": None if plan.kv_cache_bytes is not None else plan.reserved_gib,
            "kv_bytes_per_token": plan.kv_bytes_per_token,
            "kv_cache_bytes": plan.kv_cache_bytes, "kv_capacity_tokens": plan.kv_tokens,
            "max_model_len": plan.max_model_len,
            "notes": [line.strip() for line in plan.lines()[1:]]}


def parse_bytes(text: str) -> int:
    """A byte count as vLLM reads it (``human_readable_int``, vLLM 0.32.0
    ``vllm/utils/argparse_utils.py``): ``67108864``, ``64M`` (binary), ``64m`` (decimal)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", text.strip())
    try:
        value = (int(float(match[1]) * _UNITS[match[2]]) if match
                 else int(text.strip()))
    except ValueError:
        raise CapacityError(f"{KV_BYTES_FLAG} {text!r} is not a byte count; write e.g. "
                            "67108864 or 64M") from None
    if value <= 0:
        raise CapacityError(f"{KV_BYTES_FLAG} {text!r} must be positive")
    return value


def cpu_plan(inventory: Inventory, host_name: str) -> CPUPlan:
    """The :class:`CPUPlan` of a ``cpu:`` host of ``inventory``."""
    host = inventory.hosts.get(host_name)
    if host is None or host.vllm is None or host.cpu is None:
        raise CapacityError(f"host {host_name!r} is not a vLLM host with a cpu: section")
    vllm = host.vllm
    model = inventory.models.get(vllm.model)
    if model is None:
        raise CapacityError(f"{host_name}: model {vllm.model!r} is not in the models: catalogue")
    per_token = 2 * model.layers * model.kv_heads * model.head_dim * CPU_KV_BYTES
    fixed = flag_value(vllm.extra_args, KV_BYTES_FLAG)
    try:
        kv_bytes = parse_bytes(fixed) if fixed is not None else None
    except CapacityError as exc:
        raise CapacityError(f"{inventory.path}: hosts.{host_name}.vllm.extra_args: "
                            f"{exc}") from None
    return CPUPlan(host=host_name, ram_gib=host.cpu.ram_gib,
                   utilization=vllm.gpu_memory_utilization, kv_bytes_per_token=per_token,
                   max_model_len=vllm.max_model_len, max_num_seqs=vllm.max_num_seqs,
                   kv_cache_bytes=kv_bytes)
