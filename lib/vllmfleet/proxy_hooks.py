"""LiteLLM proxy hooks: every limit on every route, name and field; Retry-After on every 429.

This module runs *inside* the LiteLLM proxy, not in vllmfleet. ``inv render`` copies it
verbatim beside the rendered ``config.yaml`` as ``vllmfleet_hooks.py`` and the config
names it in ``litellm_settings.callbacks: ["vllmfleet_hooks.handler"]``; LiteLLM loads
``<config dir>/vllmfleet_hooks.py`` (one file: LiteLLM execs it without a package) before
looking on its Python path. On a proxy host LiteLLM often runs in its own venv or
container, so this file imports LiteLLM, FastAPI and httpx (LiteLLM proxy dependencies) and
the standard library only — never ``vllmfleet``.

Limits come from ``vllmfleet_limits.json`` next to this file (or the path in the
environment variable ``VLLMFLEET_LIMITS``), rendered from the inventory::

    {"aliases": {"<every name a client may send, also-names included>": {
        "alias": "<the inventory alias>", "max_input_tokens": 14000,
        "max_output_tokens": 1024, "on_max_output": "reject" | "clamp",
        "max_parallel": 6, "rpm": 60, "tpm": 120000, "max_n": 1,
        "exact_input": true, "tokenize_url": "http://host:8000/tokenize",
        "served_model_name": "...", "backend_key_env": "VLLMFLEET_BACKEND_KEY"}},
     "backends": {"hosted_vllm/<served name>": ["<aliases served there>"]},
     "limits_digest": "<sha256 of the aliases table>"}

What LiteLLM 1.108.7 does and what these hooks add (each point tried on a real proxy; the
project pins 1.108.7 in constraints.txt and ``nox -s litellm_latest`` watches for drift)
------------------------------------------------------------------------------------------
* Names: LiteLLM also routes a deployment's raw ``litellm_params.model``
  (``hosted_vllm/<served>``), in the body and in ``/openai/deployments/<m>/…`` and
  ``/engines/<m>/…`` paths (``data["model"]`` holds the path's model before the hooks run).
  :meth:`async_pre_call_hook` serves only the names in the limits file; anything else is a
  400 naming the aliases. The ``/vllm/*`` pass-through (call type ``allm_passthrough_route``)
  skips ``async_pre_call_hook``; :meth:`async_pre_call_deployment_hook`, which LiteLLM runs
  for every provider call (``utils.async_pre_call_deployment_hook``), refuses it (403).
* Output: LiteLLM does not enforce ``max_output_tokens``. The hook reads ``max_tokens``,
  ``max_completion_tokens`` and ``max_output_tokens`` on every generating route, at the top
  level and inside ``extra_body`` (LiteLLM merges it into the backend body), as whole numbers
  (``5000.0`` and ``"5000"`` become 5000; anything else is a 400 naming the field), and
  rejects any above the alias's limit with a 400 naming the field and the limit, or lowers it
  (``on_max_output: clamp``; the response carries ``x-vllmfleet-max-tokens-clamped:
  <asked>-><limit>``, digits only, never text from the request). A request that asks for no
  limit gets the alias's. ``n`` and ``best_of`` above the alias's ``max_n`` are a 400. The hook
  raises only ``HTTPException``/``ProxyException`` (anything else becomes a 500 in LiteLLM); it
  must be defined on the leaf class (LiteLLM calls it only when it is in ``vars(cls)``).
* Input: for an alias with ``exact_input`` the hook counts the prompt with the backend's own
  ``POST /tokenize`` (chat template included) and refuses over ``max_input_tokens``, before
  LiteLLM's own approximate tiktoken check of the same limit (``model_info.max_input_tokens``
  with ``router_settings.enable_pre_call_checks``), which is all an alias that opts out gets.
  ``/tokenize`` unreachable or failing: a 503, never a silent pass.
* Malformed bodies that LiteLLM would fail on with a 500 (``content`` 42, a token-id
  ``prompt``, ``input`` 42, a non-object ``extra_body``) are a 400 naming the field. A body
  that is not a JSON object fails in LiteLLM's auth before any callback: not interceptable.
* RPM/TPM (``model_info.rpm/tpm`` with ``optional_pre_call_checks:
  ["enforce_model_rate_limits"]``) answer 429 ``RateLimitError`` "Model rate limit exceeded.
  RPM limit=N …" whose only retry hint is ``llm_provider-retry-after: 60``. The window is the
  UTC clock minute (key ``%H-%M``); rejected requests count too.
* Concurrency: ``litellm_params.max_parallel_requests`` is a per-deployment in-flight counter
  (``MaxParallelRequestsLimit``) taken around the provider call and, for streams, held
  until the stream is exhausted or closed; a request that finds every slot taken gets an
  immediate 429 "Deployment has all max_parallel_requests slots in use" (``rate_limit_type
  = concurrent_requests``), never a wait, and no slot leaks (bursts, streams, backend errors
  and disconnects tried on loopback). Also-names share the deployment (``model_group_alias``)
  and so its slots; a profile (the burst alias) is its own deployment.
* Retry-After: on chat, every 429 leaves through :meth:`async_post_call_failure_hook`,
  which returns an ``HTTPException`` with a standard ``Retry-After`` in whole seconds (the
  seconds left in the UTC minute for RPM/TPM, :data:`PARALLEL_RETRY_AFTER_S` for the parallel
  cap, the router's cooldown for "No deployments available", else the upstream's own hint);
  a backend's "queue full" 503 becomes such a 429. On /v1/completions and /v1/messages LiteLLM
  ignores the hook's answer, so the pre-call hook refuses first when the router's own counters
  are full (``_capacity_refusal``), with a ``ProxyException`` whose headers every route keeps.
* Auth: no key, or a key without the ``sk-`` prefix, is a 401; but an ``sk-`` key that is
  not the master key gets 400 "No connected db." (type ``no_db_connection``) from a proxy
  without a key database, as ours is. Auth failures also pass through the failure hook
  (``auth_exception_handler``), which turns that one into a 401 that says what to send.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

__all__ = ["PARALLEL_RETRY_AFTER_S", "AliasLimits", "Limits", "LimitsFileError",
           "VllmfleetHooks", "handler", "load_limits"]

LIMITS_ENV = "VLLMFLEET_LIMITS"
LIMITS_FILE = "vllmfleet_limits.json"
CLAMP_HEADER = "x-vllmfleet-max-tokens-clamped"
PARALLEL_RETRY_AFTER_S = 1
TOKENIZE_TIMEOUT_S = 10.0
"""Retry-After for the in-flight cap: a slot frees when any running request ends."""

# Every field that asks for output tokens, on every call type that generates text. LiteLLM
# 1.108.7 hands async_pre_call_hook the client's body as parsed JSON (plus its own keys) with
# call_type = the route type: "acompletion" (/v1/chat/completions and the /openai/deployments,
# /engines variants, whose path model is already in data["model"]), "atext_completion"
# (/v1/completions), "aresponses" (/v1/responses), "anthropic_messages" (/v1/messages). Each
# route forwards more than "its" field (LiteLLM maps max_completion_tokens <-> max_tokens and
# merges ``extra_body`` into the backend body), so all fields are checked on all of them,
# at the top level and inside ``extra_body``.
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_PRIMARY_FIELD: dict[str, str] = {
    "completion": "max_tokens", "acompletion": "max_tokens",
    "text_completion": "max_tokens", "atext_completion": "max_tokens",
    "responses": "max_output_tokens", "aresponses": "max_output_tokens",
    "anthropic_messages": "max_tokens",
}
_MULTI_FIELDS = ("n", "best_of")
# Call types that carry a model but generate no text: the name must still be an alias.
_OTHER_CALLS = frozenset({"embedding", "aembedding", "acount_tokens", "count_tokens"})
_CLAMP_KEY = "vllmfleet_max_tokens_clamped"
_WRONG_KEY = ("Authentication Error: this key is not the proxy's master key, and the proxy "
              "keeps no key database, so no other key is valid. Send the master key "
              "(Authorization: Bearer <key>).")
_NO_DEPLOYMENT = ("No deployments available", "No healthy deployment available")
_log = logging.getLogger("vllmfleet.proxy_hooks")


# NamedTuple, not dataclasses: LiteLLM execs this file without registering it in
# sys.modules, and dataclasses then fail on the string annotations.


class LimitsFileError(ValueError):
    """The limits file is missing or not what ``inv render`` writes."""


class AliasLimits(NamedTuple):
    """The limits of one alias, as the proxy enforces them."""

    alias: str
    max_input_tokens: int
    max_output_tokens: int
    on_max_output: Literal["reject", "clamp"]
    max_parallel: int
    rpm: int
    tpm: int
    max_n: int = 1
    exact_input: bool = False
    tokenize_url: str = ""
    served_model_name: str = ""
    backend_key_env: str = ""


class Limits(NamedTuple):
    """Every name a client may send, mapped to its alias's limits.

    ``backends`` maps each raw backend name LiteLLM would also route
    (``hosted_vllm/<served name>``) to the aliases served by it: such a name is refused
    with a message naming them, since it bypasses the alias's own limits.
    """

    aliases: Mapping[str, AliasLimits]
    limits_digest: str = ""
    backends: Mapping[str, tuple[str, ...]] = {}


class _LimitError(HTTPException):
    """An HTTPException LiteLLM turns into an OpenAI error body with this ``type``/``param``."""

    def __init__(self, status_code: int, message: str, *, type: str,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.type = type
        self.param = param


_INT_FIELDS = ("max_input_tokens", "max_output_tokens", "max_parallel", "rpm", "tpm")


def _alias_limits(name: str, raw: object, where: str) -> AliasLimits:
    if not isinstance(raw, dict):
        raise LimitsFileError(f"{where}: aliases.{name} must be an object, got {raw!r}")
    values: dict[str, Any] = {}
    for key in _INT_FIELDS:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LimitsFileError(f"{where}: aliases.{name}.{key} must be a positive integer, "
                                  f"got {value!r}; re-run `inv render`")
        values[key] = value
    mode = raw.get("on_max_output", "reject")
    if mode not in ("reject", "clamp"):
        raise LimitsFileError(f"{where}: aliases.{name}.on_max_output must be 'reject' or "
                              f"'clamp', got {mode!r}")
    alias = raw.get("alias", name)
    if not isinstance(alias, str) or not alias:
        raise LimitsFileError(f"{where}: aliases.{name}.alias must be a name, got {alias!r}")
    max_n = raw.get("max_n", 1)
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise LimitsFileError(f"{where}: aliases.{name}.max_n must be a positive integer, "
                              f"got {max_n!r}; re-run `inv render`")
    exact = raw.get("exact_input", False)
    strings = {key: raw.get(key, "") for key in ("tokenize_url", "served_model_name",
                                                  "backend_key_env")}
    if not isinstance(exact, bool) or not all(isinstance(v, str) for v in strings.values()):
        raise LimitsFileError(f"{where}: aliases.{name}: exact_input must be true/false and "
                              "tokenize_url, served_model_name, backend_key_env strings; "
                              "re-run `inv render`")
    if exact and not (strings["tokenize_url"] and strings["served_model_name"]):
        raise LimitsFileError(f"{where}: aliases.{name}: exact_input needs tokenize_url and "
                              "served_model_name; re-run `inv render`")
    return AliasLimits(alias=alias, on_max_output=mode, max_n=max_n, exact_input=exact,
                       **strings, **values)


def load_limits(path: str | Path) -> Limits:
    """Read and check a limits file; :class:`LimitsFileError` names the file and field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LimitsFileError(f"{p}: limits file not found; render it with `inv render` and "
                              f"ship it beside the hooks, or set {LIMITS_ENV}") from None
    except (OSError, ValueError) as exc:
        raise LimitsFileError(f"{p}: cannot read the limits file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("aliases"), dict):
        raise LimitsFileError(f"{p}: expected an object with an 'aliases' object")
    aliases = {str(name): _alias_limits(str(name), raw, str(p))
               for name, raw in data["aliases"].items()}
    backends = data.get("backends", {})
    if not isinstance(backends, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in backends.values()):
        raise LimitsFileError(f"{p}: 'backends' must map backend names to lists of aliases")
    return Limits(aliases=aliases, limits_digest=str(data.get("limits_digest", "")),
                  backends={str(k): tuple(v) for k, v in backends.items()})


def default_limits_path() -> Path:
    """``$VLLMFLEET_LIMITS`` if set, else ``vllmfleet_limits.json`` beside this file."""
    env = os.environ.get(LIMITS_ENV)
    return Path(env) if env else Path(__file__).with_name(LIMITS_FILE)


def _whole_number(field: str, value: object, model: str) -> int:
    """``value`` as an int: ints, whole floats (5000.0) and numeric strings ("5000").

    Anything else is a 400 naming the field: the limit must be compared with the number the
    backend will use, and a 5000.0 or "5000" that slipped past the check would be honoured.
    """
    number: object = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int):
        raise _LimitError(
            400, f"{field}={value!r} is not a whole number (model {model!r}); "
                 f"send {field} as an integer, e.g. {field}=256.",
            type="invalid_request_error", param=field)
    return number


