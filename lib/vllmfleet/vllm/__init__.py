"""Facts about vLLM, independent of any inventory: the capacity model (VRAM, KV cache, start-up
checks), its presentation, and which GPU each kernel needs.

=================  ================================================================================
architecture       :class:`Architecture`: a model's config.json facts (planner, inventory, emulator)
capacity           :func:`estimate`: weights, overheads, KV budget and capacity, vLLM's start checks
capacity_report    the capacity plan as a table for people and as JSON
kernels            compute capability per quantization / KV-cache dtype; checkpoint formats
=================  ================================================================================
"""
