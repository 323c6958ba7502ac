"""Request bodies of the OpenAI-compatible API, checked the way vLLM's pydantic models do.

Every problem becomes :class:`ApiError` (400, ``BadRequestError``) naming the field, so
a malformed request never turns into a 500. Fields vLLM accepts but the emulator has no
use for (temperature, top_p, stop, seed …) are accepted and ignored, as vLLM ignores
unknown ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, vLLM error type and message."""

    def __init__(self, message: str, *, status: int = 400,
                 type_: str = "BadRequestError") -> None:
        self.status = status
        self.type = type_
        super().__init__(message)


def _invalid(field: str, problem: str, value: Any = None) -> ApiError:
    shown = "" if value is None else f" (got {json.dumps(value)[:80]})"
    return ApiError(f"1 validation error: body.{field}: {problem}{shown}")


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"JSON decode error: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("the request body must be a JSON object, e.g. "
                       '{"model": "...", "messages": [...]}')
    return data


def opt_int(data: dict[str, Any], key: str, *, ge: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _invalid(key, "Input should be a valid integer", value)
    if ge is not None and value < ge:
        raise _invalid(key, f"Input should be greater than or equal to {ge}", value)
    return value


def opt_bool(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(key, "Input should be a valid boolean", value)
    return value


def opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(key, "Input should be a valid string", value)
    return value


@dataclass(frozen=True, kw_only=True)
class Generate:
    """What a chat or completions request asks the engine for."""

    model: str | None
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool
    min_tokens: int


def generate_options(data: dict[str, Any]) -> Generate:
    """The options chat and completions requests share (vLLM's SamplingParams subset)."""
    stream = opt_bool(data, "stream", False)
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid("stream_options", "Input should be a valid dictionary", options)
        if not stream:
            raise ApiError("Stream options can only be defined when `stream=True`.")
        include_usage = opt_bool(options, "include_usage", False)
    n = opt_int(data, "n", ge=1)
    if n is not None and n != 1:
        raise ApiError(f"n={n} is not supported by the vLLM emulator; it generates one "
                       "choice per request (leave n out or set it to 1)")
    max_tokens = opt_int(data, "max_completion_tokens") or opt_int(data, "max_tokens")
    return Generate(model=opt_str(data, "model"), max_tokens=max_tokens, stream=stream,
                    include_usage=include_usage, ignore_eos=opt_bool(data, "ignore_eos", False),
                    min_tokens=opt_int(data, "min_tokens", ge=0) or 0)


def messages_of(data: dict[str, Any]) -> list[Any]:
    messages = data.get("messages")
    if messages is None:
        raise _invalid("messages", "Field required")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "Input should be a non-empty list of messages", messages)
    return messages


def prompt_of(data: dict[str, Any]) -> str | list[int]:
    """A completions prompt: a string or a list of token ids (or a list of one of them)."""
    prompt = data.get("prompt")
    if prompt is None:
        raise _invalid("prompt", "Field required")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in prompt):
        return list(prompt)
    raise _invalid("prompt", "Input should be a string or a list of token ids (the emulator "
                   "takes one prompt per request)", prompt)


def token_ids_of(data: dict[str, Any]) -> list[int]:
    tokens = data.get("tokens")
    if tokens is None:
        raise _invalid("tokens", "Field required")
    if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise _invalid("tokens", "Input should be a list of integers", tokens)
    return tokens


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


def model_card(name: str, *, root: str, max_model_len: int, created: int) -> dict[str, Any]:
    """One entry of /v1/models, as vLLM's ModelCard serialises it."""
    return {
        "id": name, "object": "model", "created": created, "owned_by": "vllm", "root": root,
        "parent": None, "max_model_len": max_model_len,
        "permission": [{
            "id": f"modelperm-{name}", "object": "model_permission", "created": created,
            "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
            "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
            "organization": "*", "group": None, "is_blocking": False,
        }],
    }
