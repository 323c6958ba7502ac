"""The emulator's HTTP API: vLLM's OpenAI-compatible routes on top of the engine.

GET /health (200, empty; 503 once the engine is dead), /version, /v1/models, /metrics;
POST /tokenize, /detokenize, /v1/chat/completions, /v1/completions. With an API key,
every /v1 route needs ``Authorization: Bearer <key>`` (401 ``{"error": "Unauthorized"}``,
vLLM's answer). Unknown routes answer FastAPI's 404/405 bodies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vllmfleet.emulator import tokenizer
from vllmfleet.emulator.engine import Engine, EngineDeadError, EngineSequence
from vllmfleet.emulator.httpserver import Request, Response, StreamResponse, Write
from vllmfleet.emulator.metrics import CONTENT_TYPE, Metrics
from vllmfleet.emulator.protocol import (
    ApiError,
    Generate,
    generate_options,
    messages_of,
    model_card,
    opt_bool,
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
            return self.error(str(exc), status=exc.status, type_=exc.type)
        except EngineDeadError as exc:
            return self.error(str(exc), status=500, type_="InternalServerError")

    def error(self, message: str, *, status: int = 400,
              type_: str = "BadRequestError") -> Response:
        return _json(status, self.rules.error_body(message, type_=type_, code=status))

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
        if model not in self.settings.served_model_names:
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
        options = generate_options(data)
        model = self._check_model(options.model)
        ids = self._chat_ids(data)
        seq = self._sequence("chatcmpl", len(ids), options, chat=True)
        if options.stream:
            return StreamResponse(_ChatStream(self, seq, model, options.include_usage).produce)
        pieces: list[str] = []
        reason = await self.engine.run(seq, _collect(pieces))
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces),
                                   "tool_calls": [], "reasoning_content": None}
        return _json(200, {
            "id": seq.request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": reason, "stop_reason": None}],
            "usage": usage(seq.prompt_tokens, seq.generated), "prompt_logprobs": None,
        })

    async def _completions(self, request: Request) -> Response | StreamResponse:
        data = parse_json(request.body)
        options = generate_options(data)
        model = self._check_model(options.model)
        prompt = prompt_of(data)
        count = len(prompt) if isinstance(prompt, list) else len(
            tokenizer.encode(prompt, add_special_tokens=True))
        seq = self._sequence("cmpl", count, options, chat=False)
        if options.stream:
            return StreamResponse(_CompletionStream(self, seq, model,
                                                    options.include_usage).produce)
        pieces: list[str] = []
        reason = await self.engine.run(seq, _collect(pieces))
        return _json(200, {
            "id": seq.request_id, "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": "".join(pieces), "logprobs": None,
                         "finish_reason": reason, "stop_reason": None,
                         "prompt_logprobs": None}],
            "usage": usage(seq.prompt_tokens, seq.generated),
        })

    def _sequence(self, prefix: str, prompt_tokens: int, options: Generate, *,
                  chat: bool) -> EngineSequence:
        try:
            budget = resolve_max_tokens(self.rules, prompt_tokens=prompt_tokens,
                                        requested=options.max_tokens,
                                        max_model_len=self.settings.max_model_len, chat=chat)
        except LengthError as exc:
            raise ApiError(str(exc)) from None
        if self.engine.dead:
            raise EngineDeadError
        seq = EngineSequence(request_id=f"{prefix}-{uuid.uuid4().hex}",
                             prompt_tokens=prompt_tokens, max_tokens=budget.max_tokens,
                             ignore_eos=options.ignore_eos, min_tokens=options.min_tokens)
        if self.settings.log_requests:
            log.info("Received request %s: prompt_tokens=%d, max_tokens=%d%s, stream=%s",
                     seq.request_id, prompt_tokens, budget.max_tokens,
                     " (clamped)" if budget.clamped else "", options.stream)
        return seq


def _collect(pieces: list[str]) -> Callable[[list[str]], Awaitable[None]]:
    async def emit(chunk: list[str]) -> None:
        pieces.extend(chunk)
    return emit


class _Stream:
    """Server-sent events of one streamed request; subclasses shape the chunks."""

    object_name = ""

    def __init__(self, api: OpenAIApi, seq: EngineSequence, model: str,
                 include_usage: bool) -> None:
        self.api = api
        self.seq = seq
        self.include_usage = include_usage
        self.target = api.engine.target_tokens(seq)
        self.finish = "length" if self.target >= seq.max_tokens else "stop"
        head = {"id": seq.request_id, "object": self.object_name, "created": int(time.time()),
                "model": model}
        self.head = json.dumps(head, separators=(",", ":"))[:-1].encode()

    def event(self, piece: str, finish: str | None) -> bytes:
        raise NotImplementedError

    def opening(self) -> bytes:
        return b""

    async def produce(self, write: Write) -> None:
        await write(self.opening())
        sent = 0

        async def emit(chunk: list[str]) -> None:
            nonlocal sent
            events = []
            for piece in chunk:
                sent += 1
                events.append(self.event(piece, self.finish if sent == self.target else None))
            await write(b"".join(events))

        try:
            await self.api.engine.run(self.seq, emit)
        except EngineDeadError as exc:
            body = self.api.rules.error_body(str(exc), type_="InternalServerError", code=500)
            await write(b"data: %s\n\ndata: [DONE]\n\n" % json.dumps(body).encode())
            return
        if self.include_usage:
            tail = json.dumps({"choices": [], "usage": usage(self.seq.prompt_tokens,
                                                             self.seq.generated)},
                              separators=(",", ":"))[1:]
            await write(b"data: %s,%s\n\n" % (self.head, tail.encode()))
        await write(b"data: [DONE]\n\n")


class _ChatStream(_Stream):
    object_name = "chat.completion.chunk"

    def opening(self) -> bytes:
        return (b'data: %s,"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                b'"logprobs":null,"finish_reason":null}]}\n\n' % self.head)

    def event(self, piece: str, finish: str | None) -> bytes:
        reason = b"null" if finish is None else b'"%s"' % finish.encode()
        return (b'data: %s,"choices":[{"index":0,"delta":{"content":%s},"logprobs":null,'
                b'"finish_reason":%s}]}\n\n' % (self.head, json.dumps(piece).encode(), reason))


class _CompletionStream(_Stream):
    object_name = "text_completion"

    def event(self, piece: str, finish: str | None) -> bytes:
        reason = b"null" if finish is None else b'"%s"' % finish.encode()
        return (b'data: %s,"choices":[{"index":0,"text":%s,"logprobs":null,'
                b'"finish_reason":%s,"stop_reason":null}]}\n\n'
                % (self.head, json.dumps(piece).encode(), reason))