_CLAMP_VALUE = re.compile(r"[0-9]{1,9}->[0-9]{1,9}")
_METADATA_KEYS = ("metadata", "litellm_metadata")


def _metadata_buckets(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [b for b in (data.get(k) for k in _METADATA_KEYS) if isinstance(b, dict)]


def _forget_clamp(data: dict[str, Any]) -> None:
    """Drop a clamp record the client put in its own metadata: headers echo nothing."""
    for bucket in _metadata_buckets(data):
        bucket.pop(_CLAMP_KEY, None)


def _remember_clamp(data: dict[str, Any], asked: int, limit: int) -> None:
    buckets = _metadata_buckets(data)
    if not buckets:
        data["metadata"] = {}
        buckets = [data["metadata"]]
    buckets[0][_CLAMP_KEY] = f"{asked}->{limit}"


def _bad(param: str, message: str) -> _LimitError:
    return _LimitError(400, f"{param}: {message}", type="invalid_request_error", param=param)


def _check_messages(data: Mapping[str, Any]) -> None:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty list of message objects, got "
                               f"{type(messages).__name__}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", "must be an object with role and content, got "
                                         f"{type(message).__name__}")
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
            raise _bad(f"messages[{i}].content", "must be a string or a list of content "
                                                 f"parts (objects), got {type(content).__name__}")


