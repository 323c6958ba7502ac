"""FleetClient against scripted HTTP answers: outcomes and retries (httpx.MockTransport for the
httpx calls), streams against a real local socket (InstantServer, aiohttp path)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from vllmfleet.client import INCOMPLETE_STREAM_STATUS, FleetClient, Result, parse_metrics
from vllmfleet.client.instant import InstantServer


def _client(handler: object, **kw: object) -> FleetClient:
    return FleetClient("http://127.0.0.1:9", transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                       **kw)  # type: ignore[arg-type]


def _ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={
        "model": body["model"], "choices": [{"message": {"content": "hi there"},
                                             "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2}})


def test_success_carries_usage_and_text() -> None:
    async def go() -> None:
        async with _client(_ok) as c:
            r = await c.chat(model="m", messages=[{"role": "user", "content": "x"}])
        assert (r.status, r.status_class, r.text, r.total_tokens) == (200, "2xx", "hi there", 9)
    asyncio.run(go())


def test_error_bodies_nested_and_flat_give_the_message() -> None:
    answers = iter([
        httpx.Response(400, json={"error": {"message": "max_tokens=9 too big", "code": 400}}),
        httpx.Response(500, json={"detail": "Connection error"}),
    ])

    async def go() -> None:
        async with _client(lambda req: next(answers)) as c:
            first = await c.chat(model="m", messages=[])
            second = await c.chat(model="m", messages=[])
        assert (first.status_class, first.error) == ("4xx", "max_tokens=9 too big")
        assert (second.status_class, second.error) == ("5xx", "Connection error")
    asyncio.run(go())


def test_429_is_returned_as_is_by_default() -> None:
    async def go() -> None:
        async with _client(lambda r: httpx.Response(429, headers={"Retry-After": "3"},
                                                    json={"error": {"message": "rpm"}})) as c:
            r = await c.chat(model="m", messages=[])
        assert (r.status_class, r.retry_after, r.attempts) == ("429", 3.0, 1)
    asyncio.run(go())


def test_retry_429_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}),
                    httpx.Response(429, headers={"Retry-After": "1"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or _ok(request)

    async def go() -> None:
        async with _client(handler, retry_429=3) as c:
            r = await c.chat(model="m", messages=[{"role": "user", "content": "x"}])
        assert (r.status, r.attempts) == (200, 3)
    asyncio.run(go())
    assert slept == [2.0, 1.0]


def test_retry_429_gives_up_with_the_last_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    async def go() -> None:
        async with _client(lambda r: httpx.Response(429, headers={"Retry-After": "1"}),
                           retry_429=2) as c:
            r = await c.chat(model="m", messages=[])
        assert (r.status, r.attempts) == (429, 3)
    asyncio.run(go())


def test_refused_connection_is_a_result_not_an_exception() -> None:
    async def go() -> None:
        async with FleetClient("http://127.0.0.1:1", timeout_s=2) as c:
            r = await c.chat(model="m", messages=[])
            health = await c.health()
        assert (r.status, r.status_class, health) == (0, "connection", 0)
    asyncio.run(go())


def test_streaming_measures_ttft_and_collects_usage() -> None:
    chunks = [{"model": "m", "choices": [{"delta": {"content": w}}]} for w in ("a", " b", " c")]
    chunks.append({"model": "m", "choices": [{"delta": {}, "finish_reason": "length"}]})
    chunks.append({"model": "m", "choices": [], "usage": {"prompt_tokens": 4,
                                                         "completion_tokens": 3}})
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    r = _stream_result(sse)
    assert (r.text, r.finish_reason, r.completion_tokens) == ("a b c", "length", 3)
    assert r.ttft_s is not None and len(r.inter_token_s) == 2
    assert r.tpot_s is not None and r.tpot_s <= r.latency_s - r.ttft_s
    assert r.client_s is not None and 0 < r.client_s < r.latency_s


def test_parse_metrics_sums_label_sets() -> None:
    text = ('# HELP vllm:num_requests_waiting x\n'
            'vllm:num_requests_waiting{model_name="a"} 2.0\n'
            'vllm:num_requests_waiting{model_name="b"} 1.0\n'
            'vllm:prompt_tokens_total{model_name="a"} 17\n')
    assert parse_metrics(text) == {"vllm:num_requests_waiting": 3.0,
                                   "vllm:prompt_tokens_total": 17.0}


def _sse(*events: object) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def _stream_result(sse: str) -> Result:
    async def go() -> Result:
        async with InstantServer(sse=sse.encode()) as server, FleetClient(server.url) as c:
            return await c.chat(model="m", messages=[], stream=True)
    return asyncio.run(go())


_WORD = {"model": "m", "choices": [{"delta": {"content": "a"}}]}


@pytest.mark.parametrize(("event", "status", "message"), [
    ({"error": {"message": "EngineCore died", "type": "InternalServerError", "code": 500}},
     500, "EngineCore died"),
    ({"error": {"message": "upstream overloaded", "code": "503"}}, 503, "upstream overloaded"),
    ({"error": {"message": "no code at all"}}, 500, "no code at all"),
    ({"object": "error", "message": "flat body (vLLM < 0.10)", "code": 500}, 500,
     "flat body (vLLM < 0.10)"),
])
def test_an_error_event_mid_stream_fails_with_its_code(event: dict[str, object], status: int,
                                                       message: str) -> None:
    r = _stream_result(_sse(_WORD, event, "[DONE]"))
    assert (r.ok, r.status, r.status_class) == (False, status, "5xx")
    assert message in r.error and r.text == "a"


def test_a_stream_cut_off_without_done_or_finish_reason_fails() -> None:
    r = _stream_result(_sse(_WORD, _WORD))
    assert (r.ok, r.status, r.status_class) == (False, INCOMPLETE_STREAM_STATUS, "5xx")
    assert "incomplete stream" in r.error and r.text == "aa"


def test_a_stream_ending_with_a_finish_reason_but_no_done_still_succeeds() -> None:
    r = _stream_result(_sse(_WORD, {"model": "m", "choices": [{"delta": {},
                                                               "finish_reason": "stop"}]}))
    assert (r.ok, r.finish_reason, r.error) == (True, "stop", "")


def test_a_malformed_stream_event_is_a_failed_result_not_an_exception() -> None:
    r = _stream_result(_sse(_WORD, "{not json", "[DONE]"))
    assert (r.ok, r.status_class) == (False, "5xx")
    assert "malformed stream event" in r.error and "{not json" in r.error


@pytest.mark.parametrize("concurrency", [1, 8])
def test_one_connection_per_concurrent_stream_not_per_request(concurrency: int) -> None:
    """Streams are read to the end of their body, so keep-alive gives each connection back
    to the pool: 5 rounds of ``concurrency`` streams open ``concurrency`` connections."""
    async def go() -> tuple[int, int, list[Result]]:
        async with InstantServer(tokens=4, end_delay_s=0.02) as server, \
                FleetClient(server.url) as c:
            results: list[Result] = []
            for _ in range(5):
                results += await asyncio.gather(*(
                    c.chat(model="m", messages=[], stream=True) for _ in range(concurrency)))
            return server.connections, server.requests, results
    connections, requests, results = asyncio.run(go())
    assert all(r.ok and r.completion_tokens == 4 for r in results)
    assert (requests, connections) == (5 * concurrency, concurrency)


def test_a_streamed_refusal_keeps_status_message_and_retry_after() -> None:
    async def go() -> Result:
        async with InstantServer(status=429) as server, FleetClient(server.url) as c:
            return await c.chat(model="m", messages=[], stream=True)
    r = asyncio.run(go())
    assert (r.status_class, r.retry_after, r.error) == ("429", 1.0,
                                                        "instant server answers 429")


def test_a_streamed_request_to_a_closed_port_is_a_connection_result() -> None:
    async def go() -> Result:
        async with FleetClient("http://127.0.0.1:1", timeout_s=2) as c:
            return await c.chat(model="m", messages=[], stream=True)
    r = asyncio.run(go())
    assert (r.status, r.status_class) == (0, "connection")


def test_a_client_used_from_two_event_loops_streams_in_both() -> None:
    client = FleetClient("http://127.0.0.1:9")

    async def once() -> Result:
        async with InstantServer(tokens=2) as server:
            client._streams.base_url = server.url  # same client, a new server per loop
            result = await client.chat(model="m", messages=[], stream=True)
            return result

    first, second = asyncio.run(once()), asyncio.run(once())
    assert first.ok and second.ok, (first.error, second.error)
