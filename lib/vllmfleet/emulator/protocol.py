"""Request bodies of the OpenAI-compatible API, checked the way vLLM's pydantic models do.

Every problem becomes :class:`ApiError` (400, ``BadRequestError``) naming the field, so
a malformed request never turns into a 500. Sampling parameters are checked with the
bounds and messages of vLLM 0.32's ``SamplingParams._verify_args``
(``vllm/sampling_params.py``) and otherwise ignored (the emulator's text does not depend
on them); fields it has no use for (stop, seed …) are accepted, as vLLM ignores unknown
ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, vLLM error type and message.

    ``param``/``value``: the parameter a ``VLLMValidationError`` names (the answer's
    ``param`` and, in versions that have it, the " (parameter=X, value=V)" suffix —
    the API formats them per version); ``field``: a request-schema (pydantic) error's
    field, which 0.32 reports as ``param`` "body.<field>" with type "Bad Request".
    """

    def __init__(self, message: str, *, status: int = 400, type_: str = "BadRequestError",
                 param: str | None = None, value: Any = None,
                 field: str | None = None) -> None:
        self.status = status
        self.type = type_
        self.param = param
        self.value = value
        self.field = field
        super().__init__(message)


def _invalid(field: str, problem: str, value: Any = None, *,
             kind: str = "value_error") -> ApiError:
    """A request-schema error, shaped as vLLM 0.32's validation handler renders pydantic's
    (``vllm/entrypoints/serve/exception_handling/handlers/validation.py``)."""
    shown = value if not isinstance(value, list | dict) else (
        f"<{type(value).__name__} of {len(value)} items>")
    detail = {"type": kind, "loc": f"body.{field}", "msg": problem, "input": shown}
    return ApiError(f"1 validation error:\n  {detail}", type_="Bad Request", field=field)


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:  # 0.32.0: pydantic's json_invalid at the position
        raise _invalid(str(exc.pos), "JSON decode error", {}, kind="json_invalid") from None
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
        elif isinstance(value, str):
            raise _invalid(key, "Input should be a valid integer, unable to parse string as "
                           "an integer", value, kind="int_parsing")
        else:
            raise _invalid(key, "Input should be a valid integer", value, kind="int_type")
    if ge is not None and value < ge:
        raise _invalid(key, f"Input should be greater than or equal to {ge}", value,
                       kind="greater_than_equal")
    return value


def opt_float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _invalid(key, "Input should be a valid number, unable to parse string "
                               "as a number", value, kind="float_parsing") from None
        raise _invalid(key, "Input should be a valid number", value, kind="float_type")
    return float(value)


def _sampling_error(message: str, param: str | None = None,
                    value: Any = None) -> ApiError:
    return ApiError(message, param=param, value=value)


def check_sampling(data: dict[str, Any], *, n: int) -> None:
    """vLLM's ``SamplingParams._verify_args`` bounds, in its order (0.32.0 source:
    ``vllm/sampling_params.py``); only temperature and top_p name their parameter there."""
    if n < 1:
        raise _sampling_error(f"n must be at least 1, got {n}.")
    for key in ("presence_penalty", "frequency_penalty"):
        penalty = opt_float(data, key)
        if penalty is not None and not -2.0 <= penalty <= 2.0:
            raise _sampling_error(f"{key} must be in [-2, 2], got {penalty}.")
    repetition = opt_float(data, "repetition_penalty")
    if repetition is not None and repetition <= 0.0:
        raise _sampling_error(
            f"repetition_penalty must be greater than zero, got {repetition}.")
    temperature = opt_float(data, "temperature")
    if temperature is not None:
        if temperature < 0.0:
            raise _sampling_error(f"temperature must be non-negative, got {temperature}.",
                                  "temperature", temperature)
        if temperature > 2.0:
            raise _sampling_error(f"temperature must be in [0, 2], got {temperature}.",
                                  "temperature", temperature)
    top_p = opt_float(data, "top_p")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise _sampling_error(f"top_p must be in (0, 1], got {top_p}.", "top_p", top_p)
    top_k = opt_int(data, "top_k")
    if top_k is not None and top_k < -1:
        raise _sampling_error(f"top_k must be 0 (disable), or at least 1, got {top_k}.")
    min_p = opt_float(data, "min_p")
    if min_p is not None and not 0.0 <= min_p <= 1.0:
        raise _sampling_error(f"min_p must be in [0, 1], got {min_p}.")


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
    n: int = 1
    logprobs: int | None = None  # top-N alternatives per token; None: no logprobs
    max_tokens_field: str = "max_tokens"


