"""LiteLLM proxy hooks: per-alias output limits and a standard ``Retry-After`` on every 429.

This module runs *inside* the LiteLLM proxy, not in vllmfleet. ``inv render`` copies it
verbatim beside the rendered ``config.yaml`` as ``vllmfleet_hooks.py`` and the config
names it in ``litellm_settings.callbacks: ["vllmfleet_hooks.handler"]``; LiteLLM loads
``<config dir>/vllmfleet_hooks.py`` before looking on its Python path. On a proxy host
LiteLLM often runs in its own venv or container, so this file imports LiteLLM, FastAPI
(a LiteLLM proxy dependency) and the standard library only — never ``vllmfleet``.

Limits come from ``vllmfleet_limits.json`` next to this file (or the path in the
environment variable ``VLLMFLEET_LIMITS``), rendered from the inventory::

    {"aliases": {"<every name a client may send, also-names included>": {
        "alias": "<the inventory alias>", "max_input_tokens": 14000,
        "max_output_tokens": 1024, "on_max_output": "reject" | "clamp",
        "max_parallel": 6, "rpm": 60, "tpm": 120000}},
     "limits_digest": "<sha256 of the aliases table>"}

What LiteLLM 1.106 does and what these hooks add (each point tried on a real proxy)
-----------------------------------------------------------------------------------
* ``max_output_tokens`` in ``model_info`` is not enforced by LiteLLM. :meth:`async_pre_call_hook`
  reads ``max_tokens``/``max_completion_tokens`` as whole numbers (``5000.0`` and ``"5000"``
  become 5000 and are forwarded as ints; anything else is a 400 naming the field), and
  rejects those above the alias's limit with a 400 whose
  message names the alias, the limit and the fix (``param`` is the offending field), or
  lowers it to the limit when the alias says ``on_max_output: clamp`` (the response then
  carries ``x-vllmfleet-max-tokens-clamped: <asked>-><limit>``). A request that asks for no
  limit gets ``max_tokens = max_output_tokens``: vLLM would otherwise default to
  ``max_model_len - prompt`` and run past the alias's limit. The hook raises only
  ``HTTPException`` (anything else becomes a 500 in LiteLLM). It must be defined on the
  leaf class: LiteLLM calls ``async_pre_call_hook`` only when it is in ``vars(cls)``.
* ``max_input_tokens`` is enforced by LiteLLM itself with
  ``router_settings.enable_pre_call_checks: true`` (400 ``ContextWindowExceededError``
  "… Max Input Tokens=N, Got=M" before the backend is called), so the hooks leave it alone.
* RPM/TPM (``model_info.rpm/tpm`` with ``optional_pre_call_checks:
  ["enforce_model_rate_limits"]``) answer 429 ``RateLimitError`` "Model rate limit exceeded.
  RPM limit=N …" whose only retry hint is ``llm_provider-retry-after: 60``. The window is the
  UTC clock minute (key ``%H-%M``); rejected requests count too.
* Concurrency: ``litellm_params.max_parallel_requests`` is a per-deployment in-flight counter
  (``MaxParallelRequestsLimit``) taken around the provider call and, for streams, held
  until the stream is exhausted or closed; a request that finds every slot taken gets an
  immediate 429 "Deployment has all max_parallel_requests slots in use" (``rate_limit_type
  = concurrent_requests``), never a wait. Tried on loopback: bursts of 4-6 against a cap of 2
  gave exactly 2 x 200 every time, also after streamed requests, backend 400s and 500s and
  clients that disconnected mid-request or mid-stream — no leaked slot. So the proxy's cap
  is LiteLLM's own (rendered as ``max_parallel_requests = concurrency + queue_depth``); this
  module does not count in-flight requests, it only gives that 429 a ``Retry-After``. Also-
  names share the deployment (``model_group_alias``) and so its slots; a profile (the burst
  alias) is its own deployment with its own slots and counters.
* Every 429 leaves through :meth:`async_post_call_failure_hook`, which returns an
  ``HTTPException`` with the same message and a standard ``Retry-After`` in whole seconds:
  the seconds left in the current UTC minute for RPM/TPM, :data:`PARALLEL_RETRY_AFTER_S` for
  the parallel cap, the router's cooldown for "No deployments available" (a ``ValueError``
  without a status that LiteLLM answers with 429, with no Retry-After when the cooldown
  is 0), else the upstream's own hint. LiteLLM copies the exception's headers onto the response
  (``common_request_processing.handle_llm_api_exception``). Non-429 errors pass through
  unchanged, so a limit is never turned into a 5xx.
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
"""Retry-After for the in-flight cap: a slot frees when any running request ends."""

_CHAT_FIELDS = ("max_tokens", "max_completion_tokens")
# The output-token fields of each LiteLLM call type that generates text, as LiteLLM 1.106 names
# the call types in async_pre_call_hook: chat and text completions, the Responses API
# (/v1/responses, max_output_tokens) and the Anthropic-style /v1/messages (max_tokens).
_OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "completion": _CHAT_FIELDS, "acompletion": _CHAT_FIELDS,
    "text_completion": _CHAT_FIELDS, "atext_completion": _CHAT_FIELDS,
    "responses": ("max_output_tokens",), "aresponses": ("max_output_tokens",),
    "anthropic_messages": ("max_tokens",),
}
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


class Limits(NamedTuple):
    """Every name a client may send, mapped to its alias's limits."""

    aliases: Mapping[str, AliasLimits]
    limits_digest: str = ""


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
    return AliasLimits(alias=alias, on_max_output=mode, **values)


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
    return Limits(aliases=aliases, limits_digest=str(data.get("limits_digest", "")))


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


