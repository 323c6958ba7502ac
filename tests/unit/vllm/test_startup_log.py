"""vllm.startup_log: every wording the parser claims, as vLLM prints it.

The lines are real start-up lines as they appear in public vLLM logs (issue threads and
notes quoting them; the version is the one whose source prints that wording, see the module
docstring). Numbers are kept as logged.
"""

from __future__ import annotations

import pytest

from vllmfleet.vllm.startup_log import StartupFigures, parse, refusal

# V0, vLLM 0.6.4-0.6.6 (worker/worker.py "Memory profiling results"), 8 GiB card.
V0_064 = """\
INFO 12-06 11:39:34 model_runner.py:1077] Loading model weights took 2.6419 GB
INFO 12-06 11:39:36 worker.py:232] Memory profiling results: total_gpu_memory=7.92GiB \
initial_memory_usage=3.09GiB peak_torch_memory=3.12GiB memory_usage_post_profile=3.12GiB \
non_torch_memory=0.47GiB kv_cache_size=3.54GiB gpu_memory_utilization=0.90
INFO 12-06 11:39:36 gpu_executor.py:113] # GPU blocks: 1207, # CPU blocks: 1365
INFO 12-06 11:39:36 gpu_executor.py:117] Maximum concurrency for 2048 tokens per request: 9.43x
"""

# V0, vLLM 0.7.x (worker.py "the current vLLM instance can use"), T4-class 16 GB card.
V0_07 = """\
INFO 05-30 06:40:49 model_runner.py:1115] Loading model weights took 2.8884 GB
INFO 05-30 06:40:55 worker.py:267] Memory profiling takes 5.61 seconds
INFO 05-30 06:40:55 worker.py:267] the current vLLM instance can use total_gpu_memory \
(14.56GiB) x gpu_memory_utilization (0.50) = 7.28GiB
INFO 05-30 06:40:55 worker.py:267] model weights take 2.89GiB; non_torch_memory takes 0.01GiB; \
PyTorch activation peak memory takes 2.02GiB; the rest of the memory reserved for KV Cache is \
2.36GiB.
INFO 05-30 06:40:55 executor_base.py:110] # CUDA blocks: 5517, # CPU blocks: 9362
INFO 05-30 06:40:55 executor_base.py:115] Maximum concurrency for 32768 tokens per request: 2.69x
INFO 05-30 06:41:20 model_runner.py:1562] Graph capturing finished in 19 secs, took 0.35 GiB
"""

# Early V1 (0.8.x): the same summary, split over lines, and the KV lines on two lines.
V1_08 = """\
INFO 03-14 09:12:55 [gpu_model_runner.py:1289] Model loading took 14.9888 GiB and 13.204526 seconds
INFO 03-14 09:13:07 [gpu_worker.py:227] Memory profiling takes 11.85 seconds
the current vLLM instance can use total_gpu_memory (79.11GiB) x gpu_memory_utilization (0.90) = 71.20GiB
model weights take 14.99GiB; non_torch_memory takes 0.35GiB; PyTorch activation peak memory takes 1.24GiB;
the rest of the memory reserved for KV Cache is 54.62GiB.
INFO 03-14 09:13:08 [kv_cache_utils.py:566] GPU KV cache size: 447,088 tokens
INFO 03-14 09:13:08 [kv_cache_utils.py:570] Maximum concurrency for 32,768 tokens per request: 13.64x
"""  # noqa: E501

# V1, 0.11+ (gpu_worker.py "Available KV cache memory", format_gib; one joined KV line).
V1_011 = """\
(EngineCore_DP0 pid=212) INFO 10-21 00:34:51 [gpu_model_runner.py:2653] Model loading took 5.3700 GiB memory and 3.1 seconds
(EngineCore_DP0 pid=212) INFO 10-21 00:35:02 [gpu_worker.py:298] Available KV cache memory: 3.79 GiB
(EngineCore_DP0 pid=212) INFO 10-21 00:35:02 [kv_cache_utils.py:1087] GPU KV cache size: 55,184 tokens, Maximum concurrency for 16,384 tokens per request: 3.37x
(EngineCore_DP0 pid=212) INFO 10-21 00:35:09 [gpu_model_runner.py:3480] Graph capturing finished in 7 secs, took 0.43 GiB
"""  # noqa: E501

AUTO_REDUCED = ("INFO Auto-fit max_model_len: reduced from 262144 to 172032 to fit in "
                "available GPU memory (3.01 GiB available for KV cache)")
AUTO_FULL = ("INFO Auto-fit max_model_len: full model context length 1048576 fits in available "
             "GPU memory")
AUTO_ATTN_FREE = ("INFO Auto-fit max_model_len: attention-free model, using derived "
                  "max_model_len=2048")