def _check_prompt(data: Mapping[str, Any]) -> None:
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return
    if isinstance(prompt, list) and prompt and all(
            isinstance(p, (int, list)) for p in prompt):
        raise _bad("prompt", "token ids are not accepted through this proxy (LiteLLM 1.108 "
                             "cannot forward them to vLLM); send the prompt as text")
    raise _bad("prompt", f"must be a string or a list of strings, got {type(prompt).__name__}")


def _check_input(data: Mapping[str, Any]) -> None:
    value = data.get("input")
    if isinstance(value, str) and value:
        return
    if isinstance(value, list) and value and all(isinstance(i, (dict, str)) for i in value):
        return
    raise _bad("input", "must be a string or a non-empty list of input items, got "
                        f"{type(value).__name__}")


_BODY_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "acompletion": _check_messages, "completion": _check_messages,
    "anthropic_messages": _check_messages,
    "atext_completion": _check_prompt, "text_completion": _check_prompt,
    "aresponses": _check_input, "responses": _check_input,
}


def _text_of(content: object) -> str:
    """An Anthropic system/content value as plain text (text blocks joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content
                         if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _tokenize_bodies(call_type: str, data: Mapping[str, Any], served: str
                     ) -> tuple[str, list[dict[str, Any]]]:
    """What to send to vLLM's /tokenize for this request: (the field, request bodies).

    A chat-shaped request is counted as chat (``messages``, with the template); a text
    completion per prompt (vLLM runs each prompt of a list as its own request).
    """
    if call_type in ("atext_completion", "text_completion"):
        prompt = data.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
        return "prompt", [{"model": served, "prompt": p} for p in prompts]
    if call_type in ("aresponses", "responses"):
        value = data.get("input")
        messages: list[Any] = ([{"role": "user", "content": value}] if isinstance(value, str)
                               else [i for i in value or [] if isinstance(i, dict)
                                     and "role" in i])
        if isinstance(data.get("instructions"), str):
            messages.insert(0, {"role": "system", "content": data["instructions"]})
        return "input", [{"model": served, "messages": messages}]
    messages = [dict(m) for m in data.get("messages") or []]
    if call_type == "anthropic_messages":
        for m in messages:
            if not isinstance(m.get("content"), str):
                m["content"] = _text_of(m.get("content"))
        system = _text_of(data.get("system"))
        if system:
            messages.insert(0, {"role": "system", "content": system})
    body: dict[str, Any] = {"model": served, "messages": messages}
    if data.get("tools") and call_type != "anthropic_messages":
        body["tools"] = data["tools"]
    return "messages", [body]


def _json_field(response: Any, key: str) -> object:
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _error_text(response: Any) -> str:
    error = _json_field(response, "error")
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    return str(error or response.text)[:300]


def _check_body(call_type: str, data: Mapping[str, Any]) -> None:
    """A 400 naming the field for a body LiteLLM would fail on with a 500."""
    check = _BODY_CHECKS.get(call_type)
    if check is not None:
        check(data)


def _retry_hint(exc: BaseException) -> float | None:
    """A numeric retry-after the exception already carries (own or upstream headers)."""
    sources: list[object] = [getattr(exc, "headers", None)]
    response = getattr(exc, "response", None)
    sources.append(getattr(response, "headers", None))
    for headers in sources:
        if headers is None or not hasattr(headers, "get"):
            continue
        for key in ("retry-after", "Retry-After", "llm_provider-retry-after"):
            value = headers.get(key)
            if value is None:
                continue
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(seconds):
                return seconds
    return None


# vLLM >= 0.29 with --max-num-queued-reqs / --max-num-queued-tokens answers 503 with these
# messages (vllm/exceptions.py QueueOverflowError, MaxQueuedTokensError, read in 0.32.0).
_QUEUE_FULL = ("The engine is currently busy and cannot accept new requests",
               "The engine has reached its prefill token backlog limit")


def _is_queue_full(exc: BaseException) -> bool:
    """A backend's "queue full" 503: a limit (429 + Retry-After), not a fault."""
    if getattr(exc, "status_code", None) != 503:
        return False
    text = str(getattr(exc, "message", None) or exc)
    return any(phrase in text for phrase in _QUEUE_FULL)


