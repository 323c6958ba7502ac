"""The emulator's resolved configuration (built by :mod:`vllmfleet.emulator.cli`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vllmfleet.vllm.architecture import ARCHITECTURE_FIELDS as _ARCHITECTURE
from vllmfleet.vllm.architecture import Architecture


@dataclass(frozen=True, kw_only=True)
class GPUFacts:
    """The emulated GPU (per card)."""

    vram_gib: float
    reserved_gib: float = 0.0
    compute_capability: str = "8.9"

    @property
    def capability(self) -> tuple[int, int]:
        major, _, minor = self.compute_capability.partition(".")
        return int(major), int(minor)


#: The model facts the emulator takes, each as an ``--emulator-…`` flag, in order: the
#: :class:`~vllmfleet.vllm.architecture.Architecture`'s fields, then the weights' size.
ARCHITECTURE_FIELDS: tuple[str, ...] = (*_ARCHITECTURE, "weights_gib")


@dataclass(frozen=True, kw_only=True)
class Speed:
    """How fast the emulated GPU is, and how much of real time to spend."""

    time_scale: float = 1.0
    prefill_tps: float = 4000.0
    decode_tps: float = 60.0
    output_tokens: int = 128


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Fault injection."""

    DEFAULT_START_FAILURE: ClassVar[str] = (
        "emulated start-up failure (--emulator-fail-at-start)")

    fail_at_start: str | None = None
    crash_after: int | None = None
    crash_linger_s: float = 1.0
    slow_start_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """Everything one emulator process runs with."""

    model: str
    served_model_names: tuple[str, ...]
    max_model_len: int
    host: str | None = "127.0.0.1"
    port: int = 8000
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None
    max_num_queued_reqs: int | None = None
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    api_keys: tuple[str, ...] = ()
    version: str = "0.11.0"
    log_requests: bool = False
    log_stats: bool = True
    access_log: bool = True
    log_level: str = "info"
    gpu: GPUFacts | None = None
    architecture: Architecture | None = None  # given together with weights_gib
    weights_gib: float | None = None
    speed: Speed = Speed()
    faults: Faults = Faults()