def _is_rate_limit(exc: BaseException) -> bool:
    """A 429, or the router's "no deployments available" that LiteLLM answers with 429."""
    if getattr(exc, "status_code", None) == 429:
        return True
    text = str(exc)
    return any(phrase in text for phrase in _NO_DEPLOYMENT)


class VllmfleetHooks(CustomLogger):
    """The callback LiteLLM loads as ``vllmfleet_hooks.handler``."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.limits = limits
        self._clock = clock

    # -- requests -------------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict[str, Any],
                                  call_type: str) -> dict[str, Any]:
        """Reject, clamp or fill in the requested output tokens of a known alias."""
        limits = self.limits.aliases.get(str(data.get("model")))
        fields = _OUTPUT_FIELDS.get(call_type)
        if limits is None or fields is None:
            return data
        limit = limits.max_output_tokens
        asked = [(f, data[f]) for f in fields if data.get(f) is not None]
        if not asked:
            data[fields[0]] = limit
            return data
        for field, raw in asked:
            value = _whole_number(field, raw, str(data.get("model")))
            data[field] = value
            if value <= limit:
                continue
            if limits.on_max_output == "clamp":
                data[field] = limit
                metadata = data.setdefault("metadata", {})
                if isinstance(metadata, dict):
                    metadata[_CLAMP_KEY] = f"{value}->{limit}"
                continue
            raise _LimitError(
                400, f"{field}={value} exceeds the output limit of model {data.get('model')!r} "
                     f"(alias {limits.alias}): max_output_tokens={limit}. "
                     f"Ask for at most {limit} output tokens.",
                type="invalid_request_error", param=field)
        return data

    async def async_post_call_response_headers_hook(
            self, data: dict[str, Any], user_api_key_dict: Any, response: Any,
            request_headers: dict[str, str] | None = None,
            litellm_call_info: dict[str, object] | None = None) -> dict[str, str] | None:
        """Tell the client when its max_tokens was clamped."""
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and metadata.get(_CLAMP_KEY):
            return {CLAMP_HEADER: str(metadata[_CLAMP_KEY])}
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
        if getattr(exc, "type", None) == "no_db_connection":
            return _LimitError(401, _WRONG_KEY, type="auth_error")
        if not _is_rate_limit(exc):
            return None
        headers = getattr(exc, "headers", None)
        if isinstance(exc, HTTPException) and headers and any(
                k.lower() == "retry-after" for k in headers):
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