def _is_rate_limit(exc: BaseException) -> bool:
    """A 429, or the router's "no deployments available" that LiteLLM answers with 429."""
    if getattr(exc, "status_code", None) == 429:
        return True
    text = str(exc)
    return any(phrase in text for phrase in _NO_DEPLOYMENT)


_PENDING_TTL_S = 30.0


def call_id_of(data: Mapping[str, Any]) -> str | None:
    """LiteLLM's id of one request (``litellm_call_id``, set by the proxy before the hooks)."""
    value = data.get("litellm_call_id")
    return value if isinstance(value, str) and value else None


def _proxy_exception(code: int, message: str, *, type: str,
                     headers: dict[str, str]) -> Exception:
    from litellm.proxy._types import ProxyException  # the proxy's own error: headers kept

    return ProxyException(message=message, type=type, param=None, code=code, headers=headers)


def _seconds_left_in_minute(clock: Callable[[], float]) -> int:
    return max(1, math.ceil(60.0 - clock() % 60.0))


async def _capacity_refusal(model_id: str, clock: Callable[[], float], pending: int = 0
                            ) -> tuple[str, int] | None:
    """Why LiteLLM's router would refuse ``model_id`` now (message, Retry-After), or None."""
    import litellm
    from litellm.proxy import proxy_server
    from litellm.router_utils.client_initalization_utils import MaxParallelRequestsLimit
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import (
        ModelRateLimitingCheck,
    )

    router = getattr(proxy_server, "llm_router", None)
    if router is None:
        return None
    as_dict = next((d for d in router.model_list
                    if (d.get("model_info") or {}).get("id") == model_id), None)
    if as_dict is None:
        return None
    slots = router._get_client(deployment=as_dict, kwargs={},
                               client_type="max_parallel_requests")
    if isinstance(slots, MaxParallelRequestsLimit) and \
            slots.in_flight + pending >= slots.max_parallel_requests:
        return (f"Deployment has all max_parallel_requests slots in use: model {model_id} "
                f"already has max_parallel_requests={slots.max_parallel_requests} requests "
                "in flight; retry when one ends.", PARALLEL_RETRY_AFTER_S)
    check = next((c for c in litellm.callbacks if isinstance(c, ModelRateLimitingCheck)), None)
    if check is None:
        return None
    tpm_limit, rpm_limit = check._get_deployment_limits(as_dict)
    minute = time.strftime("%H-%M", time.gmtime(clock()))
    tpm_key, rpm_key = check._get_cache_keys(as_dict, minute)
    if rpm_limit is not None:
        used = await check.dual_cache.async_get_cache(key=rpm_key)
        if isinstance(used, int) and used >= rpm_limit:
            return (f"Model rate limit exceeded. RPM limit={rpm_limit}, current usage={used} "
                    f"(model {model_id}); the window is the clock minute.",
                    _seconds_left_in_minute(clock))
    if tpm_limit is not None:
        used = await check._async_get_current_tpm(tpm_key, tpm_limit, None)
        if isinstance(used, int) and used >= tpm_limit:
            return (f"Model rate limit exceeded. TPM limit={tpm_limit}, current usage={used} "
                    f"(model {model_id}); the window is the clock minute.",
                    _seconds_left_in_minute(clock))
    return None


