"""Start-up checks: what vLLM refuses before serving, and what it logs when it starts.

``config_error`` runs before "loading the model" (vLLM checks these while building its
config); ``capacity`` runs after it (vLLM profiles memory once the weights are loaded) and
applies :mod:`vllmfleet.vllm.capacity` for the emulated version: a config that does not fit
gives vLLM's own message, including the estimated maximum model length; one that fits gives
the KV cache size that drives the emulator's KV-usage gauge and admission, and the start-up
lines the emulated version prints, in its wording (:mod:`vllmfleet.vllm.startup_log` reads
them back): the weights, "Available KV cache memory", the auto-fit line for
``--max-model-len auto`` (:data:`AUTO`, on versions that have it), the KV size and
concurrency (two lines, or one from 0.32), and the graph capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from vllmfleet.emulator.config import EmulatorConfig
from vllmfleet.errors import CapacityError
from vllmfleet.vllm.capacity import CapacityInput, CapacityReport, estimate
from vllmfleet.vllm.kernels import FP8_E4M3_MIN_CAPABILITY, QUANT_MIN_CAPABILITY
from vllmfleet.vllm.versions import Version, facts_for, parse_version

#: ``--max-model-len auto`` (or -1) as the emulator's config holds it.
AUTO: Final = -1
# Wording boundaries, from vLLM's source and logs: "Model loading took X GiB memory and"
# from 0.11 (0.10 logs: "GiB and"), format_gib (round to 2) from 0.19 (logged "5.2 GiB");
# the KV size and concurrency joined on one line and auto-fit naming "KV cache memory" in
# 0.32 (installed source; 0.24-0.26 logs still show two lines); V0 before 0.8.
_MEMORY_WORD_FROM: Final[Version] = (0, 11, 0)
_FORMAT_GIB_FROM: Final[Version] = (0, 19, 0)
_JOINED_FROM: Final[Version] = (0, 32, 0)


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
    max_model_len: int | None = None  # what ``auto`` resolved to


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
        max_model_len=(cfg.architecture.max_position_embeddings if cfg.max_model_len == AUTO
                       else cfg.max_model_len), max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens, enforce_eager=cfg.enforce_eager,
        tensor_parallel_size=cfg.tensor_parallel_size, vllm_version=_version(cfg))


def _version(cfg: EmulatorConfig) -> Version | None:
    try:
        return parse_version(cfg.version)
    except ValueError:
        return None


def _gib(value: float, version: Version) -> str:
    """A GiB figure as the version prints it: "%.2f", or format_gib's round(x, 2)."""
    return str(round(value, 2)) if version >= _FORMAT_GIB_FROM else f"{value:.2f}"


def weights_line(cfg: EmulatorConfig, seconds: float) -> str:
    """The line vLLM prints once the weights are loaded, in the emulated version's words."""
    version, weights = _version(cfg) or (0, 11, 0), cfg.weights_gib or 0.0
    if not facts_for(version).v1_engine:
        return f"Loading model weights took {weights:.4f} GB"
    if version < _MEMORY_WORD_FROM:
        return f"Model loading took {weights:.4f} GiB and {seconds:.6f} seconds"
    shown = _gib(weights, version) if version >= _FORMAT_GIB_FROM else f"{weights:.4f}"
    return f"Model loading took {shown} GiB memory and {seconds:.6f} seconds"


def startup_lines(report: CapacityReport, version: Version, *,
                  auto_from: int | None = None) -> list[str]:
    """What the emulated version logs once the KV cache is sized (``report`` fits)."""
    inp, kv = report.input, report.kv_budget_gib
    tokens, mml = report.kv_capacity_tokens, inp.max_model_len
    concurrency = f"{report.max_concurrency:.2f}x"
    if not facts_for(version).v1_engine:
        return [f"# GPU blocks: {tokens // 16}, # CPU blocks: 0",
                f"Maximum concurrency for {mml} tokens per request: {concurrency}"]
    lines = [f"Available KV cache memory: {_gib(kv, version)} GiB"]
    if auto_from is not None:
        joined = version >= _JOINED_FROM
        where = (f"available KV cache memory ({_gib(kv, version)} GiB GPU)" if joined
                 else "available GPU memory")
        if mml >= auto_from:
            lines.append(f"Auto-fit max_model_len: full model context length {auto_from} "
                         f"fits in {where}")
        else:
            tail = "" if joined else f" ({_gib(kv, version)} GiB available for KV cache)"
            lines.append(f"Auto-fit max_model_len: reduced from {auto_from} to {mml} to fit "
                         f"in {where}{tail}")
    size = f"GPU KV cache size: {tokens:,} tokens"
    per = f"Maximum concurrency for {mml:,} tokens per request: {concurrency}"
    lines += [f"{size}, {per}"] if version >= _JOINED_FROM else [size, per]
    if not inp.enforce_eager:
        lines.append(f"Graph capturing finished in 2 secs, took {report.cuda_graph_gib:.2f} GiB")
    return lines


def capacity(cfg: EmulatorConfig) -> Capacity:
    """Apply the capacity model to ``cfg`` (see the module docstring)."""
    fallback = max(cfg.max_model_len, 1) * cfg.max_num_seqs
    if cfg.max_model_len == AUTO and (cfg.gpu is None or cfg.architecture is None
                                      or cfg.weights_gib is None):
        return Capacity(kv_capacity_tokens=1, error=StartupError(kind="ValueError", message=(
            "--max-model-len auto needs the GPU and model facts (--emulator-gpu-vram-gib and "
            "the architecture flags) to size the KV cache")))
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
    version = inp.vllm_version or (0, 11, 0)
    auto_from = None
    if cfg.max_model_len == AUTO:
        if not facts_for(version).auto_fit:
            return Capacity(kv_capacity_tokens=1, warnings=warnings, error=StartupError(
                kind="ValueError", message=(
                    f"argument --max-model-len: invalid value 'auto': vLLM {cfg.version} "
                    "takes an integer (auto-fit came later)")))
        auto_from = inp.architecture.max_position_embeddings
        probe = estimate(replace(inp, max_model_len=auto_from))
        if probe.largest_max_model_len <= 0:
            return Capacity(kv_capacity_tokens=1, warnings=warnings, error=StartupError(
                kind="ValueError", message=(
                    "Cannot auto-fit max_model_len: not enough GPU memory available to serve "
                    "even a single token. Try increasing `gpu_memory_utilization`.")))
        inp = replace(inp, max_model_len=min(auto_from, probe.largest_max_model_len))
    report = estimate(inp)
    warnings += list(report.warnings)
    message = report.vllm_error()
    if message is not None or not report.fits:
        kind = "ValueError"
        if report.graph_headroom_short and message is None:
            kind, message = "torch.OutOfMemoryError", (
                "while Capturing CUDA graphs: CUDA out of memory. Tried to allocate "
                f"{report.cuda_graph_gib:.2f} GiB (the KV cache already holds the requested "
                "share)")
        return Capacity(kv_capacity_tokens=max(report.kv_capacity_tokens, 1), warnings=warnings,
                        error=StartupError(kind=kind,
                                           message=message or "the configuration does not fit"))
    return Capacity(kv_capacity_tokens=report.kv_capacity_tokens,
                    log_lines=startup_lines(report, version, auto_from=auto_from),
                    warnings=warnings, max_model_len=inp.max_model_len)
