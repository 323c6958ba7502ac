"""Start-up checks: what vLLM refuses before serving, and what it logs when it starts.

``config_error`` runs before "loading the model" (vLLM checks these while building its
config); ``capacity`` runs after it (vLLM profiles memory once the weights are loaded) and
applies :mod:`vllmfleet.vllm.capacity`: a config that does not fit gives vLLM's own message,
including the estimated maximum model length; one that fits gives the KV cache size that
drives the emulator's KV-usage gauge and admission.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vllmfleet.emulator.config import EmulatorConfig
from vllmfleet.errors import CapacityError
from vllmfleet.vllm.capacity import CapacityInput, estimate
from vllmfleet.vllm.kernels import FP8_E4M3_MIN_CAPABILITY, QUANT_MIN_CAPABILITY


@dataclass(frozen=True, kw_only=True)
class StartupError:
    """Why vLLM would not start: the exception type and message it logs."""

    kind: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The outcome of the capacity check."""

    kv_capacity_tokens: int
    log_lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: StartupError | None = None


def config_error(cfg: EmulatorConfig) -> StartupError | None:
    """vLLM's refusal of the configuration itself (checked before loading), if any."""
    if cfg.gpu is None or cfg.quantization is None:
        return None
    need = QUANT_MIN_CAPABILITY.get(cfg.quantization)
    have = cfg.gpu.capability
    if need is not None and have < need:
        return StartupError(kind="ValueError", message=(
            f"The quantization method {cfg.quantization} is not supported for the current "
            f"GPU. Minimum capability: {need[0]}{need[1]}. Current capability: "
            f"{have[0]}{have[1]}."))
    return None


def capacity_input(cfg: EmulatorConfig) -> CapacityInput | None:
    """The capacity model's input for ``cfg``, or None without GPU/model facts."""
    if cfg.gpu is None or cfg.architecture is None or cfg.weights_gib is None:
        return None
    return CapacityInput(
        vram_gib=cfg.gpu.vram_gib, reserved_gib=cfg.gpu.reserved_gib,
        gpu_memory_utilization=cfg.gpu_memory_utilization, weights_gib=cfg.weights_gib,
        architecture=cfg.architecture, kv_cache_dtype=cfg.kv_cache_dtype,
        max_model_len=cfg.max_model_len, max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens, enforce_eager=cfg.enforce_eager,
        tensor_parallel_size=cfg.tensor_parallel_size)


def capacity(cfg: EmulatorConfig) -> Capacity:
    """Apply the capacity model to ``cfg`` (see the module docstring)."""
    fallback = cfg.max_model_len * cfg.max_num_seqs
    try:
        inp = capacity_input(cfg)
    except CapacityError as exc:
        return Capacity(kv_capacity_tokens=fallback,
                        error=StartupError(kind="ValueError", message=str(exc)))
    if inp is None:
        return Capacity(kv_capacity_tokens=fallback, warnings=[
            "No GPU or model facts given (--emulator-gpu-vram-gib and the architecture "
            "flags): capacity check skipped; "
            f"KV cache taken as max_model_len x max_num_seqs = {fallback:,} tokens"])
    warnings = []
    assert cfg.gpu is not None
    if cfg.kv_cache_dtype in ("fp8", "fp8_e4m3") and cfg.gpu.capability < FP8_E4M3_MIN_CAPABILITY:
        warnings.append(
            f"kv_cache_dtype {cfg.kv_cache_dtype} (fp8_e4m3) needs compute capability 8.9 in "
            f"vLLM's V1 attention kernels; this GPU has {cfg.gpu.compute_capability}. "
            "Use --kv-cache-dtype fp8_e5m2 (or auto) on it.")
    report = estimate(inp)
    message = report.vllm_error()
    if message is not None or not report.fits:
        return Capacity(kv_capacity_tokens=max(report.kv_capacity_tokens, 1), warnings=warnings,
                        error=StartupError(kind="ValueError",
                                           message=message or "the configuration does not fit"))
    return Capacity(kv_capacity_tokens=report.kv_capacity_tokens,
                    log_lines=report.vllm_log_lines(), warnings=warnings)
