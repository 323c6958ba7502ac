"""What the emulator answers like vLLM 0.32 since issue 10 (real answers: the differential test).

n > 1, sampling-parameter validation with ``param`` and the " (parameter=X, value=V)" suffix
(0.32) or without them (0.11), logprobs, the unknown-model message, max_completion_tokens,
/v1/responses, the clamp-era wording, and streaming with n.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.unit.emulator.conftest import sse_events

V32 = ("--emulator-vllm-version", "0.32.0")
V11 = ("--emulator-vllm-version", "0.11.0")
HI = [{"role": "user", "content": "hello world"}]


def _post(emulator: Any, flags: tuple[str, ...], *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def go() -> list[Any]:
        async with emulator(*flags) as (_, client):
            return [await client.post(path, json=body) for path, body in calls]
    return asyncio.run(go())


def _chat(**body: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": "m", "messages": HI, **body}


@pytest.mark.parametrize(("extra", "message", "param"), [
    ({"temperature": -1}, "temperature must be non-negative, got -1.0. "
     "(parameter=temperature, value=-1.0)", "temperature"),
    ({"temperature": 2.5}, "temperature must be in [0, 2], got 2.5. "
     "(parameter=temperature, value=2.5)", "temperature"),
    ({"top_p": 0}, "top_p must be in (0, 1], got 0.0. (parameter=top_p, value=0.0)", "top_p"),
    ({"top_k": -2}, "top_k must be 0 (disable), or at least 1, got -2.", None),
    ({"presence_penalty": 3}, "presence_penalty must be in [-2, 2], got 3.0.", None),
    ({"n": 0}, "n must be at least 1, got 0.", None),
    ({"max_tokens": 0}, "max_tokens must be at least 1, got 0. "
     "(parameter=max_tokens, value=0)", "max_tokens"),
    ({"top_logprobs": 2}, "when using `top_logprobs`, `logprobs` must be set to true. "
     "(parameter=top_logprobs)", "top_logprobs"),
])
def test_sampling_validation_as_0_32_answers_it(emulator: Any, extra: dict[str, Any],
                                                message: str, param: str | None) -> None:
    (r,) = _post(emulator, V32, _chat(**extra))
    assert r.status_code == 400
    assert r.json()["error"] == {"message": message, "type": "BadRequestError",
                                 "param": param, "code": 400}


def test_0_11_has_no_suffix_and_no_param(emulator: Any) -> None:
    (r,) = _post(emulator, V11, _chat(temperature=-1))
    assert r.json()["error"] == {"message": "temperature must be non-negative, got -1.0.",
                                 "type": "BadRequestError", "param": None, "code": 400}


def test_a_wrong_type_is_a_schema_error_naming_the_field(emulator: Any) -> None:
    new, old = _post(emulator, V32, _chat(temperature="hot"))[0], \
        _post(emulator, V11, _chat(temperature="hot"))[0]
    assert new.status_code == old.status_code == 400
    assert (new.json()["error"]["type"], new.json()["error"]["param"]) == ("Bad Request",
                                                                         "body.temperature")
    assert "'loc': 'body.temperature'" in new.json()["error"]["message"]
    assert (old.json()["error"]["type"], old.json()["error"]["param"]) == ("BadRequestError",
                                                                         None)


def test_valid_sampling_parameters_are_accepted(emulator: Any) -> None:
    (r,) = _post(emulator, V32, _chat(temperature=0.0, top_p=1, top_k=0, min_p=0.1,
                                      presence_penalty=-2, max_tokens=2))
    assert r.status_code == 200, r.text


def test_n_gives_n_choices_and_counts_every_token(emulator: Any) -> None:
    chat, cmpl = _post(emulator, V32, _chat(n=2, max_tokens=3, ignore_eos=True),
                       ("/v1/completions", {"model": "m", "prompt": "hi", "n": 3,
                                            "max_tokens": 2}))
    assert [c["index"] for c in chat.json()["choices"]] == [0, 1]
    assert chat.json()["usage"]["completion_tokens"] == 6
    assert [c["finish_reason"] for c in cmpl.json()["choices"]] == ["length"] * 3
    assert cmpl.json()["usage"]["completion_tokens"] == 6


def test_logprobs_shapes_and_counts(emulator: Any) -> None:
    chat, cmpl, none = _post(
        emulator, V32, _chat(logprobs=True, top_logprobs=3, max_tokens=4),
        ("/v1/completions", {"model": "m", "prompt": "hi", "logprobs": 2, "max_tokens": 4}),
        _chat(max_tokens=1))
    content = chat.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 4 and all(len(c["top_logprobs"]) == 3 for c in content)
    assert content[0]["top_logprobs"][0]["token"] == content[0]["token"]  # chosen first
    assert set(content[0]) == {"token", "logprob", "bytes", "top_logprobs"}
    lp = cmpl.json()["choices"][0]["logprobs"]
    assert set(lp) == {"text_offset", "token_logprobs", "tokens", "top_logprobs"}
    assert len(lp["tokens"]) == 4 and all(2 <= len(d) <= 3 for d in lp["top_logprobs"])
    assert "".join(lp["tokens"]) == cmpl.json()["choices"][0]["text"]
    assert none.json()["choices"][0]["logprobs"] is None


def test_max_completion_tokens_wins_and_a_zero_is_refused(emulator: Any) -> None:
    five, zero, over = _post(emulator, V32,
                             _chat(max_completion_tokens=5, max_tokens=3, ignore_eos=True),
                             _chat(max_completion_tokens=0, max_tokens=3),
                             _chat(max_completion_tokens=257))
    assert five.json()["usage"]["completion_tokens"] == 5
    assert zero.json()["error"]["message"].startswith("max_tokens must be at least 1, got 0.")
    assert over.json()["error"]["param"] == "max_completion_tokens"
    assert over.json()["error"]["message"].startswith(
        "max_completion_tokens=257 cannot be greater than max_model_len=256")


def test_unknown_model_names_the_valid_aliases_in_0_32(emulator: Any) -> None:
    (r,) = _post(emulator, V32, _chat(model="nope"))
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": "The model `nope` does not exist. Valid aliases: m.",
        "type": "NotFoundError", "param": "model", "code": 404}


def test_over_long_prompts_in_the_clamp_era(emulator: Any) -> None:
    ids, text, chars = _post(
        emulator, V32,
        ("/v1/completions", {"model": "m", "prompt": [7] * 300}),
        ("/v1/completions", {"model": "m", "prompt": "word " * 300}),
        ("/v1/completions", {"model": "m", "prompt": "word " * 2000}))
    assert "your prompt contains 300 input tokens" in ids.json()["error"]["message"]
    assert "contains at least 257 input tokens" in text.json()["error"]["message"]
    assert ids.json()["error"]["param"] == text.json()["error"]["param"] == "input_tokens"
    assert chars.json()["error"]["param"] == "input_text"
    assert "10000 characters (more than" in chars.json()["error"]["message"]


def test_responses_minimal(emulator: Any) -> None:
    ok, over, previous = _post(
        emulator, V32,
        ("/v1/responses", {"model": "m", "input": "hello", "max_output_tokens": 4}),
        ("/v1/responses", {"model": "m", "input": "hello", "max_output_tokens": 257}),
        ("/v1/responses", {"model": "m", "input": "hello", "previous_response_id": "r1"}))
    body = ok.json()
    assert (body["object"], body["status"]) == ("response", "incomplete")
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 4
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + 4
    assert body["output"][0]["content"][0]["type"] == "output_text"
    assert over.json()["error"]["param"] == "max_output_tokens"
    assert previous.status_code == 404 and "'r1' not found" in previous.json()["error"]["message"]


def test_stream_with_n_interleaves_choices_and_ends_with_usage(emulator: Any) -> None:
    (r,) = _post(emulator, V32, _chat(n=2, max_tokens=3, ignore_eos=True, stream=True,
                                      stream_options={"include_usage": True}))
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if e["choices"]]
    finishes = {ch["index"]: ch["finish_reason"] for c in chunks for ch in c["choices"]
                if ch["finish_reason"]}
    assert finishes == {0: "length", 1: "length"}
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 6


def test_the_default_gpu_memory_utilization_follows_the_version() -> None:
    from vllmfleet.emulator import parse
    base = ["--model", "m", "--max-model-len", "256"]
    assert parse([*base, *V32]).gpu_memory_utilization == 0.92  # 0.32.0: config/cache.py
    assert parse([*base, *V11]).gpu_memory_utilization == 0.9
    assert parse([*base, *V32, "--gpu-memory-utilization", "0.5"]).gpu_memory_utilization == 0.5
