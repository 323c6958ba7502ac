"""Exact-size prompts: counted by the server's /tokenize, whatever its tokenizer does."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import httpx
import pytest

from vllmfleet.client import FleetClient
from vllmfleet.client.prompts import PromptBuilder
from vllmfleet.emulator import tokenizer
from vllmfleet.errors import HostError

Count = Callable[[list[dict[str, str]]], int]


def _builder(count: Count, calls: list[int] | None = None) -> PromptBuilder:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/tokenize"
        body = json.loads(request.content)
        assert body["model"] == "m" and body["add_generation_prompt"] is True
        if calls is not None:
            calls.append(1)
        return httpx.Response(200, json={"count": count(body["messages"]),
                                         "max_model_len": 16384})

    client = FleetClient("http://127.0.0.1:9", transport=httpx.MockTransport(handler))
    return PromptBuilder(client, model="m", host="wintermute")


def _emulator(messages: list[dict[str, str]]) -> int:
    return len(tokenizer.chat_ids(messages))


def _long_words_cost_two(messages: list[dict[str, str]]) -> int:
    """A tokenizer that splits words of 6+ letters in two: not one token per word."""
    words = re.findall(r"[A-Za-z]+", messages[0]["content"])
    return 9 + sum(2 if len(w) >= 6 else 1 for w in words)


@pytest.mark.parametrize("tokens", [11, 12, 500, 10500, 16448])
def test_emulator_counts_exactly_the_requested_tokens(tokens: int) -> None:
    prompt = asyncio.run(_builder(_emulator).build(tokens))
    assert prompt.tokens == tokens
    assert _emulator(prompt.messages) == tokens  # not just what the builder believes


def test_a_tokenizer_with_two_token_words_still_gets_an_exact_count() -> None:
    builder = _builder(_long_words_cost_two)
    for tokens in (40, 41, 1000, 7001):
        prompt = asyncio.run(builder.build(tokens))
        assert _long_words_cost_two(prompt.messages) == tokens


def test_other_seeds_change_the_words_not_the_size_and_reuse_the_solution() -> None:
    calls: list[int] = []
    builder = _builder(_emulator, calls)

    async def go() -> list[str]:
        texts = []
        for seed in range(4):
            prompt = await builder.build(3000, seed=seed)
            assert prompt.tokens == 3000
            texts.append(prompt.messages[0]["content"])
        return texts

    texts = asyncio.run(go())
    assert len(set(texts)) == 4
    assert len(calls) == 1 + 1 + 3  # template overhead, first size, one check per other seed


def test_a_server_without_tokenize_is_named_with_the_fix() -> None:
    client = FleetClient("http://127.0.0.1:9", transport=httpx.MockTransport(
        lambda request: httpx.Response(404, json={"detail": "Not Found"})))
    builder = PromptBuilder(client, model="m", host="motoko")
    with pytest.raises(HostError, match=r"motoko: .*/tokenize answered 404.*no /tokenize"):
        asyncio.run(builder.build(100))


def test_an_unreachable_server_is_reported_as_such() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = FleetClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(HostError, match=r"cannot reach .*/tokenize.*is the server running"):
        asyncio.run(PromptBuilder(client, model="m", host="armitage").build(100))


def test_too_few_tokens_for_the_chat_template_is_refused() -> None:
    overhead = _emulator([{"role": "user", "content": ""}])
    with pytest.raises(HostError, match=f"at least {overhead + 1} tokens"):
        asyncio.run(_builder(_emulator).build(overhead))


def test_a_tokenizer_it_cannot_match_ends_with_the_closest_count() -> None:
    def odd_only(messages: list[dict[str, str]]) -> int:
        n = _emulator(messages)
        return n if n % 2 else n + 1  # never an even count

    with pytest.raises(HostError, match=r"exactly 200 tokens .*closest: (199|201)\)"):
        asyncio.run(_builder(odd_only).build(200))


def _several_per_word(messages: list[dict[str, str]]) -> int:
    """A small-vocabulary tokenizer: a word costs one token per 2 letters (rounded up), a
    capitalised word 2 more, and words are not all one token (a pad "a" is)."""
    words = re.findall(r"[A-Za-z]+", messages[0]["content"])
    return 7 + sum((len(w) + 1) // 2 + (2 if w[0].isupper() else 0) for w in words)


def _pads_cost_two(messages: list[dict[str, str]]) -> int:
    """Words of 3 tokens, pads of 2: no single pad closes a gap of one token."""
    words = re.findall(r"[A-Za-z]+", messages[0]["content"])
    return 5 + sum(2 if w.lower() == "a" else 3 for w in words)


@pytest.mark.parametrize("count", [_several_per_word, _pads_cost_two],
                         ids=["several-per-word", "pads-cost-two"])
def test_several_tokens_per_word_still_give_exact_sizes_for_every_size_and_seed(
        count: Count) -> None:
    # The old search stepped by the average cost per word and oscillated around such targets
    # ("closest: 337" for 336) until its rounds ran out.
    builder = _builder(count)

    async def sweep() -> list[tuple[int, int, int]]:
        wrong = []
        for tokens in [*range(14, 80), 255, 336, 337, 1000, 1999]:
            for seed in range(4):
                calls = builder.calls
                prompt = await builder.build(tokens, seed=seed)
                if count(prompt.messages) != tokens or builder.calls - calls > 12:
                    wrong.append((tokens, seed, builder.calls - calls))
        return wrong

    assert asyncio.run(sweep()) == []
