"""The OpenAI Python SDK against the proxy and directly against an emulator; streaming."""

from __future__ import annotations

import openai
import pytest

from tests.integration.fleetkit import LocalFleet


def _proxy(fleet: LocalFleet) -> openai.OpenAI:
    return openai.OpenAI(base_url=fleet.proxy_v1, api_key=fleet.key, max_retries=0)


def test_sdk_through_the_proxy(local_fleet: LocalFleet) -> None:
    reply = _proxy(local_fleet).chat.completions.create(
        model="local/chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=8)
    assert reply.choices[0].message.content
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 8


def test_sdk_sees_the_limit_errors_as_typed_exceptions(local_fleet: LocalFleet) -> None:
    with pytest.raises(openai.BadRequestError, match="max_output_tokens=768"):
        _proxy(local_fleet).chat.completions.create(
            model="local/chat", messages=[{"role": "user", "content": "Hello"}],
            max_tokens=769)


def test_sdk_directly_against_an_emulator(local_fleet: LocalFleet) -> None:
    # the engines answer only with their --api-key (the proxy's backend key)
    direct = openai.OpenAI(base_url=local_fleet.emulator_v1("wintermute"),
                           api_key=local_fleet.state.backend_key, max_retries=0)
    model = direct.models.list().data[0]
    assert model.id == "llama31-8b-wintermute"
    assert model.model_extra is not None and model.model_extra["max_model_len"] == 16384
    reply = direct.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": "Hello"}], max_tokens=8)
    assert reply.choices[0].message.content


@pytest.mark.parametrize("name", ["local/reasoner", "qwen2.5-7b-armitage"])
def test_streaming_through_the_proxy(local_fleet: LocalFleet, name: str) -> None:
    stream = _proxy(local_fleet).chat.completions.create(
        model=name, messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len([c for c in chunks if c.choices]) > 1 and text
    assert usage and usage[-1].completion_tokens == 12


def test_a_streamed_request_over_the_limit_is_a_plain_400(local_fleet: LocalFleet) -> None:
    with pytest.raises(openai.BadRequestError, match="max_output_tokens=1024"):
        _proxy(local_fleet).chat.completions.create(
            model="local/reasoner", messages=[{"role": "user", "content": "Hello"}],
            max_tokens=4096, stream=True)
