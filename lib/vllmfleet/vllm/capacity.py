"""Capacity model: will a host's vLLM config fit in its GPU, and how much KV cache is left?

:func:`estimate` is a pure function of a :class:`CapacityInput` (no inventory, no I/O) so
the emulator can call it at start-up; :mod:`vllmfleet.inventory.plan` builds inputs from
the inventory. The arithmetic follows the vLLM version the input names
(``vllm_version``, from the pinned image; None = the newest the version table knows), as
:func:`vllmfleet.vllm.versions.facts_for` describes it:

1. Free memory at start (``gpu_worker.py`` ``init_device``): vLLM measures free memory
   after creating its CUDA context and refuses to start when it is below ``total x
   gpu_memory_utilization`` ("Free memory on device …"). Free at start = ``vram_gib`` - what
   the desktop/driver keeps - vLLM's CUDA context.
2. KV budget (``determine_available_memory``): ``total x gpu_memory_utilization`` -
   (weights + activation peak of the profile run + non-torch memory). Memory of other
   processes is not subtracted (the utilisation is per instance since 0.6.4).
3. The profile run: V1 chunks prefill, so it runs ``max_num_batched_tokens`` tokens (2048 by
   default; 8192 on GPUs of 70 GiB or more except A100s). V0 (before 0.8) ran
   ``max(max_model_len, 2048)`` tokens in one batch unless chunked prefill was on (by default
   above 32K tokens, then 512 tokens in 0.6.x and 2048 later) — so on V0 the activation
   peak, and the fit, grow with max_model_len (vllm#10517: 20k and 35k start on a 3090, 29k
   does not).
4. CUDA graphs: before 0.21 vLLM captures them *after* sizing the KV cache, outside the
   budget: they do not shrink the KV cache but must fit in what is free beyond the
   requested share (else "CUDA out of memory" during capture). From 0.21 their memory is
   profiled into the budget (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` default on).
5. ``vllm/v1/core/kv_cache_utils.py``: the budget is cut into 16-token blocks per layer
   (``get_num_blocks``); one request of ``max_model_len`` must fit
   (``check_enough_kv_cache_memory``), else vLLM binary-searches the longest length that
   does (``estimate_max_model_len``) and quotes it in its error.

``vram_gib`` is the memory the driver reports to CUDA — vLLM's logged ``total_gpu_memory``
(``torch.cuda.mem_get_info`` total) — not the card's nominal size: nothing is subtracted
from it. Nominal sizes over-state it by 0.1-1.4 GiB (logged: 8 GB cards 7.92, RTX 3090
23.58, RTX 4090 23.65, T4 14.56, A100-80GB 79.15-79.25, H200 139.80).

Every overhead constant below is an ESTIMATE; its comment says where it comes from, and
``benchmarks/calibration.py`` measures the whole model against real start-up logs
(:mod:`vllmfleet.vllm.calibration`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from vllmfleet.errors import CapacityError
from vllmfleet.vllm.architecture import Architecture
from vllmfleet.vllm.versions import Version, VllmFacts, facts_for, format_version

GiB = 1 << 30
MiB = 1 << 20

# vLLM's KV block size on CUDA (CacheConfig.block_size default, 16 tokens).
BLOCK_SIZE = 16
# Bytes per KV element. "auto" = the model dtype: bf16/fp16 checkpoints, and AWQ/GPTQ
# checkpoints run activations and KV in fp16, so 2 bytes. fp8* stores 1 byte.
MODEL_DTYPE_BYTES = 2
KV_DTYPE_BYTES: dict[str, int] = {
    "auto": MODEL_DTYPE_BYTES, "bfloat16": 2, "float16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1,
}
# Default max_num_batched_tokens of the OpenAI server in V1 (EngineArgs.get_batch_defaults):
# 8192 on GPUs of 70 GiB or more whose name does not contain "A100", else 2048 (the code
# tests ``device_memory >= 70 GiB and "a100" not in device_name``). V1 always chunks
# prefill, so the profile run (and the activation peak) uses this many tokens.
DEFAULT_BATCHED_TOKENS = 2048
DEFAULT_BATCHED_TOKENS_LARGE_GPU = 8192
LARGE_GPU_GIB = 70.0
# V0 (vllm/config.py SchedulerConfig): without chunked prefill max_num_batched_tokens =
# max(max_model_len, 2048); the OpenAI server turned chunked prefill on by default above
# 32K tokens (arg_utils: "Chunked prefill is enabled by default for models with
# max_model_len > 32K"), with max_num_batched_tokens=512 in 0.6.x (logged by 0.6.4.post1)
# and 2048 from 0.7 (ESTIMATE: the 0.7 default is not verified against a log).
V0_CHUNKED_ABOVE = 32768
V0_CHUNKED_TOKENS_06 = 512
V0_CHUNKED_TOKENS = 2048
# vLLM's own CUDA context, already "used" when vLLM measures free memory at start.
# ESTIMATE: V1 start-up logs on otherwise idle GPUs show 0.23 GiB (L4, 58 SMs) to 0.6 GiB
# (H200, 132 SMs) used before anything is loaded; it grows with SM count, so consumer
# cards (34-60 SMs) sit at the low end.
CUDA_CONTEXT_GIB = 0.25
# Non-torch memory that appears during profiling (cuBLAS handles, lazily loaded kernels).
# ESTIMATE: single-GPU logs of the calibration corpus report 0.01-0.73 GiB (one 1.79),
# median 0.2; desktop cards with a display attached sit at 0.35-0.47.
NON_TORCH_GIB = 0.25
# With tensor parallelism NCCL and the custom all-reduce buffers add to it.
# ESTIMATE: TP logs report 0.74-1.38 GiB per GPU.
NON_TORCH_TP_GIB = 1.0
# Activation peak. ESTIMATE, from the shapes of a decoder layer: during the MLP a dummy
# batch of T tokens holds the residual and normed hidden state (2·h) plus the gate/up output
# and its activation (3·I, split across TP ranks), in the model dtype. The sampler run then
# holds max_num_seqs rows of fp32 logits over the vocabulary a few times (logits, probs,
# logprobs, sort buffers). Plus allocator/compile workspace. The peak is the larger of the
# two, not their sum: the forward's buffers are freed before the sampler runs (V0 logs of
# Llama-3.1-8B at 20000 and 29000 tokens: 2.07 and 2.99 GiB logged, a slope of the forward
# term alone; Qwen2.5-1.5B at 32768 tokens: 2.02 logged, 1.93 estimated). Checked against
# the corpus (vllmfleet.vllm.calibration): about ±0.2 GiB.
SAMPLER_LOGIT_COPIES = 5
ACTIVATION_SLACK_GIB = 0.10
# Where the activation estimate is known to run low, a documented margin is added (and
# the report warns): ESTIMATES from the calibration corpus and the logs.
# - multimodal models: the profile run also encodes dummy images (Qwen2-VL-7B, V0: 1.16 GiB
#   logged against 1.4 GiB text-only estimate at 8192 tokens, but V1 profiles the vision
#   encoder separately; one false "fits" in the corpus) -> 0.5 GiB.
# - MoE models: the fused-MoE kernels' workspace grows with tokens x experts -> 1.5 GiB
#   (Qwen3-30B-A3B-FP8, 128 experts, V1 0.13, 2048 tokens: 2.83 GiB of non-KV memory beyond
#   the weights logged against 1.07 estimated without margin; one case, the corpus's only
#   MoE: a margin fitted to it, not validated by another).
# - max_num_seqs above 256 (H100 defaults of 1024): sampler buffers scale with it -> 0.25 GiB
#   per extra 256 sequences.
MULTIMODAL_MARGIN_GIB = 0.5
MOE_MARGIN_GIB = 1.5
LARGE_SEQS = 256
LARGE_SEQS_MARGIN_GIB = 0.25
# CUDA graphs. vLLM (config/vllm.py _set_cudagraph_sizes) captures sizes
# [1, 2, 4] + range(8, 256, 8) + range(256, max+1, 16) with
# max = min(2 x max_num_seqs, 512, max_num_batched_tokens). ESTIMATE of the cost: logs show
# a near-constant 0.24-0.65 GiB whatever the model size (0.35 GiB for 35 sizes on V0 7-9B,
# 0.54 phi-1.5 and 0.24 Llama-3.2-1B on V0, 0.43-0.51 GiB for 51+35 sizes on V1 1.5-9B,
# 0.03 GiB for 4 sizes): a base plus a share per capture size, not a per-layer cost.
CUDA_GRAPH_MAX_CAPTURE = 512
CUDA_GRAPH_BASE_GIB = 0.02
CUDA_GRAPH_GIB_PER_SIZE = 0.009

_MAY_BE_ZERO = ("reserved_gib", "cuda_context_gib")


@dataclass(frozen=True, kw_only=True)
class CapacityInput:
    """Everything the capacity model needs about one vLLM server (per GPU where it matters)."""

    vram_gib: float
    reserved_gib: float
    gpu_memory_utilization: float
    weights_gib: float
    architecture: Architecture
    kv_cache_dtype: str
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    cuda_context_gib: float = CUDA_CONTEXT_GIB
    vllm_version: Version | None = None
    gpu_name: str = ""
    multimodal: bool = False
    moe: bool = False
    # weights + activation + non-torch (+ graphs from 0.21) as a start on this host logged
    # them (requested share minus the KV cache): replaces the estimates when set
    measured_non_kv_gib: float | None = None

    def __post_init__(self) -> None:
        for name, value in self.flat().items():
            if isinstance(value, bool | str | tuple) or value is None:
                continue
            may_be_zero = name in _MAY_BE_ZERO
            if value < 0 or (value == 0 and not may_be_zero):
                must = "at least 0" if may_be_zero else "more than 0"
                raise CapacityError(f"capacity input {name}={value!r} is out of range: "
                                    f"it must be {must}")
        if self.gpu_memory_utilization > 1:
            raise CapacityError(f"capacity input gpu_memory_utilization="
                                f"{self.gpu_memory_utilization!r} must be a fraction in (0, 1]")
        if self.kv_cache_dtype not in KV_DTYPE_BYTES:
            raise CapacityError(f"capacity input kv_cache_dtype={self.kv_cache_dtype!r} is not "
                                "known; use one of " + ", ".join(KV_DTYPE_BYTES))

    def flat(self) -> dict[str, Any]:
        """Every input by name, the architecture's facts in its place (``inv plan --json``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out.update(asdict(value) if isinstance(value, Architecture) else {f.name: value})
        return out

    @property
    def facts(self) -> VllmFacts | None:
        """The version table's facts for ``vllm_version`` (None: model the newest)."""
        return facts_for(self.vllm_version) if self.vllm_version is not None else None

    @property
    def v1_engine(self) -> bool:
        return self.facts is None or self.facts.v1_engine

    @property
    def graphs_in_budget(self) -> bool:
        """Whether CUDA-graph memory comes out of the KV budget (vLLM 0.21+)."""
        return self.facts is None or self.facts.cuda_graphs_in_kv_budget

    @property
    def batched_tokens(self) -> int:
        """The tokens of vLLM's profile run: max_num_batched_tokens as the version resolves
        it (see the module docstring, point 3)."""
        if self.max_num_batched_tokens is not None:
            return self.max_num_batched_tokens
        if not self.v1_engine:
            if self.max_model_len > V0_CHUNKED_ABOVE:
                old = self.vllm_version is not None and self.vllm_version < (0, 7, 0)
                return V0_CHUNKED_TOKENS_06 if old else V0_CHUNKED_TOKENS
            return max(self.max_model_len, DEFAULT_BATCHED_TOKENS)
        if self.vram_gib >= LARGE_GPU_GIB and "a100" not in self.gpu_name.lower():
            return DEFAULT_BATCHED_TOKENS_LARGE_GPU
        return DEFAULT_BATCHED_TOKENS

    @property
    def kv_heads_per_gpu(self) -> int:
        """KV heads one GPU holds: vLLM splits them across TP ranks, replicating if fewer."""
        return max(1, self.architecture.kv_heads // self.tensor_parallel_size)

    @property
    def cuda_graph_sizes(self) -> list[int]:
        """The batch sizes vLLM captures CUDA graphs for (empty with enforce_eager)."""
        if self.enforce_eager:
            return []
        top = min(2 * self.max_num_seqs, CUDA_GRAPH_MAX_CAPTURE,
                  self.batched_tokens if self.v1_engine else CUDA_GRAPH_MAX_CAPTURE)
        sizes = [s for s in (1, 2, 4) if s <= top]
        sizes += list(range(8, min(top + 1, 256), 8))
        sizes += list(range(256, top + 1, 16))
        return sizes


@dataclass(frozen=True, kw_only=True)
class CapacityReport:
    """The outcome of :func:`estimate` for one server; GiB figures are per GPU."""

    input: CapacityInput
    requested_gib: float
    free_at_start_gib: float
    exceeds_free: bool
    weights_gib: float
    non_torch_gib: float
    activation_gib: float
    cuda_graph_gib: float
    kv_budget_gib: float
    kv_bytes_per_token: int
    kv_capacity_tokens: int
    fits: bool
    max_concurrency: float
    largest_max_model_len: int
    graphs_in_budget: bool = True
    graph_headroom_short: bool = False
    margin_gib: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def too_long_for_model(self) -> bool:
        return self.input.max_model_len > self.input.architecture.max_position_embeddings

    @property
    def kv_budget_bytes(self) -> int:
        return int(self.kv_budget_gib * GiB)

    @property
    def kv_needed_bytes(self) -> int:
        """KV memory one request of max_model_len needs (whole blocks), as vLLM computes it."""
        blocks = math.ceil(self.input.max_model_len / BLOCK_SIZE)
        return blocks * BLOCK_SIZE * self.kv_bytes_per_token

    @property
    def suggested_utilization(self) -> float | None:
        """When vLLM would refuse to start: the largest gpu_memory_utilization (2 decimals)
        it accepts that also leaves room for the CUDA graphs, which v0.11 captures after
        the KV cache, outside the requested share. None when it starts as configured."""
        if not self.exceeds_free:
            return None
        vram, room = self.input.vram_gib, self.free_at_start_gib - self.cuda_graph_gib
        k = max(0, math.floor(room * 100 / vram + 1e-9))
        while k > 0 and vram * k / 100 > room:
            k -= 1
        return k / 100

    def vllm_error(self) -> str | None:
        """vLLM's own start-up error for this config (v0.11 wording), or None if it starts."""
        inp = self.input
        if self.too_long_for_model:
            return (f"User-specified max_model_len ({inp.max_model_len}) is greater than the "
                    f"derived max_model_len (max_position_embeddings="
                    f"{inp.architecture.max_position_embeddings} or model_max_length=None in "
                    "model's config.json). This may lead to incorrect model outputs or CUDA "
                    "errors. To allow overriding this maximum, set the env var "
                    "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1")
        if self.exceeds_free:
            # vLLM formats these with round(x, 2), not "%.2f": 12.0, not 12.00.
            free, total = round(float(self.free_at_start_gib), 2), round(float(inp.vram_gib), 2)
            return (f"Free memory on device ({free}/{total} GiB) on startup is less than desired "
                    f"GPU memory utilization ({float(inp.gpu_memory_utilization)}, "
                    f"{round(float(self.requested_gib), 2)} GiB). Decrease GPU memory "
                    "utilization or reduce GPU memory used by other processes.")
        available = self.kv_budget_bytes
        if available <= 0:
            return ("No available memory for the cache blocks. Try increasing "
                    "`gpu_memory_utilization` when initializing the engine.")
        needed = self.kv_needed_bytes
        if needed > available:
            estimated = ""
            if self.largest_max_model_len > 0:
                estimated = ("Based on the available memory, the estimated maximum model "
                             f"length is {self.largest_max_model_len}.")
            return ("To serve at least one request with the models's max seq len "
                    f"({inp.max_model_len}), ({needed / GiB:.2f} GiB KV cache is needed, "
                    "which is larger than the available KV cache memory "
                    f"({available / GiB:.2f} GiB). {estimated} Try increasing "
                    "`gpu_memory_utilization` or decreasing `max_model_len` when "
                    "initializing the engine.")
        return None

    def vllm_log_lines(self) -> list[str]:
        """The KV lines vLLM logs when it starts (none when it does not)."""
        if not self.fits:
            return []
        return [f"GPU KV cache size: {self.kv_capacity_tokens:,} tokens",
                f"Maximum concurrency for {self.input.max_model_len:,} tokens per request: "
                f"{self.max_concurrency:.2f}x"]


def kv_bytes_per_token(inp: CapacityInput) -> int:
    """K and V, every layer, this GPU's KV heads: 2 x layers x heads x head_dim x bytes."""
    return (2 * inp.architecture.layers * inp.kv_heads_per_gpu * inp.architecture.head_dim
            * KV_DTYPE_BYTES[inp.kv_cache_dtype])


def activation_gib(inp: CapacityInput) -> float:
    """Estimated torch activation peak of vLLM's profile run (see the constants above),
    without the margins of :func:`margins`."""
    tokens, arch = inp.batched_tokens, inp.architecture
    per_token = 2 * arch.hidden_size + 3 * arch.intermediate_size / inp.tensor_parallel_size
    forward = tokens * per_token * MODEL_DTYPE_BYTES
    sampler = min(inp.max_num_seqs, tokens) * arch.vocab_size * 4 * SAMPLER_LOGIT_COPIES
    return max(forward, sampler) / GiB + ACTIVATION_SLACK_GIB


def margins(inp: CapacityInput) -> tuple[float, list[str]]:
    """The documented activation margins for ``inp`` and a warning for each."""
    total, warnings = 0.0, []
    if inp.multimodal:
        total += MULTIMODAL_MARGIN_GIB
        warnings.append(f"multimodal model: the activation estimate runs low (the profile run "
                        f"also encodes images); {MULTIMODAL_MARGIN_GIB} GiB margin added")
    if inp.moe:
        total += MOE_MARGIN_GIB
        warnings.append(f"mixture-of-experts model: the activation estimate runs low (fused-"
                        f"MoE workspace); {MOE_MARGIN_GIB} GiB margin added")
    if inp.max_num_seqs > LARGE_SEQS:
        extra = LARGE_SEQS_MARGIN_GIB * math.ceil((inp.max_num_seqs - LARGE_SEQS) / LARGE_SEQS)
        total += extra
        warnings.append(f"max_num_seqs {inp.max_num_seqs} > {LARGE_SEQS}: the activation "
                        f"estimate runs low; {extra} GiB margin added")
    return total, warnings


def cuda_graph_gib(inp: CapacityInput) -> float:
    """Estimated CUDA-graph memory (near-constant, see the constants): 0 with enforce_eager."""
    sizes = len(inp.cuda_graph_sizes)
    return CUDA_GRAPH_BASE_GIB + sizes * CUDA_GRAPH_GIB_PER_SIZE if sizes else 0.0


def non_torch_gib(inp: CapacityInput) -> float:
    return NON_TORCH_TP_GIB if inp.tensor_parallel_size > 1 else NON_TORCH_GIB


def estimate(inp: CapacityInput) -> CapacityReport:
    """Predict what vLLM does with ``inp``: its KV budget, capacity, and whether it starts."""
    requested = inp.vram_gib * inp.gpu_memory_utilization
    free = inp.vram_gib - inp.reserved_gib - inp.cuda_context_gib
    weights = inp.weights_gib / inp.tensor_parallel_size
    margin, warnings = margins(inp)
    non_torch, graphs = non_torch_gib(inp), cuda_graph_gib(inp)
    activation = activation_gib(inp) + margin
    in_budget = inp.graphs_in_budget
    budget = requested - weights - non_torch - activation - (graphs if in_budget else 0.0)
    if inp.measured_non_kv_gib is not None:
        budget = requested - inp.measured_non_kv_gib
    per_token = kv_bytes_per_token(inp)
    blocks = max(0, int(budget * GiB)) // (BLOCK_SIZE * per_token)
    capacity = blocks * BLOCK_SIZE
    exceeds = requested > free
    # Before 0.21 the graphs are captured after the KV cache took the requested share: they
    # need that much free beyond it, else capture runs out of memory.
    # The activation peak is released before capture, so the graphs may use its room.
    short = not in_budget and not exceeds and requested - activation + graphs > free
    if short:
        version = format_version(inp.vllm_version) if inp.vllm_version else "this version"
        warnings.append(f"vLLM {version} captures CUDA graphs ({graphs:.2f} GiB) after the KV "
                        f"cache: {requested:.2f} GiB requested + graphs is more than the "
                        f"{free:.2f} GiB free at start")
    fits = (not exceeds and not short and budget > 0 and capacity >= inp.max_model_len
            and inp.max_model_len <= inp.architecture.max_position_embeddings)
    return CapacityReport(
        input=inp, requested_gib=requested, free_at_start_gib=free, exceeds_free=exceeds,
        weights_gib=weights, non_torch_gib=non_torch, activation_gib=activation,
        cuda_graph_gib=graphs, kv_budget_gib=budget, kv_bytes_per_token=per_token,
        kv_capacity_tokens=capacity, fits=fits,
        max_concurrency=blocks / math.ceil(inp.max_model_len / BLOCK_SIZE),
        largest_max_model_len=min(capacity, inp.architecture.max_position_embeddings),
        graphs_in_budget=in_budget, graph_headroom_short=short, margin_gib=margin,
        warnings=tuple(warnings))