def _max_tokens(data: dict[str, Any], *, chat: bool) -> tuple[int | None, str]:
    """The output limit and the field it came from: in chat, ``max_completion_tokens``
    wins over ``max_tokens`` when given (a real 0.32.0 run: ``max_completion_tokens: 0``
    with ``max_tokens: 3`` is refused as "max_tokens must be at least 1, got 0");
    completions have no ``max_completion_tokens``."""
    completion = opt_int(data, "max_completion_tokens") if chat else None
    if completion is not None:
        return completion, "max_completion_tokens"
    return opt_int(data, "max_tokens"), "max_tokens"


def _logprobs(data: dict[str, Any], *, chat: bool) -> int | None:
    if not chat:
        return opt_int(data, "logprobs")
    wanted = opt_bool(data, "logprobs", False)
    top = opt_int(data, "top_logprobs")
    if top is not None and top < 0 and top != -1:
        raise ApiError("`top_logprobs` must be a positive value or -1.",
                       param="top_logprobs", value=top)
    if top is not None and (top == -1 or top > 0) and not wanted:
        raise ApiError("when using `top_logprobs`, `logprobs` must be set to true.",
                       param="top_logprobs")
    return (top or 0) if wanted else None


def generate_options(data: dict[str, Any], *, chat: bool = True) -> Generate:
    """The options chat and completions requests share (vLLM's SamplingParams subset)."""
    stream = opt_bool(data, "stream", False)
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid("stream_options", "Input should be a valid dictionary", options,
                           kind="dict_type")
        if not stream:
            raise ApiError("Stream options can only be defined when `stream=True`.",
                           param="stream_options")
        include_usage = opt_bool(options, "include_usage", False)
    n = opt_int(data, "n")
    n = 1 if n is None else n
    check_sampling(data, n=n)
    logprobs = _logprobs(data, chat=chat)
    if logprobs is not None and logprobs < 0 and logprobs != -1:
        raise ApiError(f"logprobs must be non-negative or -1, got {logprobs}.",
                       param="logprobs", value=logprobs)
    max_tokens, field = _max_tokens(data, chat=chat)
    return Generate(model=opt_str(data, "model"), max_tokens=max_tokens, stream=stream,
                    include_usage=include_usage, ignore_eos=opt_bool(data, "ignore_eos", False),
                    min_tokens=opt_int(data, "min_tokens", ge=0) or 0, n=n, logprobs=logprobs,
                    max_tokens_field=field)


def messages_of(data: dict[str, Any]) -> list[Any]:
    messages = data.get("messages")
    if messages is None:
        raise _invalid("messages", "Field required")
    if not isinstance(messages, list):
        raise _invalid("messages", "Input should be a valid list", messages, kind="list_type")
    if not messages:  # 0.32.0's renderer, after the schema accepted the empty list
        raise ApiError("Cannot apply chat template to an empty conversation. Provide at "
                       "least one message.")
    return messages


def prompt_of(data: dict[str, Any]) -> str | list[int]:
    """A completions prompt: a string or a list of token ids (or a list of one of them)."""
    prompt = data.get("prompt")
    if prompt is None or prompt in ("", []):  # 0.32.0: the renderer's check, not the schema's
        raise ApiError("Either prompt or prompt_embeds must be provided and non-empty.",
                       param="prompt")
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
