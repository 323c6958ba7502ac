"""The emulator's HTTP API in-process on 127.0.0.1:0: shapes, counts, errors, auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from vllmfleet.client import parse_metrics

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name three primary colours, please."}]


def test_models_version_and_health(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--served-model-name", "alias-a", "alias-b") as (_, client):
            models = (await client.get("/v1/models")).json()
            version = (await client.get("/version")).json()
            health = await client.get("/health")
        assert [m["id"] for m in models["data"]] == ["alias-a", "alias-b"]
        card = models["data"][0]
        assert (card["object"], card["root"], card["max_model_len"]) == ("model", "org/model",
                                                                          256)
        assert version == {"version": "0.11.0"}
        assert (health.status_code, health.content) == (200, b"")
    asyncio.run(go())


def test_tokenize_messages_matches_usage_prompt_tokens(emulator: Any) -> None:
    async def go() -> None:
        async with emulator() as (_, client):
            counted = (await client.post("/tokenize", json={"model": "m",
                                                            "messages": MESSAGES})).json()
            no_prompt = (await client.post("/tokenize", json={
                "messages": MESSAGES, "add_generation_prompt": False})).json()
            answer = (await client.post("/v1/chat/completions", json={
                "model": "m", "messages": MESSAGES, "max_tokens": 5})).json()
        assert counted["count"] == answer["usage"]["prompt_tokens"] == len(counted["tokens"])
        assert counted["max_model_len"] == 256
        assert no_prompt["count"] == counted["count"] - 4  # the generation prompt
    asyncio.run(go())


def test_tokenize_prompt_matches_completions_usage_and_detokenizes(emulator: Any) -> None:
    prompt = "Once upon a time, in a data centre far away,"

    async def go() -> None:
        async with emulator() as (_, client):
            counted = (await client.post("/tokenize", json={"prompt": prompt})).json()
            plain = (await client.post("/tokenize", json={
                "prompt": prompt, "add_special_tokens": False})).json()
            answer = (await client.post("/v1/completions", json={
                "model": "m", "prompt": prompt})).json()
            text = (await client.post("/detokenize", json={"tokens": plain["tokens"]})).json()
            bad = await client.post("/detokenize", json={"tokens": [1000]})
        assert counted["count"] == answer["usage"]["prompt_tokens"] == plain["count"] + 1
        assert text == {"prompt": prompt}
        assert bad.status_code == 400 and "never produced" in bad.json()["error"]["message"]
    asyncio.run(go())


def test_completion_tokens_are_the_tokens_of_the_returned_text(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--emulator-output-tokens", "37") as (_, client):
            chat = (await client.post("/v1/chat/completions", json={
                "model": "m", "messages": MESSAGES})).json()
            content = chat["choices"][0]["message"]["content"]
            counted = (await client.post("/tokenize", json={
                "prompt": content, "add_special_tokens": False})).json()
        assert chat["usage"]["completion_tokens"] == counted["count"] == 37
        assert chat["choices"][0]["finish_reason"] == "stop"  # it "ended" before max_tokens
    asyncio.run(go())


def test_max_tokens_defaults_chat_rest_of_context_completions_16(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--emulator-output-tokens", "1000") as (_, client):
            chat = (await client.post("/v1/chat/completions", json={
                "model": "m", "messages": MESSAGES})).json()
            completion = (await client.post("/v1/completions", json={
                "model": "m", "prompt": "Count to ten:"})).json()
        assert chat["usage"]["total_tokens"] == 256
        assert chat["choices"][0]["finish_reason"] == "length"
        assert completion["usage"]["completion_tokens"] == 16
    asyncio.run(go())


def test_ignore_eos_generates_exactly_max_tokens(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--emulator-output-tokens", "5") as (_, client):
            answer = (await client.post("/v1/chat/completions", json={
                "model": "m", "messages": MESSAGES, "max_tokens": 60,
                "ignore_eos": True})).json()
        assert answer["usage"]["completion_tokens"] == 60
    asyncio.run(go())


def test_streaming_chat_events_and_final_usage(emulator: Any, helpers: Any) -> None:
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 12}

    async def go() -> None:
        async with emulator() as (_, client):
            plain = (await client.post("/v1/chat/completions", json=body)).json()
            r = await client.post("/v1/chat/completions", json={
                **body, "stream": True, "stream_options": {"include_usage": True}})
            no_usage = await client.post("/v1/chat/completions", json={**body, "stream": True})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = helpers.sse_events(r.text)
        assert events[-1] == "[DONE]"
        first, *tokens, usage_chunk, _ = events
        assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        text = "".join(e["choices"][0]["delta"]["content"] for e in tokens)
        assert text == plain["choices"][0]["message"]["content"]
        assert len(tokens) == 12
        assert [e["choices"][0]["finish_reason"] for e in tokens][-2:] == [None, "length"]
        assert {e["object"] for e in events[:-1]} == {"chat.completion.chunk"}
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == plain["usage"]
        assert all("usage" not in e for e in helpers.sse_events(no_usage.text)[:-1])
    asyncio.run(go())


def test_streaming_completions_text_chunks(emulator: Any, helpers: Any) -> None:
    async def go() -> None:
        async with emulator() as (_, client):
            r = await client.post("/v1/completions", json={
                "model": "m", "prompt": "Go:", "max_tokens": 3, "stream": True,
                "stream_options": {"include_usage": True}})
        events = helpers.sse_events(r.text)
        assert [e["choices"][0]["text"] for e in events[:3]] == ["The", " emulated", " model"]
        assert events[3]["usage"]["completion_tokens"] == 3 and events[4] == "[DONE]"
    asyncio.run(go())


def test_error_in_a_streamed_request_is_plain_json(emulator: Any) -> None:
    async def go() -> None:
        async with emulator() as (_, client):
            r = await client.post("/v1/chat/completions", json={
                "model": "m", "messages": MESSAGES, "max_tokens": 5000, "stream": True})
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/json"
        assert "is too large: 5000" in r.json()["error"]["message"]
    asyncio.run(go())


def test_unknown_model_is_404_with_a_nested_body(emulator: Any) -> None:
    async def go() -> None:
        async with emulator() as (_, client):
            r = await client.post("/v1/chat/completions", json={"model": "nope",
                                                                "messages": MESSAGES})
            t = await client.post("/tokenize", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404 == t.status_code
        assert r.json() == {"error": {"message": "The model `nope` does not exist.",
                                      "type": "NotFoundError", "param": None, "code": 404}}
    asyncio.run(go())


def test_malformed_requests_are_400_never_500(emulator: Any) -> None:
    bad_bodies: list[Any] = [
        b'{"model": "m", "messages": [', b"[1, 2]", b"\xff\xfe",
        {"model": "m"}, {"model": "m", "messages": "hi"}, {"model": "m", "messages": [{}]},
        {"model": "m", "messages": MESSAGES, "max_tokens": "many"},
        {"model": "m", "messages": MESSAGES, "stream": "yes"},
        {"model": "m", "messages": MESSAGES, "stream_options": {"include_usage": True}},
        {"model": "m", "messages": MESSAGES, "n": 0},
        {"model": "m", "messages": MESSAGES, "temperature": -1},
        {"model": "m", "messages": MESSAGES, "temperature": "hot"},
        {"model": "m", "messages": MESSAGES, "top_p": 0},
        {"model": "m", "messages": MESSAGES, "top_logprobs": 2},
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
    ]

    async def go() -> None:
        async with emulator() as (_, client):
            for body in bad_bodies:
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                r = await client.post("/v1/chat/completions", content=content,
                                      headers={"content-type": "application/json"})
                assert r.status_code == 400, (body, r.text)
                assert r.json()["error"]["type"] == "BadRequestError"
            prompt = await client.post("/v1/completions", json={"model": "m"})
            assert prompt.status_code == 400 and "prompt" in prompt.json()["error"]["message"]
            assert (await client.get("/nowhere")).status_code == 404
            assert (await client.get("/v1/chat/completions")).status_code == 405
    asyncio.run(go())


def test_api_key_is_required_on_v1_only(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--api-key", "sk-local") as (_, client):
            missing = await client.get("/v1/models")
            wrong = await client.get("/v1/models", headers={"Authorization": "Bearer no"})
            right = await client.get("/v1/models", headers={"Authorization": "Bearer sk-local"})
            health = await client.get("/health")
            unknown = await client.get("/v1/nowhere")
        assert (missing.status_code, missing.json()) == (401, {"error": "Unauthorized"})
        assert unknown.status_code == 401  # the key is checked before routing, as in vLLM
        assert wrong.status_code == 401
        assert (right.status_code, health.status_code) == (200, 200)
    asyncio.run(go())


def test_metrics_count_tokens_and_latency(emulator: Any) -> None:
    async def go() -> str:
        async with emulator("--emulator-output-tokens", "7") as (_, client):
            for _ in range(3):
                await client.post("/v1/chat/completions", json={"model": "m",
                                                                "messages": MESSAGES})
            r = await client.get("/metrics")
            assert r.headers["content-type"].startswith("text/plain")
            return r.text
    text = asyncio.run(go())
    metrics = parse_metrics(text)
    assert metrics["vllm:generation_tokens_total"] == 21
    assert metrics["vllm:e2e_request_latency_seconds_count"] == 3
    assert metrics["vllm:time_to_first_token_seconds_count"] == 3
    assert metrics["vllm:num_requests_running"] == 0
    assert 'vllm:prompt_tokens_total{model_name="m"}' in text


def test_metrics_page_parses_with_prometheus_client(emulator: Any) -> None:
    import pytest

    parser = pytest.importorskip("prometheus_client.parser")

    async def go() -> str:
        async with emulator() as (_, client):
            await client.post("/v1/completions", json={"model": "m", "prompt": "x"})
            return (await client.get("/metrics")).text
    families = {f.name: f for f in parser.text_string_to_metric_families(asyncio.run(go()))}
    assert families["vllm:e2e_request_latency_seconds"].type == "histogram"
    assert families["vllm:generation_tokens"].type == "counter"
    assert families["vllm:num_requests_waiting"].type == "gauge"