class VllmfleetHooks(CustomLogger):
    """The callback LiteLLM loads as ``vllmfleet_hooks.handler``."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.limits = limits
        self._clock = clock
        self._http: Any = None  # httpx.AsyncClient for /tokenize, made on first use
        # requests admitted by the pre-call hook that have not reached the router's slot yet,
        # per alias: call id -> admitted at (monotonic s); see _refuse_when_full
        self._pending: dict[str, dict[str, float]] = {}

    # -- requests -------------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict[str, Any],
                                  call_type: str) -> dict[str, Any]:
        """Refuse names that are not aliases, malformed bodies, and output over the limit.

        Over the limit: a 400 naming the field and the limit, or (``on_max_output: clamp``)
        the field lowered to the limit. A request that names no limit gets the alias's.
        """
        _forget_clamp(data)
        if "model" not in data and call_type not in _PRIMARY_FIELD:
            return data  # files, batches, management: no model, nothing generated here
        model = data.get("model")
        limits = self._resolve(model)
        if call_type in _OTHER_CALLS:
            return data
        primary = _PRIMARY_FIELD.get(call_type)
        if primary is None:
            raise _LimitError(
                400, f"this proxy does not serve {call_type!r} requests for model {model!r}: "
                     "it enforces its limits on /v1/chat/completions, /v1/completions, "
                     "/v1/responses and /v1/messages only; use one of those.",
                type="invalid_request_error", param="model")
        _check_body(call_type, data)
        if limits.exact_input:
            await self._check_input(limits, call_type, data)
        extra = data.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            raise _LimitError(400, f"extra_body must be a JSON object, got "
                                   f"{type(extra).__name__}", type="invalid_request_error",
                              param="extra_body")
        places: list[tuple[str, dict[str, Any]]] = [("", data)]
        if isinstance(extra, dict):
            places.append(("extra_body.", extra))
        self._check_n(limits, places, str(model))
        await self._refuse_when_full(limits, data)
        limit = limits.max_output_tokens
        asked = [(prefix, where, f) for prefix, where in places for f in _OUTPUT_FIELDS
                 if where.get(f) is not None]
        if not asked:
            data[primary] = limit
            return data
        for prefix, where, field in asked:
            value = _whole_number(prefix + field, where[field], str(model))
            where[field] = value
            if value <= limit:
                continue
            if limits.on_max_output == "clamp":
                where[field] = limit
                _remember_clamp(data, value, limit)
                continue
            raise _LimitError(
                400, f"{prefix}{field}={value} exceeds the output limit of model {model!r} "
                     f"(alias {limits.alias}): max_output_tokens={limit}. "
                     f"Ask for at most {limit} output tokens.",
                type="invalid_request_error", param=prefix + field)
        return data

    async def _check_input(self, limits: AliasLimits, call_type: str,
                           data: Mapping[str, Any]) -> None:
        """Count the prompt with the backend's own tokenizer; over max_input_tokens is a 400.

        LiteLLM counts with tiktoken cl100k for models it does not know, which counts code,
        whitespace runs and non-English text far lower than the model's tokenizer; vLLM's
        ``POST /tokenize`` applies the model's chat template and tokenizer, so its count is
        the one the backend will see. Unreachable or failing: a 503, never a silent pass.
        """
        param, bodies = _tokenize_bodies(call_type, data, limits.served_model_name)
        for body in bodies:
            count = await self._count(limits, body)
            if count > limits.max_input_tokens:
                raise _LimitError(
                    400, f"the prompt is {count} tokens by the backend's own tokenizer (chat "
                         f"template included), over the input limit of model "
                         f"{data.get('model')!r} (alias {limits.alias}): "
                         f"max_input_tokens={limits.max_input_tokens}. Shorten the prompt.",
                    type="invalid_request_error", param=param)

    async def _count(self, limits: AliasLimits, body: dict[str, Any]) -> int:
        import httpx  # a LiteLLM dependency

        headers = {}
        key = os.environ.get(limits.backend_key_env) if limits.backend_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TOKENIZE_TIMEOUT_S, trust_env=False)
        where = f"the backend's /tokenize ({limits.tokenize_url})"
        try:
            response = await self._http.post(limits.tokenize_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _LimitError(
                503, f"cannot count the prompt for alias {limits.alias}: {where} did not "
                     f"answer ({type(exc).__name__}); the backend is down or unreachable. "
                     "Retry later; `inv health` shows which host.",
                type="service_unavailable") from None
        if response.status_code == 400:
            raise _LimitError(400, f"the backend cannot tokenize this prompt: "
                                   f"{_error_text(response)}", type="invalid_request_error")
        count = _json_field(response, "count")
        if response.status_code != 200 or not isinstance(count, int):
            raise _LimitError(
                503, f"cannot count the prompt for alias {limits.alias}: {where} answered "
                     f"{response.status_code} {_error_text(response)}; check the backend "
                     "(and its key in the proxy's environment).", type="service_unavailable")
        return count

    def _resolve(self, model: object) -> AliasLimits:
        """The limits of the alias ``model`` names; any other name is a 400."""
        if isinstance(model, str):
            limits = self.limits.aliases.get(model)
            if limits is not None:
                return limits
        known = ", ".join(sorted(self.limits.aliases))
        served = self.limits.backends.get(model) if isinstance(model, str) else None
        if served:
            raise _LimitError(
                400, f"model {model!r} is a backend name, not an alias of this proxy: the "
                     f"proxy enforces limits per alias. Send one of the aliases it serves: "
                     f"{', '.join(served)}.", type="invalid_request_error", param="model")
        shown = repr(model)[:80] if isinstance(model, str) else type(model).__name__
        raise _LimitError(
            400, f"model {shown} is not an alias of this proxy; send one of: {known}.",
            type="invalid_request_error", param="model")

    @staticmethod
    def _check_n(limits: AliasLimits, places: list[tuple[str, dict[str, Any]]],
                 model: str) -> None:
        """``n`` and ``best_of`` multiply the output: at most the alias's ``max_n``."""
        for prefix, where in places:
            for field in _MULTI_FIELDS:
                if where.get(field) is None:
                    continue
                value = _whole_number(prefix + field, where[field], model)
                where[field] = value
                if value > limits.max_n:
                    raise _LimitError(
                        400, f"{prefix}{field}={value} exceeds the alias's max_n={limits.max_n} "
                             f"(model {model!r}, alias {limits.alias}): each choice may "
                             f"use max_output_tokens={limits.max_output_tokens}, so the "
                             f"proxy allows at most {limits.max_n} per request.",
                        type="invalid_request_error", param=prefix + field)

    async def _refuse_when_full(self, limits: AliasLimits, data: Mapping[str, Any]) -> None:
        """A 429 with Retry-After now, when LiteLLM's own check would refuse without one.

        On /v1/completions and /v1/messages LiteLLM 1.108.7 ignores what
        :meth:`async_post_call_failure_hook` returns (proxy_server.completion and
        anthropic_endpoints build their own error), so the RPM/TPM and parallel-cap 429s
        the router raises there carry no Retry-After. This looks at the same counters first
        -- the deployment's ``MaxParallelRequestsLimit`` and ``ModelRateLimitingCheck``'s
        per-minute keys -- without changing them, and refuses with a ``ProxyException``,
        whose headers every route keeps. LiteLLM's own checks still run after it (two
        requests racing for the last slot may still meet LiteLLM's bare 429). A burst passes
        this hook before any of it takes a slot, so requests admitted here count as taken
        until the deployment hook sees them at the backend call (or they fail, or
        :data:`_PENDING_TTL_S` passes). Any surprise
        in LiteLLM's internals skips the look: it never fails a request by itself.
        """
        pending = self._pending.setdefault(limits.alias, {})
        now = time.monotonic()
        for call_id in [c for c, t in pending.items() if now - t > _PENDING_TTL_S]:
            del pending[call_id]  # never reached the router and never failed: forget it
        try:
            refusal = await _capacity_refusal(limits.alias, self._clock, len(pending))
        except Exception as exc:  # a look at internals must never fail a request
            _log.debug("vllmfleet hooks: capacity look skipped: %r", exc)
            return
        if refusal is not None:
            message, retry_after = refusal
            raise _proxy_exception(429, message, type="rate_limit_error",
                                   headers={"Retry-After": str(retry_after)})
        if call_id_of(data) is not None:
            pending[str(call_id_of(data))] = now

    def _admitted(self, data: Mapping[str, Any]) -> None:
        """The request reached the router's slot (or failed): no longer pending."""
        call_id = call_id_of(data)
        if call_id is not None:
            for pending in self._pending.values():
                pending.pop(call_id, None)

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any],
                                             call_type: Any) -> dict[str, Any] | None:
        """The last look before the backend call: no pass-through, nothing over the limit.

        LiteLLM 1.108.7 runs this (``utils.async_pre_call_deployment_hook``) for every
        provider call, after the deployment is chosen, on the final arguments -- also for
        ``/vllm/*`` pass-through requests (call type ``allm_passthrough_route``), which skip
        :meth:`async_pre_call_hook` and would reach vLLM with no limit at all.
        """
        self._admitted(kwargs)
        kind = str(getattr(call_type, "value", call_type))
        if kind in ("allm_passthrough_route", "llm_passthrough_route"):
            raise _LimitError(
                403, "the /vllm/* pass-through routes skip the proxy's limits and are "
                     "closed; use /v1/chat/completions, /v1/completions, /v1/responses or "
                     "/v1/messages.", type="invalid_request_error")
        return None

    async def async_post_call_response_headers_hook(
            self, data: dict[str, Any], user_api_key_dict: Any, response: Any,
            request_headers: dict[str, str] | None = None,
            litellm_call_info: dict[str, object] | None = None) -> dict[str, str] | None:
        """Tell the client when its max_tokens was clamped (digits only, never its text)."""
        for bucket in _metadata_buckets(data):
            value = bucket.get(_CLAMP_KEY)
            if isinstance(value, str) and _CLAMP_VALUE.fullmatch(value):
                return {CLAMP_HEADER: value}
        return None

    # -- failures -------------------------------------------------------------------------

    def retry_after(self, exc: BaseException) -> int:
        """Whole seconds until the limit behind a 429 frees (at least 1)."""
        text = str(getattr(exc, "message", None) or exc)
        kind = getattr(exc, "rate_limit_type", None)
        if kind == "concurrent_requests" or "max_parallel_requests" in text:
            return PARALLEL_RETRY_AFTER_S
        if kind in ("requests", "tokens") or "Model rate limit exceeded" in text:
            return max(1, math.ceil(60.0 - self._clock() % 60.0))
        cooldown = getattr(exc, "cooldown_time", None)
        if isinstance(cooldown, (int, float)) and cooldown > 0:
            return max(1, math.ceil(cooldown))
        hint = _retry_hint(exc)
        return max(1, math.ceil(hint)) if hint is not None and hint > 0 else PARALLEL_RETRY_AFTER_S

    async def async_post_call_failure_hook(self, request_data: dict[str, Any],
                                           original_exception: Exception,
                                           user_api_key_dict: Any,
                                           traceback_str: str | None = None
                                           ) -> HTTPException | None:
        """Give a 429 a standard Retry-After, a wrong key a 401; leave other errors alone."""
        exc = original_exception
        if isinstance(request_data, Mapping):
            self._admitted(request_data)
        if getattr(exc, "type", None) == "no_db_connection":
            return _LimitError(401, _WRONG_KEY, type="auth_error")
        headers = getattr(exc, "headers", None)
        if isinstance(headers, Mapping) and any(k.lower() == "retry-after" for k in headers) \
                and not hasattr(exc, "llm_provider"):
            return None  # ours (a ProxyException/HTTPException that already says when)
        if _is_queue_full(exc):
            message = str(getattr(exc, "message", None) or exc)
            return _LimitError(429, f"the backend's request queue is full: {message}",
                               type="rate_limit_error",
                               headers={"Retry-After": str(PARALLEL_RETRY_AFTER_S)})
        if not _is_rate_limit(exc):
            return None
        message = str(getattr(exc, "message", None) or getattr(exc, "detail", None) or exc)
        return _LimitError(429, message, type="rate_limit_error",
                           headers={"Retry-After": str(self.retry_after(exc))})


def _load_handler() -> VllmfleetHooks:
    path = default_limits_path()
    if __name__ == "vllmfleet.proxy_hooks" and not path.exists():
        # imported from the installed package (tests, tooling), not shipped beside a config
        return VllmfleetHooks(Limits(aliases={}))
    limits = load_limits(path)
    _log.info("vllmfleet hooks: %d alias name(s) from %s (inventory %s)",
              len(limits.aliases), path, limits.limits_digest[:12] or "?")
    return VllmfleetHooks(limits)


handler = _load_handler()
