"""The emulator's HTTP API: vLLM's OpenAI-compatible routes on top of the engine.

GET /health (200, empty; 503 once the engine is dead), /version, /v1/models, /metrics;
POST /tokenize, /detokenize, /v1/chat/completions, /v1/completions and a minimal
/v1/responses. Errors are shaped per emulated version (:meth:`OpenAIApi.api_error`).
With an API key, every /v1 route needs ``Authorization: Bearer <key>`` (401
``{"error": "Unauthorized"}``, vLLM's answer). Unknown routes answer FastAPI's 404/405 bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vllmfleet.emulator import outputs, streams, tokenizer
from vllmfleet.emulator.engine import Engine, EngineDeadError, EngineSequence, QueueFullError
from vllmfleet.emulator.httpserver import Request, Response, StreamResponse
from vllmfleet.emulator.metrics import CONTENT_TYPE, Metrics
from vllmfleet.emulator.protocol import (
    ApiError,
    Generate,
    generate_options,
    messages_of,
    model_card,
    opt_bool,
    opt_int,
    opt_str,
    parse_json,
    prompt_of,
    token_ids_of,
    usage,
)
from vllmfleet.emulator.versions import LengthError, VersionRules, resolve_max_tokens

log = logging.getLogger("vllm.entrypoints.openai.serving")
Route = Callable[[Request], Awaitable[Response | StreamResponse]]


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """What the API layer needs to know about the served model."""

    model: str
    served_model_names: tuple[str, ...]
    max_model_len: int
    version: str
    api_keys: tuple[str, ...] = ()
    log_requests: bool = False


def _json(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode())


class OpenAIApi:
    """The request handler the HTTP server calls."""

    def __init__(self, settings: ApiSettings, engine: Engine, metrics: Metrics) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.rules = VersionRules.of(settings.version)
        self.created = int(time.time())
        self._auth = {f"Bearer {key}" for key in settings.api_keys}
        self._routes: dict[str, dict[str, Route]] = {
            "/health": {"GET": self._health},
            "/version": {"GET": self._version},
            "/v1/models": {"GET": self._models},
            "/metrics": {"GET": self._metrics},
            "/tokenize": {"POST": self._tokenize},
            "/detokenize": {"POST": self._detokenize},
            "/v1/chat/completions": {"POST": self._chat},
            "/v1/completions": {"POST": self._completions},
            "/v1/responses": {"POST": self._responses},
        }

    async def __call__(self, request: Request) -> Response | StreamResponse:
        if self._auth and request.path.startswith("/v1") and request.method != "OPTIONS" \
                and request.headers.get("authorization") not in self._auth:
            return _json(401, {"error": "Unauthorized"})  # vLLM's middleware, before routing
        methods = self._routes.get(request.path)
        if methods is None:
            return _json(404, {"detail": "Not Found"})
        route = methods.get(request.method)
        if route is None:
            return _json(405, {"detail": "Method Not Allowed"})
        try:
            return await route(request)
        except ApiError as exc:
            return self.api_error(exc)
        except EngineDeadError as exc:
            return self.error(str(exc), status=500, type_="InternalServerError")

    def error(self, message: str, *, status: int = 400, type_: str = "BadRequestError",
              param: str | None = None) -> Response:
        return _json(status, self.rules.error_body(message, type_=type_, code=status,
                                                   param=param))

    def api_error(self, exc: ApiError) -> Response:
        """``exc`` as this version answers it: 0.32 names the parameter (``param``, and the
        " (parameter=X, value=V)" suffix) and reports schema errors as "Bad Request" with
        param "body.<field>"; older versions answer BadRequestError with param null."""
        message, param, type_ = str(exc), None, exc.type
        if exc.field is not None:
            if self.rules.facts.validation_suffix:
                param = f"body.{exc.field}"
            else:
                type_ = "BadRequestError"
        elif exc.status == 404:
            param = exc.param  # "model": named, never suffixed
        elif exc.param is not None:
            message, param = self.rules.invalid(message, param=exc.param, value=exc.value)
        return self.error(message, status=exc.status, type_=type_, param=param)

    # simple routes
    async def _health(self, request: Request) -> Response:
        return Response(503 if self.engine.dead else 200, b"", "")

    async def _version(self, request: Request) -> Response:
        return _json(200, {"version": self.settings.version})

    async def _models(self, request: Request) -> Response:
        s = self.settings
        cards = [model_card(name, root=s.model, max_model_len=s.max_model_len,
                            created=self.created) for name in s.served_model_names]
        return _json(200, {"object": "list", "data": cards})

    async def _metrics(self, request: Request) -> Response:
        e = self.engine
        text = self.metrics.render(running=e.num_running, waiting=e.num_waiting,
                                   kv_usage=e.kv_usage)
        return Response(200, text.encode(), CONTENT_TYPE)

    def _check_model(self, model: str | None) -> str:
        if model is None:
            return self.settings.served_model_names[0]
        names = self.settings.served_model_names
        if model not in names:
            if self.rules.facts.valid_aliases:  # 0.32.0: serving.py _check_model
                raise ApiError(f"The model `{model}` does not exist. Valid aliases: "
                               f"{', '.join(names)}.", status=404, type_="NotFoundError",
                               param="model")
            raise ApiError(f"The model `{model}` does not exist.", status=404,
                           type_="NotFoundError")
        return model

    # tokenizer routes
    async def _tokenize(self, request: Request) -> Response:
        data = parse_json(request.body)
        self._check_model(opt_str(data, "model"))
        if "messages" in data:
            ids = self._chat_ids(data)
        elif "prompt" in data:
            prompt = opt_str(data, "prompt") or ""
            ids = tokenizer.encode(prompt, add_special_tokens=opt_bool(
                data, "add_special_tokens", True))
        else:
            raise ApiError("1 validation error: body: give either 'prompt' (a string) or "
                           "'messages' (a list of chat messages)")
        out: dict[str, Any] = {"count": len(ids), "max_model_len": self.settings.max_model_len,
                               "tokens": ids, "token_strs": None}
        if opt_bool(data, "return_token_strs", False):
            out["token_strs"] = [tokenizer.decode([i]) for i in ids]
        return _json(200, out)

    async def _detokenize(self, request: Request) -> Response:
        data = parse_json(request.body)
        self._check_model(opt_str(data, "model"))
        try:
            return _json(200, {"prompt": tokenizer.decode(token_ids_of(data))})
        except tokenizer.UnknownTokenError as exc:
            raise ApiError(str(exc)) from None

    def _check_chars(self, text_length: int) -> None:
        """0.32's renderer refuses a text prompt longer than max_model_len x
        max_chars_per_token characters before tokenizing it (vllm/renderers/params.py
        ``_text_len_check``); older versions tokenize it all."""
        limit = self.settings.max_model_len
        bound = limit * tokenizer.MAX_CHARS_PER_TOKEN
        if self.rules.era == "clamp" and text_length > bound:
            raise ApiError(
                f"This model's maximum context length is {limit} tokens. However, your "
                f"prompt contains {text_length} characters (more than {bound} characters, "
                f"which is the upper bound for {limit} input tokens). Please reduce the "
                "length of the input prompt.", param="input_text", value=text_length)

    def _chat_ids(self, data: dict[str, Any]) -> list[int]:
        try:
            return tokenizer.chat_ids(
                messages_of(data),
                add_generation_prompt=opt_bool(data, "add_generation_prompt", True),
                continue_final_message=opt_bool(data, "continue_final_message", False))
        except tokenizer.ChatTemplateError as exc:
            raise ApiError(str(exc)) from None

    # generation routes
    async def _chat(self, request: Request) -> Response | StreamResponse:
        data = parse_json(request.body)
        options = generate_options(data, chat=True)
        model = self._check_model(options.model)
        ids = self._chat_ids(data)
        self._check_chars(len(tokenizer.decode(ids)))
        seqs = self._sequences("chatcmpl", len(ids), options, chat=True)
        if options.stream:
            return StreamResponse(streams.ChatStream(self.engine, self.rules, seqs, model,
                                                     options).produce)
        results = await self._run_all(seqs)
        return _json(200, {
            "id": seqs[0].request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [outputs.chat_choice(i, pieces, reason, options.logprobs)
                        for i, (pieces, reason) in enumerate(results)],
            "usage": usage(len(ids), sum(seq.generated for seq in seqs)),
            "prompt_logprobs": None,
        })

    async def _completions(self, request: Request) -> Response | StreamResponse:
        data = parse_json(request.body)
        options = generate_options(data, chat=False)
        model = self._check_model(options.model)
        prompt = prompt_of(data)
        if isinstance(prompt, str):
            self._check_chars(len(prompt))
        count = len(prompt) if isinstance(prompt, list) else len(
            tokenizer.encode(prompt, add_special_tokens=True))
        seqs = self._sequences("cmpl", count, options, chat=False,
                               token_ids=isinstance(prompt, list))
        if options.stream:
            return StreamResponse(streams.CompletionStream(self.engine, self.rules, seqs, model,
                                                           options).produce)
        results = await self._run_all(seqs)
        return _json(200, {
            "id": seqs[0].request_id, "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [outputs.completion_choice(i, pieces, reason, options.logprobs)
                        for i, (pieces, reason) in enumerate(results)],
            "usage": usage(count, sum(seq.generated for seq in seqs)),
        })

    async def _responses(self, request: Request) -> Response:
        """A minimal /v1/responses: a string ``input`` (or a list of input messages), the
        ``max_output_tokens`` limit and ``usage`` as vLLM answers them (no streaming, no
        tools, no stored state: a ``previous_response_id`` is 404, as vLLM answers an id
        it does not have)."""
        data = parse_json(request.body)
        model = self._check_model(opt_str(data, "model"))
        text = data.get("input")
        if isinstance(text, str):
            messages: list[Any] = [{"role": "user", "content": text}]
        elif isinstance(text, list) and text:
            messages = text
        else:
            raise ApiError("1 validation error:\n  {'type': 'missing', 'loc': 'body.input', "
                           "'msg': 'Field required'}", type_="Bad Request", field="input")
        if opt_bool(data, "stream", False):
            raise ApiError("stream=true is not supported by the emulator's /v1/responses",
                           param="stream")
        previous = opt_str(data, "previous_response_id")
        if previous is not None:  # the emulator stores no responses (0.32.0: serving.py)
            raise ApiError(f"Response with id '{previous}' not found.", status=404,
                           type_="invalid_request_error", param="response_id")
        ids = self._chat_ids({"messages": messages})
        limit = opt_int(data, "max_output_tokens")
        options = Generate(model=model, max_tokens=limit, stream=False, include_usage=False,
                           ignore_eos=False, min_tokens=0, max_tokens_field="max_output_tokens")
        seq = self._sequences("resp", len(ids), options, chat=True)[0]
        pieces: list[str] = []
        reason = await self.engine.run(seq, _collect(pieces))
        status = "incomplete" if reason == "length" else "completed"
        return _json(200, {
            "id": seq.request_id, "object": "response", "created_at": int(time.time()),
            "model": model, "status": status, "max_output_tokens": limit,
            "incomplete_details": {"reason": "max_output_tokens"} if reason == "length"
            else None,
            "output": [{"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                        "status": "completed", "content": [{"type": "output_text",
                                                       "text": "".join(pieces),
                                                       "annotations": [], "logprobs": None}]}],
            "usage": {"input_tokens": len(ids), "output_tokens": seq.generated,
                      "total_tokens": len(ids) + seq.generated,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}},
        })

    async def _run_all(self, seqs: list[EngineSequence]) -> list[tuple[list[str], str]]:
        async def one(seq: EngineSequence) -> tuple[list[str], str]:
            pieces: list[str] = []
            return pieces, await self.engine.run(seq, _collect(pieces))
        return list(await asyncio.gather(*(one(seq) for seq in seqs)))

    def _sequences(self, prefix: str, prompt_tokens: int, options: Generate, *,
                   chat: bool, token_ids: bool = False) -> list[EngineSequence]:
        """The request's ``n`` sequences (vLLM schedules each choice as a sequence)."""
        try:
            budget = resolve_max_tokens(self.rules, prompt_tokens=prompt_tokens,
                                        requested=options.max_tokens,
                                        max_model_len=self.settings.max_model_len, chat=chat,
                                        field=options.max_tokens_field, token_ids=token_ids)
        except LengthError as exc:
            raise ApiError(str(exc), param=exc.param, value=exc.value) from None
        if self.engine.dead:
            raise EngineDeadError
        try:
            self.engine.check_queue(options.n)
        except QueueFullError as exc:  # a GracefulHTTPError: its status phrase as the type
            raise ApiError(str(exc), status=503, type_="Service Unavailable") from None
        request_id = f"{prefix}-{uuid.uuid4().hex}"
        seqs = [EngineSequence(request_id=request_id if options.n == 1 else
                               f"{request_id}-{index}",
                               prompt_tokens=prompt_tokens, max_tokens=budget.max_tokens,
                               ignore_eos=options.ignore_eos, min_tokens=options.min_tokens)
                for index in range(options.n)]
        if self.settings.log_requests:
            log.info("Received request %s: prompt_tokens=%d, max_tokens=%d%s, n=%d, stream=%s",
                     request_id, prompt_tokens, budget.max_tokens,
                     " (clamped)" if budget.clamped else "", options.n, options.stream)
        return seqs


def _collect(pieces: list[str]) -> Callable[[list[str]], Awaitable[None]]:
    async def emit(chunk: list[str]) -> None:
        pieces.extend(chunk)
    return emit
