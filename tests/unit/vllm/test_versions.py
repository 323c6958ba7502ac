"""The one table of vLLM version facts: eras, flags, defaults, and every fact's source."""

from __future__ import annotations

import pytest

from vllmfleet.vllm.versions import (
    FACTS,
    facts_for,
    format_version,
    parse_version,
    version_of_image,
)


@pytest.mark.parametrize(("image", "version"), [
    ("vllm/vllm-openai:v0.11.0", (0, 11, 0)),
    ("vllm/vllm-openai:v0.10.1.post1", (0, 10, 1)),
    ("registry.local:5000/vllm/vllm-openai:0.32.0", (0, 32, 0)),
    ("vllm/vllm-openai:v0.32.0@sha256:" + "a" * 64, (0, 32, 0)),
    ("vllm/vllm-openai:latest", None),
    ("vllm/vllm-openai:nightly", None),
    ("vllm/vllm-openai", None),
    ("registry.local:5000/vllm/vllm-openai", None),
])
def test_the_image_tag_decides_the_version(image: str, version: tuple[int, ...] | None) -> None:
    assert version_of_image(image) == version


@pytest.mark.parametrize(("version", "era", "nested", "suffix", "queue", "gmu"), [
    ("0.6.3", "reject-sum", False, False, False, 0.9),
    ("0.10.0", "reject-max-tokens", False, False, False, 0.9),
    ("0.10.1", "reject-max-tokens", True, False, False, 0.9),
    ("0.11.0", "reject-max-tokens", True, False, False, 0.9),
    ("0.29.0", "reject-max-tokens", True, False, True, 0.9),
    ("0.32.0", "clamp", True, True, True, 0.92),
])
def test_facts_per_version(version: str, era: str, nested: bool, suffix: bool, queue: bool,
                           gmu: float) -> None:
    facts = facts_for(parse_version(version))
    assert (facts.era, facts.nested_errors, facts.validation_suffix, facts.queue_bounds,
            facts.default_gpu_memory_utilization) == (era, nested, suffix, queue, gmu)
    assert facts.has_flag("--max-num-queued-reqs") is queue
    assert facts.known


def test_flags_a_version_lacks() -> None:
    old = facts_for((0, 11, 0))
    assert old.missing_flags(["--max-num-queued-reqs=4", "--seed", "7",
                              "--max-num-queued-tokens", "100"]) == [
        "--max-num-queued-reqs", "--max-num-queued-tokens"]
    assert old.has_flag("--enable-prefix-caching")  # unknown to the table: not refused
    assert facts_for((0, 32, 0)).missing_flags(["--max-num-queued-reqs", "4"]) == []
    assert not facts_for((0, 40, 0)).known and not facts_for((0, 4, 0)).known


def test_every_fact_names_its_source_and_is_consistent() -> None:
    for name, fact in FACTS.items():
        assert fact.source and "unverified" not in fact.source, name
        assert fact.until is None or fact.until > fact.since, name
        assert parse_version(format_version(fact.since)) == fact.since