def test_v0_064_memory_profiling_results() -> None:
    f = parse(V0_064)
    assert (f.weights_gib, f.total_gpu_gib, f.non_torch_gib, f.kv_cache_gib) == (
        2.6419, 7.92, 0.47, 3.54)
    assert f.gpu_memory_utilization == 0.90 and f.requested_gib == 7.13
    assert f.kv_cache_tokens == 1207 * 16
    assert (f.concurrency_len, f.max_concurrency) == (2048, 9.43)


def test_v0_07_summary_blocks_and_graphs() -> None:
    f = parse(V0_07)
    assert (f.total_gpu_gib, f.gpu_memory_utilization, f.requested_gib) == (14.56, 0.50, 7.28)
    assert (f.weights_gib, f.non_torch_gib, f.activation_gib, f.kv_cache_gib) == (
        2.8884, 0.01, 2.02, 2.36)
    assert f.kv_cache_tokens == 5517 * 16 and f.cuda_graph_gib == 0.35
    assert f.max_model_len == 32768


def test_v1_08_two_kv_lines_and_a_summary_split_over_lines() -> None:
    f = parse(V1_08)
    assert f.weights_gib == 14.9888 and f.kv_cache_gib == 54.62 and f.activation_gib == 1.24
    assert (f.kv_cache_tokens, f.concurrency_len, f.max_concurrency) == (447088, 32768, 13.64)


def test_v1_011_joined_kv_line() -> None:
    f = parse(V1_011)
    assert (f.weights_gib, f.kv_cache_gib, f.cuda_graph_gib) == (5.37, 3.79, 0.43)
    assert (f.kv_cache_tokens, f.concurrency_len, f.max_concurrency) == (55184, 16384, 3.37)


@pytest.mark.parametrize(("line", "want"), [
    ("Loading model weights took 12.5523 GB", 12.5523),
    ("Model loading took 0.5151 GiB and 3.479114 seconds", 0.5151),
    ("Model loading took 15.2 GiB memory and 20.1 seconds", 15.2),
])
def test_every_weights_wording(line: str, want: float) -> None:
    assert parse(line).weights_gib == want


@pytest.mark.parametrize("line", ["# GPU blocks: 715, # CPU blocks: 1310",
                                  "# cuda blocks: 715, # CPU blocks: 0",
                                  "# CUDA blocks: 715, # CPU blocks: 9362"])
def test_every_v0_block_wording(line: str) -> None:
    assert parse(line).kv_cache_tokens == 715 * 16


def test_auto_fit_reduced() -> None:
    f = parse(AUTO_REDUCED + "\nGPU KV cache size: 172,032 tokens, Maximum concurrency for "
              "172,032 tokens per request: 1.00x")
    assert (f.auto_fit_from, f.auto_fit_to, f.kv_cache_gib) == (262144, 172032, 3.01)
    assert f.max_model_len == 172032 and f.max_concurrency == 1.0


def test_auto_fit_full_and_attention_free() -> None:
    assert parse(AUTO_FULL).auto_fit_full == 1048576
    assert parse(AUTO_FULL).max_model_len == 1048576
    assert parse(AUTO_ATTN_FREE).auto_fit_full == 2048


def test_auto_fit_and_kv_line_in_032_wording() -> None:
    # vLLM 0.32 (installed source, v1/core/kv_cache_utils.py _auto_fit_max_model_len and
    # update_kv_cache_capacity)
    reduced = parse("Auto-fit max_model_len: reduced from 131072 to 49152 to fit in available "
                    "KV cache memory (3.0 GiB GPU)\nGPU KV cache size: 49,152 tokens, Maximum "
                    "concurrency for 49,152 tokens per request: 1.00x")
    assert (reduced.auto_fit_to, reduced.kv_cache_gib, reduced.kv_cache_tokens) == (
        49152, 3.0, 49152)
    full = parse("Auto-fit max_model_len: full model context length 32768 fits in available KV "
                 "cache memory (5.5 GiB GPU)")
    assert (full.auto_fit_full, full.kv_cache_gib) == (32768, 5.5)
    assert parse("GPU + host KV cache size: 1,024 tokens").kv_cache_tokens == 1024


def test_the_last_start_wins() -> None:
    text = V1_011 + V1_011.replace("55,184", "60,000").replace("3.79 GiB", "4.10 GiB")
    f = parse(text)
    assert (f.kv_cache_tokens, f.kv_cache_gib) == (60000, 4.10)


def test_nothing_known_is_empty_and_round_trips() -> None:
    assert parse("INFO Uvicorn running on http://0.0.0.0:8000").empty
    f = parse(V1_011)
    assert StartupFigures.from_json(f.to_json() | {"unknown": 1}) == f


