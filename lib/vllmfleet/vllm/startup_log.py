"""Read what vLLM reports when it starts (or refuses to): every version's wording.

:func:`parse` turns a log (a start-up's lines, any prefix such as ``INFO 12-06 11:39:36
[worker.py:232]`` or ``(EngineCore_DP0 pid=268)``) into :class:`StartupFigures`; a figure
vLLM did not print is None. :func:`refusal` names why a start failed, with the figures a
fix needs. The wordings, by the vLLM source that prints them:

- weights: ``Loading model weights took %.4f GB`` (V0 ``worker/model_runner.py``, 0.4-0.9;
  "GB" although it divides by 2**30); ``Model loading took %.4f GiB and %.6f seconds`` (V1
  ``v1/worker/gpu_model_runner.py``, 0.8-0.10) and ``Model loading took %s GiB memory and
  %.6f seconds`` (0.11+).
- V0 profiling, 0.6.4-0.6.6 (``worker/worker.py``): ``Memory profiling results:
  total_gpu_memory=%.2fGiB initial_memory_usage=… peak_torch_memory=… non_torch_memory=%.2fGiB
  kv_cache_size=%.2fGiB gpu_memory_utilization=%.2f``; 0.7-0.9 (V0 ``worker.py`` and early V1
  ``gpu_worker.py``): ``the current vLLM instance can use total_gpu_memory (%.2fGiB) x
  gpu_memory_utilization (%.2f) = %.2fGiB`` / ``model weights take %.2fGiB; non_torch_memory
  takes %.2fGiB; PyTorch activation peak memory takes %.2fGiB; the rest of the memory
  reserved for KV Cache is %.2fGiB.``
- V1 0.9+: ``Available KV cache memory: %.2f GiB`` (``%s GiB`` via ``format_gib`` later).
- blocks: V0 ``executor/gpu_executor.py`` / ``executor_base.py``: ``# GPU blocks: %d, # CPU
  blocks: %d`` (``# cuda blocks`` / ``# CUDA blocks`` from 0.7); tokens = blocks x 16.
- V1 ``v1/core/kv_cache_utils.py``: ``GPU KV cache size: {tokens:,} tokens`` and
  ``Maximum concurrency for {len:,} tokens per request: %.2fx`` on two lines (0.8 to at
  least 0.26, as logged), one line joined by ", " in 0.32 (``update_kv_cache_capacity``,
  "%s KV cache size" with the device name, "GPU" on CUDA, "+ host" with a host pool); V0
  0.6.x prints the concurrency line without thousands separators.
- graphs: ``Graph capturing finished in %.0f secs, took %.2f GiB`` (V0 and V1).
- ``--max-model-len auto`` (``_auto_fit_max_model_len``): ``Auto-fit max_model_len: reduced
  from %d to %d to fit in available GPU memory (%s GiB available for KV cache)`` and ``…: full
  model context length %d fits in available GPU memory`` (0.14-0.2x); in 0.32 ``… to fit in
  available KV cache memory (%s GiB GPU)`` and ``… fits in available KV cache memory (%s
  GiB GPU)``; ``…: attention-free model, using
  derived max_model_len=%d`` and the refusal ``Cannot auto-fit max_model_len: not enough GPU
  memory available to serve even a single token.``
- 0.2x, one INFO line after graph capture: ``Free memory on device (%s/%s GiB) on startup.
  Desired GPU memory utilization is (%s, %s GiB). Actual usage is %s GiB for consumed memory
  (weights + non-torch), %s GiB for peak activation, and %s GiB for CUDAGraph memory. …
  Current kv cache memory in use is %s GiB.``
- refusals: ``Free memory on device (%s/%s GiB) on startup is less than desired GPU memory
  utilization (%s, %s GiB)`` (``cuda:0`` before the parenthesis from 0.10); V1 ``To serve at
  least one request with the models's max seq len (%d), (%.2f GiB KV cache is needed, which
  is larger than the available KV cache memory (%.2f GiB). Based on the available memory,
  the estimated maximum model length is %d.`` ("model's" from 0.11); V0 ``The model's max seq
  len (%d) is larger than the maximum number of tokens that can be stored in KV cache (%d).``;
  ``No available memory for the cache blocks``; torch's ``CUDA out of memory`` (during
  ``Capturing CUDA graph`` / ``Capturing cudagraphs`` when it follows those lines).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

# V0 and V1 cut the KV cache into 16-token blocks on CUDA (CacheConfig.block_size default).
BLOCK_SIZE: Final = 16
_NUM = r"([\d,]+)"
_FLOAT = r"(-?[\d.]+)"


def _num(text: str) -> int:
    return int(text.replace(",", ""))


@dataclass(frozen=True, kw_only=True)
class StartupFigures:
    """What one start printed; None where it printed nothing (GiB as vLLM reports them)."""

    weights_gib: float | None = None
    total_gpu_gib: float | None = None
    gpu_memory_utilization: float | None = None
    requested_gib: float | None = None
    non_torch_gib: float | None = None
    activation_gib: float | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    concurrency_len: int | None = None
    cuda_graph_gib: float | None = None
    free_at_start_gib: float | None = None
    auto_fit_from: int | None = None
    auto_fit_to: int | None = None
    auto_fit_full: int | None = None

    @property
    def max_model_len(self) -> int | None:
        """The length vLLM settled on, as its lines show it (auto-fit, else concurrency's)."""
        return self.auto_fit_to or self.auto_fit_full or self.concurrency_len

    @property
    def empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartupFigures:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


RefusalKind = Literal["free-memory", "kv-too-small", "no-kv-memory", "cannot-auto-fit",
                      "cuda-graph-oom", "cuda-oom"]


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why vLLM did not start, with the figures of its message (None where it gave none)."""

    kind: RefusalKind
    line: str
    estimated_max_model_len: int | None = None
    max_model_len: int | None = None
    needed_gib: float | None = None
    available_gib: float | None = None
    free_gib: float | None = None
    total_gib: float | None = None
    utilization: float | None = None


_WEIGHTS = (re.compile(r"Loading model weights took " + _FLOAT + r" GB"),
            re.compile(r"Model loading took " + _FLOAT + r" GiB"),
            re.compile(r"model weights take " + _FLOAT + r" ?GiB"))
_CAN_USE = re.compile(r"can use total_gpu_memory \(" + _FLOAT + r" ?GiB\) x "
                      r"gpu_memory_utilization \(" + _FLOAT + r"\) = " + _FLOAT + r" ?GiB")
_SPLIT = re.compile(r"non_torch_memory takes " + _FLOAT + r" ?GiB;\s*PyTorch activation peak "
                    r"memory takes " + _FLOAT + r" ?GiB;\s*the rest of the memory reserved "
                    r"for KV Cache is " + _FLOAT + r" ?GiB")
_RESULTS_064 = re.compile(r"Memory profiling results: total_gpu_memory=" + _FLOAT + r"GiB.*?"
                          r"peak_torch_memory=" + _FLOAT + r"GiB.*?non_torch_memory=" + _FLOAT
                          + r"GiB kv_cache_size=" + _FLOAT + r"GiB gpu_memory_utilization="
                          + _FLOAT, re.DOTALL)
_AVAILABLE = re.compile(r"Available KV cache memory: " + _FLOAT + r" GiB")
_KV_TOKENS = re.compile(r"[A-Z]+(?: \+ host)? KV cache size: " + _NUM + r" tokens")
_BLOCKS = re.compile(r"# (?:GPU|cuda|CUDA) blocks: (\d+)")
_CONCURRENCY = re.compile(r"Maximum concurrency for " + _NUM + r" tokens per request: "
                          + _FLOAT + r"x")
_GRAPHS = re.compile(r"Graph capturing finished in [\d.]+ secs?, took " + _FLOAT + r" GiB")
_FIT_REDUCED = re.compile(r"Auto-fit max_model_len: reduced from (\d+) to (\d+) to fit in "
                          r"available (?:GPU|KV cache) memory(?: \(" + _FLOAT + r" GiB)?")
_FIT_FULL = re.compile(r"Auto-fit max_model_len: (?:full model context length (\d+) fits|"
                       r"attention-free model, using derived max_model_len=(\d+))"
                       r"(?: in available KV cache memory \(" + _FLOAT + r" GiB)?")
_FREE = re.compile(r"Free memory on device(?: [\w:]+)? \(" + _FLOAT + r"/" + _FLOAT
                   + r" GiB\) on startup is less than desired GPU memory utilization \("
                   + _FLOAT + r", " + _FLOAT + r" GiB\)")
_KV_SMALL_V1 = re.compile(r"max seq len \((\d+)\), \(" + _FLOAT + r" GiB KV cache is needed, "
                          r"which is larger than the available KV cache memory \(" + _FLOAT
                          + r" GiB\)")
_ESTIMATE = re.compile(r"the estimated maximum model length is (\d+)")
_KV_SMALL_V0 = re.compile(r"max seq len \((\d+)\) is larger than the maximum number of\s+"
                          r"tokens that can be stored in KV cache \((\d+)\)")
# 0.2x (gpu_worker.py, after graph capture): the whole split on one INFO line.
_SUMMARY = re.compile(r"Free memory on device(?: [\w:]+)? \(" + _FLOAT + r"/" + _FLOAT
                      + r" GiB\) on startup\. Desired GPU memory utilization is \(" + _FLOAT
                      + r", " + _FLOAT + r" GiB\)\. Actual usage is " + _FLOAT
                      + r" GiB for consumed memory \(weights \+ non-torch\), " + _FLOAT
                      + r" GiB for peak activation, and " + _FLOAT + r" GiB for CUDAGraph "
                      r"memory\..*?Current kv cache memory in use is " + _FLOAT + r" GiB")
_NO_KV = "No available memory for the cache blocks"
_CANNOT_FIT = "Cannot auto-fit max_model_len"
_OOM = re.compile(r"CUDA out of memory|OutOfMemoryError")
_CAPTURE = re.compile(r"Capturing CUDA graph|Capturing cudagraphs|Capturing CUDA graphs")


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def parse(text: str) -> StartupFigures:
    """The figures of the last start in ``text`` (later lines win over earlier ones)."""
    values: dict[str, Any] = {}
    for pattern in _WEIGHTS:
        if (m := _last(pattern, text)) is not None:
            values["weights_gib"] = float(m[1])
            break
    if (m := _last(_CAN_USE, text)) is not None:
        values.update(total_gpu_gib=float(m[1]), gpu_memory_utilization=float(m[2]),
                      requested_gib=float(m[3]))
    if (m := _last(_SPLIT, text)) is not None:
        values.update(non_torch_gib=float(m[1]), activation_gib=float(m[2]),
                      kv_cache_gib=float(m[3]))
    if (m := _last(_RESULTS_064, text)) is not None:
        util = float(m[5])
        values.update(total_gpu_gib=float(m[1]), non_torch_gib=float(m[3]),
                      kv_cache_gib=float(m[4]), gpu_memory_utilization=util,
                      requested_gib=round(float(m[1]) * util, 2))
    if (m := _last(_AVAILABLE, text)) is not None:
        values["kv_cache_gib"] = float(m[1])
    if (m := _last(_KV_TOKENS, text)) is not None:
        values["kv_cache_tokens"] = _num(m[1])
    elif (m := _last(_BLOCKS, text)) is not None:
        values["kv_cache_tokens"] = int(m[1]) * BLOCK_SIZE
    if (m := _last(_CONCURRENCY, text)) is not None:
        values.update(concurrency_len=_num(m[1]), max_concurrency=float(m[2]))
    if (m := _last(_GRAPHS, text)) is not None:
        values["cuda_graph_gib"] = float(m[1])
    if (m := _last(_FIT_REDUCED, text)) is not None:
        values.update(auto_fit_from=int(m[1]), auto_fit_to=int(m[2]))
        if m[3] is not None and "kv_cache_gib" not in values:
            values["kv_cache_gib"] = float(m[3])
    if (m := _last(_FIT_FULL, text)) is not None:
        values["auto_fit_full"] = int(m[1] or m[2])
        if m[3] is not None and "kv_cache_gib" not in values:
            values["kv_cache_gib"] = float(m[3])
    if (m := _last(_FREE, text)) is not None:
        values["free_at_start_gib"] = float(m[1])
        values.setdefault("total_gpu_gib", float(m[2]))
    if (m := _last(_SUMMARY, text)) is not None:
        values.update(free_at_start_gib=float(m[1]), total_gpu_gib=float(m[2]),
                      gpu_memory_utilization=float(m[3]), requested_gib=float(m[4]),
                      activation_gib=float(m[6]), cuda_graph_gib=float(m[7]),
                      kv_cache_gib=float(m[8]))
    return StartupFigures(**values)


def refusal(text: str) -> Refusal | None:
    """Why the start in ``text`` failed, or None when no known refusal is in it."""
    if (m := _last(_FREE, text)) is not None:
        return Refusal(kind="free-memory", line=m[0], free_gib=float(m[1]),
                       total_gib=float(m[2]), utilization=float(m[3]))
    if _CANNOT_FIT in text:
        return Refusal(kind="cannot-auto-fit", line=_CANNOT_FIT)
    if (m := _last(_KV_SMALL_V1, text)) is not None:
        estimate = _last(_ESTIMATE, text)
        return Refusal(kind="kv-too-small", line=m[0], max_model_len=int(m[1]),
                       needed_gib=float(m[2]), available_gib=float(m[3]),
                       estimated_max_model_len=int(estimate[1]) if estimate else None)
    if (m := _last(_KV_SMALL_V0, text)) is not None:
        # V0 names the KV capacity in tokens: that is its largest max_model_len.
        return Refusal(kind="kv-too-small", line=m[0], max_model_len=int(m[1]),
                       estimated_max_model_len=int(m[2]))
    if (m := _last(_ESTIMATE, text)) is not None:
        return Refusal(kind="kv-too-small", line=m[0], estimated_max_model_len=int(m[1]))
    if _NO_KV in text:
        return Refusal(kind="no-kv-memory", line=_NO_KV)
    if (m := _last(_OOM, text)) is not None:
        capture = _last(_CAPTURE, text)
        during_capture = capture is not None and capture.start() < m.start()
        return Refusal(kind="cuda-graph-oom" if during_capture else "cuda-oom", line=m[0])
    return None
