"""The reference fleet's GPUs and models as capacity inputs, written out by hand so the capacity
tests do not move with configs/fleet.yaml."""

from __future__ import annotations

from dataclasses import replace

from vllmfleet.vllm.architecture import Architecture
from vllmfleet.vllm.capacity import CapacityInput

LLAMA = Architecture(
    layers=32, kv_heads=8, head_dim=128, hidden_size=4096, intermediate_size=14336,
    vocab_size=128256, max_position_embeddings=131072)
QWEN = Architecture(
    layers=28, kv_heads=4, head_dim=128, hidden_size=3584, intermediate_size=18944,
    vocab_size=152064, max_position_embeddings=32768)
WINTERMUTE = CapacityInput(vram_gib=12, reserved_gib=0.8, gpu_memory_utilization=0.92,
                           weights_gib=5.37, kv_cache_dtype="fp8", max_model_len=16384,
                           max_num_seqs=2, cuda_context_gib=0.25, architecture=LLAMA)
ARMITAGE = CapacityInput(vram_gib=8, reserved_gib=0.6, gpu_memory_utilization=0.90,
                         weights_gib=5.20, kv_cache_dtype="fp8", max_model_len=8192,
                         max_num_seqs=1, cuda_context_gib=0.25, architecture=QWEN)
# A card with no desktop on it and room to spare on the free-memory check.
HEADLESS = replace(ARMITAGE, reserved_gib=0.0, gpu_memory_utilization=0.80,
                   kv_cache_dtype="auto", max_model_len=16384)
