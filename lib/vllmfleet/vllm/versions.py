"""One table of vLLM version facts: what exists and how it behaves, per release.

The pinned image tag (``vllm/vllm-openai:v0.11.0``) decides the version; everything that
depends on it (the emulator's rules, which flags ``inv validate`` accepts, the planner's
memory model, ``inv fit``) asks :func:`facts_for`.

Each fact's first version and its source are in :data:`FACTS` (``Fact.since`` and
``Fact.source``). SKELETON: the values below are placeholders set by the lead to fix the
API; the issue-10 work verifies each one against vLLM's own source/release notes and
records the source. Do not rely on a value whose ``source`` still says "unverified".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Version = tuple[int, int, int]
Era = Literal["reject-sum", "reject-max-tokens", "clamp"]

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


def version_of_image(image: str) -> Version | None:
    """The vLLM version an image reference pins, or None (no tag, ``latest``, a digest only)."""
    match = _TAG.search(image)
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


# name → Fact. Flag facts are named after the flag ("--max-num-queued-reqs").
FACTS: Final[dict[str, Fact]] = {
    "nested_errors": Fact((0, 10, 0), "unverified"),
    "v1_engine_default": Fact((0, 8, 0), "unverified"),
    "cuda_graphs_in_kv_budget": Fact((0, 21, 0), "unverified"),
    "--max-model-len auto": Fact((0, 14, 0), "unverified"),
    "--max-num-queued-reqs": Fact((0, 29, 0), "unverified"),
    "--max-num-queued-tokens": Fact((0, 29, 0), "unverified"),
    "--kv-cache-memory-bytes": Fact((0, 11, 0), "unverified"),
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

    def has_flag(self, flag: str) -> bool:
        """False only for a flag the table knows and this version lacks."""
        fact = FACTS.get(flag)
        return fact is None or fact.holds(self.version)


def facts_for(version: Version) -> VllmFacts:
    def holds(name: str) -> bool:
        return FACTS[name].holds(version)

    era: Era = ("reject-sum" if version < (0, 10, 0) else
                "reject-max-tokens" if version < (0, 32, 0) else "clamp")
    return VllmFacts(
        version=version, era=era, nested_errors=holds("nested_errors"),
        v1_engine=holds("v1_engine_default"),
        cuda_graphs_in_kv_budget=holds("cuda_graphs_in_kv_budget"),
        default_gpu_memory_utilization=0.9,  # unverified: 0.92 in current vLLM
        auto_fit=holds("--max-model-len auto"),
        queue_bounds=holds("--max-num-queued-reqs"))
