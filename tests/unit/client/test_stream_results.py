"""What a streamed answer becomes: model, text (chat deltas and completions text), first-token
time and the gaps between tokens, usage and finish reason; a malformed or error event fails with
the payload named. (Mutation testing found these fields unguarded.)"""

from __future__ import annotations

import asyncio
import json

import pytest

from vllmfleet.client import INCOMPLETE_STREAM_STATUS, FleetClient, Result
from vllmfleet.client.instant import InstantServer


def sse(*events: object, done: bool = True) -> bytes:
    """The body of a streamed answer carrying ``events`` (then ``[DONE]`` unless not ``done``)."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def ask(body: bytes) -> Result:
    """Stream one chat request from a local socket that answers ``body`` (the aiohttp path)."""
    async def go() -> Result:
        async with InstantServer(sse=body) as server, FleetClient(server.url) as client:
            return await client.chat(model="asked", messages=[{"role": "user", "content": "x"}],
                                     stream=True)
    return asyncio.run(go())


def chunk(content: str | None = None, *, text: str | None = None, finish: str | None = None,
          model: str = "served") -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "finish_reason": finish}
    if content is not None:
        choice["delta"] = {"content": content}
    if text is not None:
        choice["text"] = text
    return {"model": model, "choices": [choice]}


def test_a_chat_stream_becomes_one_result() -> None:
    r = ask(sse(chunk(""), chunk("Hel"), chunk("lo"), chunk("!"), chunk(finish="length"),
                {"model": "served", "choices": [], "usage": {"prompt_tokens": 5,
                                                               "completion_tokens": 3}}))
    assert (r.status, r.model, r.text, r.finish_reason) == (200, "served", "Hello!", "length")
    assert (r.prompt_tokens, r.completion_tokens) == (5, 3)
    assert r.ttft_s is not None and 0 <= r.ttft_s <= r.latency_s
    assert len(r.inter_token_s) == 2 and all(0 <= g <= r.latency_s for g in r.inter_token_s)
    assert r.error == "" and r.ok


def test_completions_text_counts_as_content() -> None:
    r = ask(sse(chunk(text="a"), chunk(text="b"), chunk(text="", finish="stop")))
    assert (r.text, r.finish_reason, len(r.inter_token_s)) == ("ab", "stop", 1)


def test_the_model_is_the_asked_one_until_a_chunk_names_it() -> None:
    r = ask(sse({"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}))
    assert r.model == "asked" and r.text == "x"


def test_a_finish_reason_without_done_is_complete() -> None:
    r = ask(sse(chunk("x"), chunk(finish="stop"), done=False))
    assert r.status == 200 and r.finish_reason == "stop"


def test_a_cut_stream_fails_keeping_what_came() -> None:
    r = ask(sse(chunk("Hel"), chunk("lo"), done=False))
    assert r.status == INCOMPLETE_STREAM_STATUS and r.text == "Hello"
    assert "ended after 2 content events without [DONE]" in r.error
    assert r.model == "served" and r.ttft_s is not None and len(r.inter_token_s) == 1


@pytest.mark.parametrize(("event", "says"), [
    ("{not json", "malformed stream event ("),  # the JSON parser's words vary (orjson)
    ("[1, 2]", "malformed stream event (not an object): '[1, 2]'"),
    ("x" * 300, "malformed stream event ("),  # cut at 200 characters
])
def test_a_malformed_event_fails_naming_it(event: str, says: str) -> None:
    r = ask(sse(chunk("ok"), event))
    assert r.status == INCOMPLETE_STREAM_STATUS and says in r.error and r.text == "ok"
    assert len(r.error) < 300 + 80  # the payload is cut at 200 characters


@pytest.mark.parametrize(("event", "status", "message"), [
    ({"error": {"message": "Rate limit", "code": "429"}}, 429, "error in stream: Rate limit"),
    ({"error": {"message": "boom", "code": 200}}, 500, "error in stream: boom"),
    ({"error": "flat text"}, 500, "error in stream: flat text"),
    ({"object": "error", "message": "vLLM says no", "code": 400}, 400, "error in stream: "
                                                                      "vLLM says no"),
])
def test_an_error_event_fails_with_its_status(event: dict[str, object], status: int,
                                              message: str) -> None:
    r = ask(sse(chunk("partial"), event))
    assert (r.status, r.error, r.text) == (status, message, "partial")
