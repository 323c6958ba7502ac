"""The proxy hooks, loaded the way LiteLLM loads them: from a file beside the config.

LiteLLM execs ``<config dir>/vllmfleet_hooks.py`` through ``spec_from_file_location``
without registering it in ``sys.modules``; the fixture does exactly that, so a module
that only works when imported normally fails here. Exceptions come from LiteLLM's own
limiters where they can be raised without a server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import litellm
from fastapi import HTTPException
from litellm.router_utils.client_initalization_utils import MaxParallelRequestsLimit
from litellm.types.router import RouterRateLimitError

import vllmfleet.proxy_hooks as packaged

HOOKS_SOURCE = Path(packaged.__file__)


def _limits(**overrides: Any) -> dict[str, Any]:
    reasoner = {"alias": "llama31-8b-wintermute", "max_input_tokens": 14000,
                "max_output_tokens": 1024, "on_max_output": "reject", "max_parallel": 6,
                "rpm": 60, "tpm": 120000}
    chat = {"alias": "qwen2.5-7b-armitage", "max_input_tokens": 7000, "max_output_tokens": 768,
            "on_max_output": "clamp", "max_parallel": 5, "rpm": 40, "tpm": 80000}
    aliases = {"llama31-8b-wintermute": reasoner, "local/reasoner": reasoner,
               "qwen2.5-7b-armitage": chat, "local/chat": chat}
    aliases.update(overrides)
    return {"aliases": aliases, "limits_digest": "d" * 64}


def _ship(folder: Path, limits: object | None) -> Path:
    """Put the hooks module (and a limits file) in ``folder`` as ``inv render`` does."""
    target = folder / "vllmfleet_hooks.py"
    shutil.copyfile(HOOKS_SOURCE, target)
    if limits is not None:
        (folder / "vllmfleet_limits.json").write_text(json.dumps(limits), encoding="utf-8")
    return target


def _exec(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("vllmfleet_hooks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    return _exec(_ship(tmp_path, _limits()))


def _pre(hooks: ModuleType, data: dict[str, Any], call_type: str = "acompletion") -> Any:
    return asyncio.run(hooks.handler.async_pre_call_hook(
        user_api_key_dict=None, cache=None, data=data, call_type=call_type))


def _fail(hooks: ModuleType, exc: Exception) -> Any:
    return asyncio.run(hooks.handler.async_post_call_failure_hook(
        request_data={"model": "local/reasoner"}, original_exception=exc,
        user_api_key_dict=None))


def _chat(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}


def _body(call_type: str, model: str) -> dict[str, Any]:
    if call_type in ("atext_completion", "text_completion"):
        return {"model": model, "prompt": "hi"}
    if call_type in ("aresponses", "responses"):
        return {"model": model, "input": "hi"}
    return _chat(model)


# -- loading ------------------------------------------------------------------------------

def test_loads_the_limits_file_beside_itself(hooks: ModuleType) -> None:
    limits = hooks.handler.limits.aliases["local/chat"]
    assert (limits.alias, limits.max_output_tokens, limits.on_max_output) == (
        "qwen2.5-7b-armitage", 768, "clamp")


def test_limits_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"aliases": {"x": _limits()["aliases"]["local/chat"]}}))
    monkeypatch.setenv("VLLMFLEET_LIMITS", str(elsewhere))
    module = _exec(_ship(tmp_path, None))
    assert set(module.handler.limits.aliases) == {"x"}


def test_shipped_without_limits_file_refuses_to_load(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    with pytest.raises(ValueError, match=r"vllmfleet_limits\.json: limits file not found.*"
                                         r"inv render"):
        _exec(_ship(tmp_path, None))


@pytest.mark.parametrize(("field", "value"), [("max_output_tokens", 0), ("rpm", "60"),
                                              ("on_max_output", "truncate")])
def test_bad_limits_file_names_alias_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               field: str, value: object) -> None:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    bad = dict(_limits()["aliases"]["local/chat"], **{field: value})
    with pytest.raises(ValueError, match=rf"aliases\.local/chat\.{field} must be"):
        _exec(_ship(tmp_path, _limits(**{"local/chat": bad})))


# -- max_output_tokens ------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_over_max_output_is_a_400_naming_the_limit(hooks: ModuleType, field: str) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/reasoner", **{field: 1025}))
    assert caught.value.status_code == 400
    assert f"{field}=1025" in caught.value.detail
    assert "max_output_tokens=1024" in caught.value.detail
    assert "llama31-8b-wintermute" in caught.value.detail
    assert caught.value.param == field  # type: ignore[attr-defined]


def test_over_max_output_on_text_completions_too(hooks: ModuleType) -> None:
    with pytest.raises(HTTPException):
        _pre(hooks, {"model": "llama31-8b-wintermute", "prompt": "x", "max_tokens": 5000},
             call_type="atext_completion")


def test_within_max_output_passes_unchanged(hooks: ModuleType) -> None:
    data = _pre(hooks, _chat("local/reasoner", max_tokens=1024))
    assert data["max_tokens"] == 1024


def test_clamp_lowers_max_tokens_and_says_so_in_a_header(hooks: ModuleType) -> None:
    data = _pre(hooks, _chat("local/chat", max_tokens=4000, metadata={}))
    assert data["max_tokens"] == 768
    headers = asyncio.run(hooks.handler.async_post_call_response_headers_hook(
        data=data, user_api_key_dict=None, response=None))
    assert headers == {"x-vllmfleet-max-tokens-clamped": "4000->768"}


def test_unclamped_request_gets_no_header(hooks: ModuleType) -> None:
    data = _pre(hooks, _chat("local/chat", max_tokens=10, metadata={}))
    assert asyncio.run(hooks.handler.async_post_call_response_headers_hook(
        data=data, user_api_key_dict=None, response=None)) is None


def test_omitted_max_tokens_becomes_the_alias_limit(hooks: ModuleType) -> None:
    assert _pre(hooks, _chat("local/chat"))["max_tokens"] == 768


def test_embeddings_of_an_alias_are_left_alone(hooks: ModuleType) -> None:
    data = _pre(hooks, {"model": "local/chat", "input": "hi", "max_tokens": 99999},
                call_type="aembedding")
    assert data["max_tokens"] == 99999


@pytest.mark.parametrize("model", ["gpt-unknown", "hosted_vllm/qwen2.5-7b-armitage", "",
                                   None, 42, ["local/chat"], "local/chat,local/reasoner"])
@pytest.mark.parametrize("call_type", ["acompletion", "aembedding", "anthropic_messages"])
def test_a_name_that_is_not_an_alias_is_a_400(hooks: ModuleType, model: object,
                                               call_type: str) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat(model, max_tokens=5), call_type=call_type)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert "not an alias" in caught.value.detail
    assert caught.value.param == "model"  # type: ignore[attr-defined]


def test_a_backend_name_is_refused_naming_its_aliases(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    limits = _limits()
    limits["backends"] = {"hosted_vllm/qwen2.5-7b-armitage": ["qwen2.5-7b-armitage"]}
    hooks = _exec(_ship(tmp_path, limits))
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("hosted_vllm/qwen2.5-7b-armitage"))
    assert "backend name" in caught.value.detail
    assert "qwen2.5-7b-armitage" in caught.value.detail


def test_an_unknown_generating_call_type_is_refused(hooks: ModuleType) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/chat"), call_type="acreate_interaction")
    assert caught.value.status_code == 400


@pytest.mark.parametrize(("first", "second"), [(5, 5000), (5000, 5)])
def test_both_chat_fields_are_checked_in_either_order(hooks: ModuleType, first: int,
                                                      second: int) -> None:
    for order in (("max_tokens", "max_completion_tokens"),
                  ("max_completion_tokens", "max_tokens")):
        body = _chat("local/reasoner", **{order[0]: first, order[1]: second})
        with pytest.raises(HTTPException) as caught:
            _pre(hooks, body)
        assert "max_output_tokens=1024" in caught.value.detail


@pytest.mark.parametrize("call_type", ["acompletion", "atext_completion", "aresponses",
                                       "anthropic_messages"])
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
def test_every_output_field_inside_extra_body_is_checked(hooks: ModuleType, call_type: str,
                                                          field: str) -> None:
    body = {**_body(call_type, "local/reasoner"), "extra_body": {field: 5000}}
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, body, call_type=call_type)
    assert f"extra_body.{field}=5000" in caught.value.detail
    assert caught.value.param == f"extra_body.{field}"  # type: ignore[attr-defined]
    clamped = _pre(hooks, {**_body(call_type, "local/chat"), "extra_body": {field: 5000}},
                   call_type=call_type)
    assert clamped["extra_body"][field] == 768


@pytest.mark.parametrize("fields", [{"n": 2}, {"best_of": 2}, {"extra_body": {"n": 3}},
                                    {"n": "2"}])
def test_more_choices_than_max_n_are_a_400(hooks: ModuleType, fields: dict[str, Any]) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/chat", max_tokens=10, **fields))
    assert "max_n=1" in caught.value.detail


def test_max_n_allows_that_many_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    limits = _limits()
    limits["aliases"]["local/chat"] = {**limits["aliases"]["local/chat"], "max_n": 2}
    hooks = _exec(_ship(tmp_path, limits))
    assert _pre(hooks, _chat("local/chat", n=2))["n"] == 2
    with pytest.raises(HTTPException):
        _pre(hooks, _chat("local/chat", n=3))


@pytest.mark.parametrize(("call_type", "body", "param"), [
    ("acompletion", {"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ("acompletion", {"messages": "hi"}, "messages"),
    ("acompletion", {"messages": []}, "messages"),
    ("acompletion", {"messages": [None]}, "messages[0]"),
    ("anthropic_messages", {"messages": [{"role": "user", "content": {"a": 1}}]},
     "messages[0].content"),
    ("atext_completion", {"prompt": [1, 2, 3]}, "prompt"),
    ("atext_completion", {"prompt": [[1, 2]]}, "prompt"),
    ("atext_completion", {"prompt": None}, "prompt"),
    ("aresponses", {"input": 42}, "input"),
    ("aresponses", {"input": [1]}, "input"),
    ("acompletion", {"messages": [{"role": "user", "content": "hi"}], "extra_body": "x"},
     "extra_body"),
])
def test_a_malformed_body_is_a_400_naming_the_field(hooks: ModuleType, call_type: str,
                                                    body: dict[str, Any], param: str) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, {"model": "local/chat", **body}, call_type=call_type)
    assert caught.value.status_code == 400
    assert caught.value.param == param  # type: ignore[attr-defined]
    assert param in caught.value.detail


@pytest.mark.parametrize("value", ["1->2\r\nX: y", "5->4", 42, "x" * 9000])
def test_request_metadata_is_never_echoed_into_a_header(hooks: ModuleType,
                                                         value: object) -> None:
    data = _pre(hooks, _chat("local/reasoner", max_tokens=10,
                             metadata={"vllmfleet_max_tokens_clamped": value}))
    assert asyncio.run(hooks.handler.async_post_call_response_headers_hook(
        data=data, user_api_key_dict=None, response=None)) is None
    forged = {"metadata": {"vllmfleet_max_tokens_clamped": "1\r\nX: y"}}
    assert asyncio.run(hooks.handler.async_post_call_response_headers_hook(
        data=forged, user_api_key_dict=None, response=None)) is None


def test_the_pass_through_route_is_refused_at_the_deployment(hooks: ModuleType) -> None:
    with pytest.raises(HTTPException) as caught:
        asyncio.run(hooks.handler.async_pre_call_deployment_hook(
            {"model": "hosted_vllm/x"}, "allm_passthrough_route"))
    assert caught.value.status_code == 403


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [5000.0, "5000", " 5000 ", "5000.0"])
def test_whole_floats_and_numeric_strings_over_the_limit_are_400(hooks: ModuleType, field: str,
                                                                value: object) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/reasoner", **{field: value}))
    assert caught.value.status_code == 400
    assert f"{field}=5000 exceeds" in caught.value.detail
    assert "max_output_tokens=1024" in caught.value.detail


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_whole_floats_and_numeric_strings_are_forwarded_as_ints(hooks: ModuleType,
                                                               field: str) -> None:
    assert _pre(hooks, _chat("local/reasoner", **{field: "512"}))[field] == 512
    within = _pre(hooks, _chat("local/reasoner", **{field: 512.0}))[field]
    assert (within, type(within)) == (512, int)
    clamped = _pre(hooks, _chat("local/chat", metadata={}, **{field: "4000"}))
    assert (clamped[field], type(clamped[field])) == (768, int)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", ["lots", 512.5, "1e400", float("inf"), float("nan"), True,
                                   [512]])
def test_non_integer_output_limit_is_a_400_naming_the_field(hooks: ModuleType, field: str,
                                                            value: object) -> None:
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/reasoner", **{field: value}))
    assert caught.value.status_code == 400
    assert f"{field}=" in caught.value.detail and "whole number" in caught.value.detail
    assert caught.value.param == field  # type: ignore[attr-defined]


# -- Retry-After on every 429 -----------------------------------------------------------------

def _rpm_error() -> Exception:
    from litellm.caching.dual_cache import DualCache
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import (
        ModelRateLimitingCheck,
    )
    check = ModelRateLimitingCheck(DualCache())
    deployment = {"model_name": "a", "litellm_params": {"model": "hosted_vllm/a"},
                  "model_info": {"id": "a", "rpm": 1}}
    check.pre_call_check(deployment)
    with pytest.raises(litellm.RateLimitError) as caught:
        check.pre_call_check(deployment)
    return caught.value


def _parallel_error() -> Exception:
    slots = MaxParallelRequestsLimit(max_parallel_requests=1, model_id="a", model_group="a")
    slots.acquire()
    with pytest.raises(litellm.RateLimitError) as caught:
        slots.acquire()
    return caught.value


@pytest.mark.parametrize(("now", "expected"), [(1_800_000_045.2, 15), (1_800_000_000.0, 60),
                                               (1_800_000_059.9, 1)])
def test_rpm_429_retries_at_the_next_clock_minute(hooks: ModuleType, now: float,
                                                  expected: int) -> None:
    hooks.handler._clock = lambda: now
    result = _fail(hooks, _rpm_error())
    assert isinstance(result, HTTPException)
    assert result.status_code == 429
    assert result.headers == {"Retry-After": str(expected)}
    assert "RPM limit=1" in result.detail


def test_parallel_cap_429_retries_after_a_second(hooks: ModuleType) -> None:
    result = _fail(hooks, _parallel_error())
    assert (result.status_code, result.headers) == (429, {"Retry-After": "1"})
    assert "max_parallel_requests" in result.detail


def test_no_deployments_available_gets_the_cooldown(hooks: ModuleType) -> None:
    exc = RouterRateLimitError(model="a", cooldown_time=4.2, enable_pre_call_checks=True,
                               cooldown_list=["a"], model_ids=["a"])
    result = _fail(hooks, exc)
    assert (result.status_code, result.headers) == (429, {"Retry-After": "5"})


def test_upstream_429_keeps_its_own_hint(hooks: ModuleType) -> None:
    import httpx
    response = httpx.Response(429, headers={"retry-after": "7"},
                              request=httpx.Request("POST", "http://127.0.0.1/v1"))
    exc = litellm.RateLimitError(message="slow down", llm_provider="hosted_vllm", model="a",
                                 response=response)
    assert _fail(hooks, exc).headers == {"Retry-After": "7"}


@pytest.mark.parametrize("headers", [
    {"Retry-After": "60"},
    {"llm_provider-retry-after": "60"},
    {"retry-after": "soon", "llm_provider-retry-after": "60"},
])
def test_an_upstream_60_s_hint_becomes_retry_after_60(hooks: ModuleType,
                                                      headers: dict[str, str]) -> None:
    exc = litellm.RateLimitError(message="slow down", llm_provider="hosted_vllm", model="a")
    exc.headers = headers  # type: ignore[attr-defined]
    assert _fail(hooks, exc).headers == {"Retry-After": "60"}


def test_the_response_headers_are_read_when_the_own_headers_lack_a_hint(
        hooks: ModuleType) -> None:
    import httpx
    response = httpx.Response(429, headers={"llm_provider-retry-after": "60"},
                              request=httpx.Request("POST", "http://127.0.0.1/v1"))
    exc = litellm.RateLimitError(message="slow down", llm_provider="hosted_vllm", model="a",
                                 response=response)
    exc.headers = {"x-other": "1"}  # type: ignore[attr-defined]
    assert _fail(hooks, exc).headers == {"Retry-After": "60"}


@pytest.mark.parametrize("message", [
    "The engine is currently busy and cannot accept new requests. Please try again later "
    "or on a different instance.",
    "The engine has reached its prefill token backlog limit. Please try again later or on "
    "a different instance."])
def test_a_backend_queue_full_503_becomes_a_429_with_retry_after(hooks: ModuleType,
                                                                message: str) -> None:
    exc = litellm.ServiceUnavailableError(message=message, model="a", llm_provider="hosted_vllm")
    result = _fail(hooks, exc)
    assert result.status_code == 429
    assert result.headers == {"Retry-After": "1"}
    assert "queue is full" in result.detail


def test_a_503_that_is_not_queue_full_stays_a_fault(hooks: ModuleType) -> None:
    exc = litellm.ServiceUnavailableError(message="engine dead", model="a",
                                          llm_provider="hosted_vllm")
    assert _fail(hooks, exc) is None


def test_our_own_429_with_retry_after_is_left_as_it_is(hooks: ModuleType) -> None:
    from litellm.proxy._types import ProxyException

    exc = ProxyException(message="RPM limit=3", type="rate_limit_error", param=None, code=429,
                         headers={"Retry-After": "12"})
    assert _fail(hooks, exc) is None


@pytest.mark.parametrize("exc", [
    litellm.BadRequestError(message="too long", model="a", llm_provider="hosted_vllm"),
    litellm.InternalServerError(message="boom", model="a", llm_provider="hosted_vllm"),
    HTTPException(status_code=400, detail="max_tokens=2000 exceeds …"),
])
def test_other_errors_pass_through_unchanged(hooks: ModuleType, exc: Exception) -> None:
    assert _fail(hooks, exc) is None



def test_a_key_that_is_not_the_master_key_is_a_401(hooks: ModuleType) -> None:
    from litellm.proxy._types import ProxyException
    exc = ProxyException(message="No connected db.", type="no_db_connection", param=None,
                         code=400)
    result = _fail(hooks, exc)
    assert result.status_code == 401
    assert "master key" in result.detail


@pytest.mark.parametrize(("call_type", "field"), [("aresponses", "max_output_tokens"),
                                                  ("responses", "max_output_tokens"),
                                                  ("anthropic_messages", "max_tokens")])
def test_responses_and_messages_routes_meet_the_same_output_limit(
        hooks: ModuleType, call_type: str, field: str) -> None:
    """/v1/responses and /v1/messages reach the backend on their own routes; the limit holds."""
    with pytest.raises(HTTPException) as caught:  # local/reasoner rejects
        _pre(hooks, {**_body(call_type, "local/reasoner"), field: 5000}, call_type=call_type)
    assert caught.value.status_code == 400
    assert f"{field}=5000 exceeds" in caught.value.detail
    assert "max_output_tokens=1024" in caught.value.detail
    clamped = _pre(hooks, {**_body(call_type, "local/chat"), field: 5000},
                   call_type=call_type)  # local/chat clamps
    assert clamped[field] == 768
    within = _pre(hooks, {**_body(call_type, "local/reasoner"), field: 100},
                  call_type=call_type)
    assert within[field] == 100
    omitted = _pre(hooks, _body(call_type, "local/reasoner"), call_type=call_type)
    assert omitted[field] == 1024


# -- exact input counting by the backend's /tokenize ------------------------------------

def _exact_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                 url: str = "http://backend.test/tokenize") -> ModuleType:
    monkeypatch.delenv("VLLMFLEET_LIMITS", raising=False)
    monkeypatch.setenv("VLLMFLEET_BACKEND_KEY_TEST", "sk-backend")
    limits = _limits()
    limits["aliases"]["local/chat"] = {
        **limits["aliases"]["local/chat"], "exact_input": True, "tokenize_url": url,
        "served_model_name": "qwen2.5-7b-armitage",
        "backend_key_env": "VLLMFLEET_BACKEND_KEY_TEST"}
    return _exec(_ship(tmp_path, limits))


def _backend(hooks: ModuleType, count: int, seen: list[dict[str, Any]],
             status: int = 200) -> None:
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append({"body": json.loads(request.content),
                     "auth": request.headers.get("authorization")})
        return httpx.Response(status, json={"count": count, "max_model_len": 8192,
                                            "tokens": []})

    hooks.handler._http = httpx.AsyncClient(transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(("count", "refused"), [(7000, False), (7001, True)])
def test_exact_count_over_max_input_is_a_400(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             count: int, refused: bool) -> None:
    hooks = _exact_hooks(tmp_path, monkeypatch)
    seen: list[dict[str, Any]] = []
    _backend(hooks, count, seen)
    if refused:
        with pytest.raises(HTTPException) as caught:
            _pre(hooks, _chat("local/chat", max_tokens=5))
        assert caught.value.status_code == 400
        assert "max_input_tokens=7000" in caught.value.detail
        assert "7001 tokens" in caught.value.detail
    else:
        _pre(hooks, _chat("local/chat", max_tokens=5))
    assert seen == [{"body": {"model": "qwen2.5-7b-armitage",
                              "messages": [{"role": "user", "content": "hi"}]},
                     "auth": "Bearer sk-backend"}]


def test_exact_count_of_text_completions_counts_each_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _exact_hooks(tmp_path, monkeypatch)
    seen: list[dict[str, Any]] = []
    _backend(hooks, 10, seen)
    _pre(hooks, {"model": "local/chat", "prompt": ["a", "b"]}, call_type="atext_completion")
    assert [s["body"] for s in seen] == [{"model": "qwen2.5-7b-armitage", "prompt": "a"},
                                         {"model": "qwen2.5-7b-armitage", "prompt": "b"}]


def test_exact_count_of_messages_includes_the_system_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _exact_hooks(tmp_path, monkeypatch)
    seen: list[dict[str, Any]] = []
    _backend(hooks, 10, seen)
    _pre(hooks, {"model": "local/chat", "system": [{"type": "text", "text": "be brief"}],
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
         call_type="anthropic_messages")
    assert seen[0]["body"]["messages"] == [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "hi"}]


def test_tokenize_unreachable_is_a_503_never_a_pass(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hooks = _exact_hooks(tmp_path, monkeypatch, url=f"http://127.0.0.1:{port}/tokenize")
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/chat", max_tokens=5))
    assert caught.value.status_code == 503
    assert "cannot count the prompt" in caught.value.detail


@pytest.mark.parametrize("status", [401, 500])
def test_tokenize_failing_is_a_503_naming_the_status(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     status: int) -> None:
    hooks = _exact_hooks(tmp_path, monkeypatch)
    _backend(hooks, 10, [], status=status)
    with pytest.raises(HTTPException) as caught:
        _pre(hooks, _chat("local/chat", max_tokens=5))
    assert caught.value.status_code == 503
    assert f"answered {status}" in caught.value.detail
