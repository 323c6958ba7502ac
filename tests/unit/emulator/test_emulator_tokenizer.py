"""The emulator's tokenizer: cl100k-like counts, exact round trips, a fixed chat overhead."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from vllmfleet.emulator import tokenizer as tok

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "Please summarise the following report in three bullet points.\n\nRevenue grew 12% "
    "year over year to $4.2 billion, driven by strong demand in the data-center segment.",
    "Today such a fleet is run from a Makefile that prints instructions, health checks that "
    "never fail, and test scripts that always pass.",
]


def test_common_english_is_one_token_per_word_and_mark() -> None:
    assert tok.count("The quick brown fox jumps over the lazy dog.") == 10
    assert tok.count("hello world " * 50) == 101  # 100 words and the trailing space


def test_long_words_split_into_chunks_and_digits_in_threes() -> None:
    assert tok.count(" understand") == 1
    assert tok.count(" antidisestablishmentarianism") == 5  # 28 letters: 6-letter chunks
    assert tok.count("1234567") == 3


@pytest.mark.parametrize("text", [*PROSE, "", "  leading and trailing  \n\n",
                                  "naïve café — 日本語のテキスト 🙂🙂", "a_b__c!!!???....",
                                  "x" * 100, "line\r\nbreaks\n\n\n\ttabs"])
def test_decode_of_encode_is_the_text(text: str) -> None:
    assert tok.decode(tok.encode(text)) == text


def test_ids_are_stable_and_unknown_ids_are_refused() -> None:
    assert tok.encode("stable words") == tok.encode("stable words")
    with pytest.raises(tok.UnknownTokenError, match="never produced"):
        tok.decode([999])


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 44, 45, 200])
def test_generated_filler_counts_exactly(n: int) -> None:
    assert tok.count("".join(tok.filler(n))) == n


def test_chat_template_costs_a_fixed_documented_overhead() -> None:
    content = "Hello there"  # 2 tokens
    one = tok.chat_ids([{"role": "user", "content": content}])
    assert len(one) == 1 + (5 + 2) + 4
    two = tok.chat_ids([{"role": "system", "content": content},
                        {"role": "user", "content": [{"type": "text", "text": content}]}])
    assert len(two) == 1 + 2 * (5 + 2) + 4
    assert len(tok.chat_ids([{"role": "user", "content": content}],
                            add_generation_prompt=False)) == 1 + 7


@pytest.mark.parametrize("messages", [[], [{"content": "no role"}],
                                      [{"role": "user", "content": [{"type": "image_url"}]}]])
def test_bad_messages_are_template_errors(messages: list[object]) -> None:
    with pytest.raises(tok.ChatTemplateError):
        tok.chat_ids(messages)


def _cl100k() -> object:
    if importlib.util.find_spec("tiktoken") is None or importlib.util.find_spec("litellm") \
            is None:
        pytest.skip("tiktoken and litellm (its bundled cl100k file) are not installed")
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    cache = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base")
    except Exception as exc:  # no network and no cached file
        pytest.skip(f"cl100k_base is not available offline: {exc}")


def test_counts_track_tiktoken_cl100k_on_prose() -> None:
    enc = _cl100k()
    for text in PROSE:
        ours, theirs = tok.count(text), len(enc.encode(text))  # type: ignore[attr-defined]
        assert 0.85 * theirs <= ours <= 1.0 * theirs, (text, ours, theirs)
