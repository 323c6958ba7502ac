"""What changes with the emulated vLLM version: length rules and the error body's shape.

Three eras of vLLM's OpenAI server (``vllm/entrypoints/openai/serving_engine.py`` and,
later, ``SamplingParams`` after the renderer clamps ``max_tokens``). Which version is in
which era, and the source of each boundary, is in :data:`vllmfleet.vllm.versions.FACTS`
(the 0.32 rules are from its source and a real run; the 0.10/0.11 ones from field answers):

``reject-sum`` (before 0.10)
    prompt >= L with max_tokens omitted → "This model's maximum context length is L tokens.
    However, you requested P tokens in the messages, Please reduce the length of the
    messages."; prompt + max_tokens > L → "… However, you requested P+M tokens (P in the
    messages, M in the completion). Please reduce the length of the messages or completion."
``reject-max-tokens`` (0.10 to 0.31; the fleet's v0.11.0)
    prompt >= L → "… However, your request has P input tokens. Please reduce the length of
    the input messages."; prompt + max_tokens > L → "'max_tokens' or 'max_completion_tokens'
    is too large: M. This model's maximum context length is L tokens and your request has P
    input tokens (M > L - P)."
``clamp`` (0.32 and later; seen in a real 0.32.0 run)
    prompt > L → "… your prompt contains at least L+1 input tokens, which exceeds this
    limit even without any output tokens …" (a text prompt is tokenized only up to L+1
    tokens; token ids are counted exactly); max_tokens > L → "max_tokens=M cannot be
    greater than max_model_len=L …" (naming max_completion_tokens / max_output_tokens
    when that field was given); prompt + max_tokens > L → accepted, max_tokens clamped to
    L - P (finish_reason "length"); prompt == L → "max_tokens must be at least 1, got 0".
    Each message ends with " (parameter=X, value=V)" and the body's ``param`` is X.

In every era an omitted max_tokens means L - P for chat and 16 for completions, and a
max_tokens below 1 is "max_tokens must be at least 1, got M.". Error bodies are nested,
``{"error": {message, type, param, code}}``, from 0.10.1 on and flat
``{"object": "error", message, type, param, code}`` before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmfleet.vllm.versions import Era, VllmFacts, facts_for, parse_version

__all__ = ["COMPLETIONS_DEFAULT_MAX_TOKENS", "Budget", "Era", "LengthError", "VersionRules",
           "parse_version", "resolve_max_tokens"]
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True, kw_only=True)
class VersionRules:
    """The behaviours of one emulated vLLM version (from :mod:`vllmfleet.vllm.versions`)."""

    version: str
    era: Era
    nested_errors: bool
    facts: VllmFacts

    @classmethod
    def of(cls, version: str) -> VersionRules:
        facts = facts_for(parse_version(version))
        return cls(version=version, era=facts.era, nested_errors=facts.nested_errors,
                   facts=facts)

    def error_body(self, message: str, *, type_: str = "BadRequestError",
                   code: int = 400, param: str | None = None) -> dict[str, Any]:
        """vLLM's error response body for this version."""
        info = {"message": message, "type": type_, "param": param, "code": code}
        return {"error": info} if self.nested_errors else {"object": "error", **info}

    def invalid(self, message: str, *, param: str, value: Any) -> tuple[str, str | None]:
        """A ``VLLMValidationError``'s message and ``param`` for this version: 0.32 appends
        " (parameter=X, value=V)" and names the parameter; older versions raised a plain
        ValueError (no suffix, param null)."""
        if not self.facts.validation_suffix:
            return message, None
        extras = [f"parameter={param}"] + ([] if value is None else [f"value={value}"])
        return f"{message} ({', '.join(extras)})", param


class LengthError(ValueError):
    """A request that vLLM rejects with 400 for its length; the message is vLLM's.

    ``param``/``value``: what 0.32's ``VLLMValidationError`` names (see
    :meth:`VersionRules.invalid`); None where vLLM names nothing."""

    def __init__(self, message: str, *, param: str | None = None,
                 value: object = None) -> None:
        super().__init__(message)
        self.param = param
        self.value = value


@dataclass(frozen=True, kw_only=True)
class Budget:
    """The outcome of the length rules: how many tokens the request may generate."""

    max_tokens: int
    clamped: bool  # max_tokens was lowered to fit (clamp era)


def resolve_max_tokens(rules: VersionRules, *, prompt_tokens: int, requested: int | None,
                       max_model_len: int, chat: bool, field: str = "max_tokens",
                       token_ids: bool = False) -> Budget:
    """Apply the length rules of ``rules`` to one request; raise :class:`LengthError`.

    ``field``: the request field ``requested`` came from (0.32 names it when it is too
    large: ``max_completion_tokens``, ``max_output_tokens``); ``token_ids``: the prompt
    came as token ids (0.32 counts those exactly; a text prompt is tokenized only up to
    L+1 tokens, so an over-long one is reported as "at least L+1")."""
    p, m, limit = prompt_tokens, requested, max_model_len
    if m is not None and m < 1:
        raise LengthError(f"max_tokens must be at least 1, got {m}.", param="max_tokens",
                          value=m)
    if m is None and not chat:
        m = COMPLETIONS_DEFAULT_MAX_TOKENS
    if rules.era == "clamp":
        return _clamp(p, m, limit, field=field, token_ids=token_ids)
    if rules.era == "reject-max-tokens":
        if p >= limit:
            raise LengthError(
                f"This model's maximum context length is {limit} tokens. However, your "
                f"request has {p} input tokens. Please reduce the length of the input "
                "messages.")
        if m is None:
            return Budget(max_tokens=limit - p, clamped=False)
        if p + m > limit:
            raise LengthError(
                f"'max_tokens' or 'max_completion_tokens' is too large: {m}. This model's "
                f"maximum context length is {limit} tokens and your request has {p} input "
                f"tokens ({m} > {limit} - {p}).")
        return Budget(max_tokens=m, clamped=False)
    if m is None:
        if p >= limit:
            raise LengthError(
                f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {p} tokens in the messages, Please reduce the length of the "
                "messages.")
        m = limit - p
    if p + m > limit:
        raise LengthError(
            f"This model's maximum context length is {limit} tokens. However, you "
            f"requested {p + m} tokens ({p} in the messages, {m} in the completion). "
            "Please reduce the length of the messages or completion.")
    return Budget(max_tokens=m, clamped=False)


def _clamp(p: int, m: int | None, limit: int, *, field: str, token_ids: bool) -> Budget:
    """0.32.0 source: vllm/renderers/params.py (_token_len_check, the max_output_tokens
    check) and vllm/entrypoints/serve/utils/api_utils.py (get_max_tokens)."""
    if p > limit:
        shown = p if token_ids else limit + 1
        qualifier = "at least " if shown == limit + 1 else ""
        raise LengthError(
            f"This model's maximum context length is {limit} tokens. However, your prompt "
            f"contains {qualifier}{shown} input tokens, which exceeds this limit even "
            "without any output tokens. Please reduce the length of the input prompt.",
            param="input_tokens", value=shown)
    if m is not None and m > limit:
        raise LengthError(
            f"{field}={m} cannot be greater than max_model_len={limit}. Please request "
            "fewer output tokens.", param=field, value=m)
    room = limit - p
    if room < 1:
        raise LengthError(f"max_tokens must be at least 1, got {room}.", param="max_tokens",
                          value=room)
    if m is None:
        return Budget(max_tokens=room, clamped=False)
    return Budget(max_tokens=min(m, room), clamped=m > room)