def test_v02x_memory_summary_line() -> None:
    # a 2026 backport of 0.2x on an RTX 3090 (wtdcode/vllm-backport#34)
    line = ("(Worker_PP1_TP3 pid=4365) INFO 08-31 15:25:55 [gpu_worker.py:805] Free memory on "
            "device (22.93/23.56 GiB) on startup. Desired GPU memory utilization is (0.935, "
            "22.03 GiB). Actual usage is 19.47 GiB for consumed memory (weights + non-torch), "
            "0.6 GiB for peak activation, and 0.1 GiB for CUDAGraph memory. Replace "
            "gpu_memory_utilization config with `--kv-cache-memory=1828800984` (1.7 GiB) to fit "
            "into requested memory, or `--kv-cache-memory=2798683648` (2.61 GiB) to fully "
            "utilize gpu memory. Current kv cache memory in use is 1.95 GiB.")
    f = parse(line)
    assert (f.free_at_start_gib, f.total_gpu_gib, f.gpu_memory_utilization) == (22.93, 23.56, 0.935)
    assert (f.activation_gib, f.cuda_graph_gib, f.kv_cache_gib) == (0.6, 0.1, 1.95)
    assert refusal(line) is None  # an INFO line, not the refusal


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    # 0.10+: the device named (vllm/v1/worker/gpu_worker.py)
    "ValueError: Free memory on device cuda:0 (6.96/8.0 GiB) on startup is less than desired "
    "GPU memory utilization (0.9, 7.2 GiB). Decrease GPU memory utilization or reduce GPU "
    "memory used by other processes.",
    # 0.8-0.9: no device name
    "ValueError: Free memory on device (6.96/8.0 GiB) on startup is less than desired GPU "
    "memory utilization (0.9, 7.2 GiB). Decrease GPU memory utilization or reduce GPU memory "
    "used by other processes.",
])
def test_free_memory_refusal(line: str) -> None:
    r = refusal("(EngineCore pid=253) " + line)
    assert r is not None and r.kind == "free-memory"
    assert (r.free_gib, r.total_gib, r.utilization) == (6.96, 8.0, 0.9)
    assert parse(line).free_at_start_gib == 6.96


@pytest.mark.parametrize("spelling", ["models's", "model's"])
def test_kv_too_small_v1_with_estimate(spelling: str) -> None:
    r = refusal(f"ValueError: To serve at least one request with the {spelling} max seq len "
                "(118000), (6.30 GiB KV cache is needed, which is larger than the available KV "
                "cache memory (6.11 GiB). Based on the available memory, the estimated maximum "
                "model length is 114432. Try increasing `gpu_memory_utilization` or decreasing "
                "`max_model_len` when initializing the engine.")
    assert r is not None and r.kind == "kv-too-small"
    assert (r.max_model_len, r.needed_gib, r.available_gib, r.estimated_max_model_len) == (
        118000, 6.30, 6.11, 114432)


def test_kv_too_small_v1_without_estimate() -> None:
    r = refusal("To serve at least one request with the models's max seq len (4096), (0.58 GiB "
                "KV cache is needed, which is larger than the available KV cache memory "
                "(0.01 GiB). Try increasing `gpu_memory_utilization`")
    assert r is not None and r.estimated_max_model_len is None and r.max_model_len == 4096


def test_kv_too_small_v0_names_the_capacity() -> None:
    r = refusal("ValueError: The model's max seq len (65536) is larger than the maximum number "
                "of tokens that can be stored in KV cache (26816). Try increasing "
                "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the "
                "engine.")
    assert r is not None and (r.max_model_len, r.estimated_max_model_len) == (65536, 26816)


def test_no_kv_memory_and_cannot_auto_fit() -> None:
    no_kv = refusal("ValueError: No available memory for the cache blocks. Try increasing "
                    "`gpu_memory_utilization` when initializing the engine.")
    assert no_kv is not None and no_kv.kind == "no-kv-memory"
    cannot = refusal("ValueError: Cannot auto-fit max_model_len: not enough GPU memory "
                     "available to serve even a single token. Try increasing "
                     "`gpu_memory_utilization`.")
    assert cannot is not None and cannot.kind == "cannot-auto-fit"


def test_oom_during_graph_capture_is_told_apart() -> None:
    capture = ("INFO Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 45%\n"
               "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.")
    graph = refusal(capture)
    assert graph is not None and graph.kind == "cuda-graph-oom"
    load = refusal("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 270.00 MiB.")
    assert load is not None and load.kind == "cuda-oom"


def test_a_clean_start_has_no_refusal() -> None:
    assert refusal(V1_011) is None and refusal("") is None
