"""vLLM's kernels: which GPU (compute capability) each quantization and KV-cache dtype needs,
and which checkpoint format a quantization loads.

Facts from vLLM's source; each comment names the place.
"""

from __future__ import annotations

# Minimum compute capability of vLLM's quantization kernels (vllm/model_executor/layers/
# quantization/*: get_min_capability()). awq_marlin/gptq_marlin need Ampere (8.0).
QUANT_MIN_CAPABILITY: dict[str, tuple[int, int]] = {
    "awq": (7, 5), "awq_marlin": (8, 0), "gptq": (6, 0), "gptq_marlin": (8, 0), "fp8": (8, 0),
}
# vLLM's V1 attention backends implement an fp8_e4m3 KV cache only on Ada/Hopper (8.9+).
FP8_E4M3_MIN_CAPABILITY = (8, 9)

def weight_format(quantization: str | None) -> str:
    """The weights_gib key for a quantization: marlin kernels load the same checkpoints."""
    if quantization is None:
        return "bf16"
    return {"awq_marlin": "awq", "gptq_marlin": "gptq"}.get(quantization, quantization)
