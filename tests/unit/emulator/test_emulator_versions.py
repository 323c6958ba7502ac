"""Length rules and error bodies per emulated vLLM version (the unit, then over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vllmfleet.emulator.versions import (
    LengthError,
    VersionRules,
    parse_version,
    resolve_max_tokens,
)

L = 1000
OLD, CURRENT, CLAMP = VersionRules.of("0.6.3"), VersionRules.of("0.11.0"), VersionRules.of("0.32.0")


def _budget(rules: VersionRules, p: int, m: int | None, *, chat: bool = True) -> int:
    return resolve_max_tokens(rules, prompt_tokens=p, requested=m, max_model_len=L,
                              chat=chat).max_tokens


def _message(rules: VersionRules, p: int, m: int | None, *, chat: bool = True) -> str:
    with pytest.raises(LengthError) as exc:
        _budget(rules, p, m, chat=chat)
    return str(exc.value)


def test_versions_select_eras_and_body_shapes() -> None:
    assert [r.era for r in (OLD, CURRENT, CLAMP)] == ["reject-sum", "reject-max-tokens", "clamp"]
    assert VersionRules.of("0.9.2").era == "reject-sum"
    assert [r.nested_errors for r in (VersionRules.of("0.9.2"), CURRENT)] == [False, True]
    assert parse_version("v0.10.1.post1") == (0, 10, 1)
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        parse_version("nightly")


def test_error_bodies_nested_from_0_10_and_flat_before() -> None:
    assert CURRENT.error_body("boom") == {"error": {"message": "boom", "type": "BadRequestError",
                                                    "param": None, "code": 400}}
    assert OLD.error_body("boom", type_="NotFoundError", code=404) == {
        "object": "error", "message": "boom", "type": "NotFoundError", "param": None,
        "code": 404}


@pytest.mark.parametrize("rules", [OLD, CURRENT, CLAMP], ids=["0.6", "0.11", "0.32"])
def test_defaults_chat_gets_the_rest_completions_get_16(rules: VersionRules) -> None:
    assert _budget(rules, 300, None, chat=True) == L - 300
    assert _budget(rules, 300, None, chat=False) == 16
    assert _budget(rules, 300, 700) == 700  # exactly full is fine in every era


@pytest.mark.parametrize("rules", [OLD, CURRENT, CLAMP], ids=["0.6", "0.11", "0.32"])
def test_max_tokens_below_one_is_rejected(rules: VersionRules) -> None:
    assert _message(rules, 10, 0) == "max_tokens must be at least 1, got 0."


def test_old_rule_rejects_the_sum() -> None:
    assert _message(OLD, 300, 701) == (
        "This model's maximum context length is 1000 tokens. However, you requested 1001 "
        "tokens (300 in the messages, 701 in the completion). Please reduce the length of "
        "the messages or completion.")
    assert "you requested 1000 tokens in the messages" in _message(OLD, 1000, None)
    assert "you requested 1006 tokens (990 in the messages, 16" in _message(OLD, 990, None,
                                                                            chat=False)


def test_current_rule_rejects_max_tokens_and_full_prompts() -> None:
    assert _message(CURRENT, 300, 701) == (
        "'max_tokens' or 'max_completion_tokens' is too large: 701. This model's maximum "
        "context length is 1000 tokens and your request has 300 input tokens "
        "(701 > 1000 - 300).")
    assert _message(CURRENT, 1000, None) == (
        "This model's maximum context length is 1000 tokens. However, your request has 1000 "
        "input tokens. Please reduce the length of the input messages.")


def test_clamp_rule_clamps_and_rejects_only_the_impossible() -> None:
    clamped = resolve_max_tokens(CLAMP, prompt_tokens=300, requested=900, max_model_len=L,
                                 chat=True)
    assert (clamped.max_tokens, clamped.clamped) == (700, True)
    # a text prompt is tokenized only up to L+1 (0.32's renderer): "at least L+1"
    assert "your prompt contains at least 1001 input tokens, which exceeds this limit even " \
           "without any output tokens" in _message(CLAMP, 1500, None)
    # token ids are counted exactly; "at least" only where the count is L+1 itself
    for p, shown in ((1500, "contains 1500 input"), (1001, "contains at least 1001 input")):
        with pytest.raises(LengthError, match=shown) as exc:
            resolve_max_tokens(CLAMP, prompt_tokens=p, requested=None, max_model_len=L,
                               chat=False, token_ids=True)
        assert (exc.value.param, exc.value.value) == ("input_tokens", p)
    with pytest.raises(LengthError, match=r"^max_completion_tokens=1001 cannot") as exc:
        resolve_max_tokens(CLAMP, prompt_tokens=10, requested=1001, max_model_len=L,
                           chat=True, field="max_completion_tokens")
    assert exc.value.param == "max_completion_tokens"
    assert _message(CLAMP, 10, 1001).startswith(
        "max_tokens=1001 cannot be greater than max_model_len=1000")
    assert _message(CLAMP, 1000, None) == "max_tokens must be at least 1, got 0."
    assert _message(CLAMP, 1000, 5) == "max_tokens must be at least 1, got 0."


def _chat(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": content}], **extra})


def _over_http(emulator: Any, version: str, *requests: dict[str, Any]) -> list[Any]:
    async def go() -> list[Any]:
        async with emulator("--emulator-vllm-version", version,
                            "--emulator-output-tokens", "1000") as (_, client):
            words = " ".join(["word"] * 200)  # 200 tokens + 10 for the template
            out = []
            for extra in requests:
                r = await _chat(client, words, **extra)
                out.append((r.status_code, r.json()))
            return out
    return asyncio.run(go())


def test_over_http_current_version_rejects_with_a_nested_body(emulator: Any) -> None:
    (status, body), = _over_http(emulator, "0.11.0", {"max_tokens": 47})
    assert status == 400
    assert body["error"]["message"].startswith("'max_tokens' or 'max_completion_tokens' is "
                                               "too large: 47.")
    assert "(47 > 256 - 210)" in body["error"]["message"]


def test_over_http_clamp_version_clamps_with_finish_reason_length(emulator: Any) -> None:
    (status, body), (s2, b2) = _over_http(emulator, "0.33.0", {"max_tokens": 100},
                                          {"max_tokens": 300})
    assert status == 200
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 210, "completion_tokens": 46, "total_tokens": 256}
    assert s2 == 400 and "max_tokens=300 cannot be greater than max_model_len=256" in \
        b2["error"]["message"]


def test_over_http_old_version_answers_a_flat_body(emulator: Any) -> None:
    (status, body), = _over_http(emulator, "0.6.3", {"max_tokens": 47})
    assert status == 400
    assert body["object"] == "error" and body["code"] == 400
    assert "However, you requested 257 tokens (210 in the messages, 47 in the completion)" \
        in body["message"]
