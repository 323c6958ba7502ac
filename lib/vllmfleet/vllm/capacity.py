"""Capacity model: will a host's vLLM config fit in its GPU, and how much KV cache is left?

:func:`estimate` is a pure function of a :class:`CapacityInput` (no inventory, no I/O) so
the emulator can call it at start-up; :mod:`vllmfleet.inventory.plan` builds inputs from
the inventory. The arithmetic follows vLLM V1 as pinned by the fleet (v0.11):

1. ``vllm/v1/worker/gpu_worker.py`` ``init_device``: vLLM measures free memory with
   ``torch.cuda.mem_get_info()`` *after* creating its own CUDA context, and refuses to
   start when it is below ``total x gpu_memory_utilization`` ("Free memory on device …").
   So free at start = VRAM - what the desktop/driver keeps - vLLM's CUDA context.
2. ``determine_available_memory``: KV budget = ``total x gpu_memory_utilization`` -
   (weights + activation peak of a dummy batch of ``max_num_batched_tokens`` tokens +
   non-torch memory that appeared while profiling). Memory of other processes is *not*
   subtracted (since vLLM 0.6.4 the utilisation is per instance).
3. We also subtract CUDA-graph memory. v0.11 captures graphs after allocating the KV
   cache, outside the budget; newer vLLM can profile them into it
   (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``). Subtracting is the conservative choice.
4. ``vllm/v1/core/kv_cache_utils.py``: the budget is cut into 16-token blocks per layer
   (``get_num_blocks``); one request of ``max_model_len`` must fit
   (``check_enough_kv_cache_memory``), else vLLM binary-searches the longest length that
   does (``estimate_max_model_len``) and quotes it in its error.

Every overhead constant below is an ESTIMATE; its comment says where it comes from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from vllmfleet.errors import CapacityError
from vllmfleet.vllm.architecture import Architecture

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
# 2048 on GPUs below 70 GiB (and A100), 8192 on larger ones. V1 always chunks prefill, so
# the profile run (and the activation peak) uses this many tokens, not max_model_len.
DEFAULT_BATCHED_TOKENS = 2048
DEFAULT_BATCHED_TOKENS_LARGE_GPU = 8192
LARGE_GPU_GIB = 70.0
# vLLM's own CUDA context, already "used" when vLLM measures free memory at start.
# ESTIMATE: V1 start-up logs on otherwise idle GPUs show 0.23 GiB (L4, 58 SMs) to 0.6 GiB
# (H200, 132 SMs) used before anything is loaded; it grows with SM count, so consumer
# cards (34-60 SMs) sit at the low end.
CUDA_CONTEXT_GIB = 0.25
# Non-torch memory that appears during profiling (cuBLAS handles, lazily loaded kernels).
# ESTIMATE: V1/V0 logs on one GPU report 0.02-0.26 GiB ("… GiB for non-torch memory").
NON_TORCH_GIB = 0.15
# With tensor parallelism NCCL and the custom all-reduce buffers add to it.
# ESTIMATE: TP logs report 0.74-1.38 GiB per GPU.
NON_TORCH_TP_GIB = 1.0
# Activation peak. ESTIMATE, from the shapes of a decoder layer: during the MLP a dummy
# batch of T tokens holds the residual and normed hidden state (2·h) plus the gate/up output
# and its activation (3·I, split across TP ranks), in the model dtype. The sampler run then
# holds max_num_seqs rows of fp32 logits over the vocabulary a few times (logits, probs,
# logprobs, sort buffers). Plus allocator/compile workspace. Checked against two V0 logs
# ("PyTorch activation peak memory takes …"): 0.74 GiB measured vs 0.83 (Qwen3-4B,
# 10000 tokens) and 0.90 vs 0.71 (Llama-3.2-3B, 2048 tokens, 256 seqs): about ±0.2 GiB.
SAMPLER_LOGIT_COPIES = 5
ACTIVATION_SLACK_GIB = 0.10
# CUDA graphs. vLLM (config/vllm.py _set_cudagraph_sizes) captures sizes
# [1, 2, 4] + range(8, 256, 8) + range(256, max+1, 16) with
# max = min(2 x max_num_seqs, 512, max_num_batched_tokens). ESTIMATE of the cost: logs of
# 7-9B models show 0.35 GiB for 35 sizes (V0) and 0.68 GiB for 51 sizes (V1), about
# 0.4 MiB per layer and size, i.e. 0.3-1 GiB with the default max_num_seqs of 256.
CUDA_GRAPH_MAX_CAPTURE = 512
CUDA_GRAPH_MIB_PER_LAYER_AND_SIZE = 0.4

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

    def __post_init__(self) -> None:
        for name, value in self.flat().items():
            if isinstance(value, bool | str) or value is None:
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
    def batched_tokens(self) -> int:
        """max_num_batched_tokens as vLLM resolves it (its default when not set)."""
        if self.max_num_batched_tokens is not None:
            return self.max_num_batched_tokens
        if self.vram_gib >= LARGE_GPU_GIB:
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
        top = min(2 * self.max_num_seqs, CUDA_GRAPH_MAX_CAPTURE, self.batched_tokens)
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
    """Estimated torch activation peak of vLLM's profile run (see the constants above)."""
    tokens, arch = inp.batched_tokens, inp.architecture
    per_token = 2 * arch.hidden_size + 3 * arch.intermediate_size / inp.tensor_parallel_size
    forward = tokens * per_token * MODEL_DTYPE_BYTES
    sampler = min(inp.max_num_seqs, tokens) * arch.vocab_size * 4 * SAMPLER_LOGIT_COPIES
    return (forward + sampler) / GiB + ACTIVATION_SLACK_GIB


def cuda_graph_gib(inp: CapacityInput) -> float:
    """Estimated CUDA-graph memory: 0 with enforce_eager."""
    sizes = len(inp.cuda_graph_sizes)
    return sizes * inp.architecture.layers * CUDA_GRAPH_MIB_PER_LAYER_AND_SIZE * MiB / GiB


def non_torch_gib(inp: CapacityInput) -> float:
    return NON_TORCH_TP_GIB if inp.tensor_parallel_size > 1 else NON_TORCH_GIB


def estimate(inp: CapacityInput) -> CapacityReport:
    """Predict what vLLM does with ``inp``: its KV budget, capacity, and whether it starts."""
    requested = inp.vram_gib * inp.gpu_memory_utilization
    free = inp.vram_gib - inp.reserved_gib - inp.cuda_context_gib
    weights = inp.weights_gib / inp.tensor_parallel_size
    non_torch, activation, graphs = non_torch_gib(inp), activation_gib(inp), cuda_graph_gib(inp)
    budget = requested - weights - non_torch - activation - graphs
    per_token = kv_bytes_per_token(inp)
    blocks = max(0, int(budget * GiB)) // (BLOCK_SIZE * per_token)
    capacity = blocks * BLOCK_SIZE
    exceeds = requested > free
    fits = (not exceeds and budget > 0 and capacity >= inp.max_model_len
            and inp.max_model_len <= inp.architecture.max_position_embeddings)
    return CapacityReport(
        input=inp, requested_gib=requested, free_at_start_gib=free, exceeds_free=exceeds,
        weights_gib=weights, non_torch_gib=non_torch, activation_gib=activation,
        cuda_graph_gib=graphs, kv_budget_gib=budget, kv_bytes_per_token=per_token,
        kv_capacity_tokens=capacity, fits=fits,
        max_concurrency=blocks / math.ceil(inp.max_model_len / BLOCK_SIZE),
        largest_max_model_len=min(capacity, inp.architecture.max_position_embeddings))
