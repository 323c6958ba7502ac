"""An OpenAI-compatible async client for vLLM servers and the LiteLLM proxy.

Built on httpx. Every call returns a :class:`Result` instead of raising for HTTP errors,
timeouts or refused connections, because callers (the demo, health checks, the acceptance
suites) classify outcomes rather than stop at the first one. Streaming requests measure
time to first token and inter-token latency; a stream only succeeds when it ends with
``[DONE]`` or a finish_reason: an error event (``data: {"error": …}``, sent by LiteLLM and vLLM
when the engine dies mid-answer) gives that error's code (500 when it has none), and a cut-off
or malformed stream gives :data:`INCOMPLETE_STREAM_STATUS` (502), with the reason in ``error``.
``retry_429`` makes the client wait and retry 429 answers, honouring ``Retry-After``
(through tenacity); it is off by default so tests see the proxy's answer as it is.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

StatusClass = Literal["2xx", "429", "4xx", "5xx", "timeout", "connection"]

#: The status given to a streamed answer that began with 200 but then broke: cut off without
#: ``[DONE]`` or a finish_reason, or an event that is not JSON. The server failed part-way,
#: so it counts as a 5xx (502, "bad gateway": the answer we got was not a valid one).
INCOMPLETE_STREAM_STATUS = 502


@dataclass(frozen=True, kw_only=True)
class Result:
    """One request's outcome, as a person reading a report wants it."""

    status: int  # HTTP status; 0 when no answer came (timeout, connection refused)
    latency_s: float
    model: str = ""
    text: str = ""
    error: str = ""
    ttft_s: float | None = None
    inter_token_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    retry_after: float | None = None
    attempts: int = 1
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    @property
    def status_class(self) -> StatusClass:
        if self.status == 0:
            return "timeout" if self.timed_out else "connection"
        if self.status == 429:
            return "429"
        return "2xx" if self.ok else ("5xx" if self.status >= 500 else "4xx")


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form; HTTP dates are not used by our stack)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def error_message(body: str) -> str:
    """The human message of an OpenAI-style error body (nested or flat), else the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if isinstance(err, str):
            return err
        if "detail" in data:
            return str(data["detail"])
    return body.strip()[:500]


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {metric name: value summed over label sets} (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


class FleetClient:
    """Talks to one OpenAI-compatible base URL (a vLLM server or the proxy).

    ``base_url`` is the server root (``http://127.0.0.1:8000``), not ``…/v1``.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 120.0,
                 retry_429: int = 0, max_retry_wait_s: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if retry_429 < 0:
            raise ValueError(f"retry_429 must be 0 or more, got {retry_429}")
        self.base_url = base_url.rstrip("/")
        self.retry_429 = retry_429
        self.max_retry_wait_s = max_retry_wait_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                       timeout=httpx.Timeout(timeout_s, connect=10.0),
                                       transport=transport)

    async def __aenter__(self) -> FleetClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- simple endpoints -------------------------------------------------------------
    async def get(self, path: str) -> httpx.Response:
        return await self._http.get(path)

    async def health(self, path: str = "/health") -> int:
        """The status code of a health endpoint; 0 when the server does not answer."""
        try:
            return (await self._http.get(path)).status_code
        except httpx.HTTPError:
            return 0

    async def models(self) -> list[dict[str, Any]]:
        response = await self._http.get("/v1/models")
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json().get("data", [])
        return data

    async def metrics(self) -> dict[str, float]:
        response = await self._http.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    async def tokenize(self, *, model: str, messages: list[dict[str, str]] | None = None,
                       prompt: str | None = None) -> int:
        """Token count of ``messages`` (chat template included) or ``prompt``, by the server."""
        body: dict[str, Any] = {"model": model}
        if messages is not None:
            body.update(messages=messages, add_generation_prompt=True)
        else:
            body["prompt"] = prompt or ""
        response = await self._http.post("/tokenize", json=body)
        response.raise_for_status()
        return int(response.json()["count"])

    # -- completions ------------------------------------------------------------------
    async def chat(self, *, model: str, messages: list[dict[str, str]],
                   max_tokens: int | None = None, stream: bool = False,
                   **extra: Any) -> Result:
        """POST /v1/chat/completions; with ``stream`` the usage chunk is requested too."""
        body: dict[str, Any] = {"model": model, "messages": messages, **extra}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return await self._with_retries("/v1/chat/completions", body, stream)

    async def _with_retries(self, path: str, body: dict[str, Any], stream: bool) -> Result:
        if self.retry_429 == 0:
            return await self._send(path, body, stream)

        def wait(state: RetryCallState) -> float:
            assert state.outcome is not None
            result: Result = state.outcome.result()
            return min(result.retry_after if result.retry_after is not None else 1.0,
                       self.max_retry_wait_s)

        last: Result | None = None
        retrying = AsyncRetrying(retry=retry_if_result(lambda r: r.status == 429),
                                 stop=stop_after_attempt(self.retry_429 + 1), wait=wait,
                                 retry_error_callback=lambda state: None)
        async for attempt in retrying:
            with attempt:
                last = replace(await self._send(path, body, stream),
                               attempts=attempt.retry_state.attempt_number)
            outcome = attempt.retry_state.outcome
            if outcome is not None and not outcome.failed:
                attempt.retry_state.set_result(last)
        assert last is not None
        return last

    async def _send(self, path: str, body: dict[str, Any], stream: bool) -> Result:
        start = time.perf_counter()
        model = str(body.get("model", ""))
        try:
            if stream:
                return await self._stream(path, body, start)
            response = await self._http.post(path, json=body)
        except httpx.TimeoutException as exc:
            return Result(status=0, latency_s=time.perf_counter() - start, model=model,
                          error=f"timed out: {exc.__class__.__name__}", timed_out=True)
        except httpx.HTTPError as exc:
            return Result(status=0, latency_s=time.perf_counter() - start, model=model,
                          error=f"{exc.__class__.__name__}: {exc}")
        latency = time.perf_counter() - start
        if response.status_code != 200:
            return Result(status=response.status_code, latency_s=latency, model=model,
                          error=error_message(response.text),
                          retry_after=retry_after_seconds(response.headers))
        data = response.json()
        usage = data.get("usage") or {}
        choice = (data.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        return Result(status=200, latency_s=latency, model=str(data.get("model", model)),
                      text=text, prompt_tokens=usage.get("prompt_tokens"),
                      completion_tokens=usage.get("completion_tokens"),
                      finish_reason=choice.get("finish_reason"), ttft_s=latency)

    async def _stream(self, path: str, body: dict[str, Any], start: float) -> Result:
        model = str(body.get("model", ""))
        async with self._http.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                return Result(status=response.status_code,
                              latency_s=time.perf_counter() - start, model=model,
                              error=error_message(text),
                              retry_after=retry_after_seconds(response.headers))
            return await self._read_events(response, model, start)

    async def _read_events(self, response: httpx.Response, model: str,
                           start: float) -> Result:
        """Collect an SSE body; an error event, a malformed event or a cut-off stream fails."""
        parts: list[str] = []
        ttft: float | None = None
        gaps: list[float] = []
        last = start
        usage: dict[str, Any] = {}
        finish: str | None = None
        done = False

        def failed(status: int, error: str) -> Result:
            return Result(status=status, latency_s=time.perf_counter() - start, model=model,
                          text="".join(parts), ttft_s=ttft, inter_token_s=gaps, error=error,
                          finish_reason=finish)

        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(payload)
            except ValueError as exc:
                return failed(INCOMPLETE_STREAM_STATUS,
                              f"malformed stream event ({exc}): {payload[:200]!r}")
            if not isinstance(chunk, dict):
                return failed(INCOMPLETE_STREAM_STATUS,
                              f"malformed stream event (not an object): {payload[:200]!r}")
            if chunk.get("error") is not None or chunk.get("object") == "error":
                status, message = _error_event(chunk)
                return failed(status, message)
            model = str(chunk.get("model", model))
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content") or choice.get("text")
                finish = choice.get("finish_reason") or finish
                if delta:
                    now = time.perf_counter()
                    if ttft is None:
                        ttft = now - start
                    else:
                        gaps.append(now - last)
                    last = now
                    parts.append(delta)
        if not done and finish is None:
            return failed(INCOMPLETE_STREAM_STATUS,
                          f"incomplete stream: it ended after {len(parts)} content events "
                          "without [DONE] or a finish_reason (the server stopped mid-answer)")
        return Result(status=200, latency_s=time.perf_counter() - start, model=model,
                      text="".join(parts), ttft_s=ttft, inter_token_s=gaps,
                      prompt_tokens=usage.get("prompt_tokens"),
                      completion_tokens=usage.get("completion_tokens"), finish_reason=finish)


def _error_event(chunk: dict[str, Any]) -> tuple[int, str]:
    """(status, message) of an SSE error event, nested ``{"error": {…}}`` or flat.

    The status is the event's ``code`` when it is an HTTP error code (LiteLLM sends it as a
    string), else 500: the request failed on the server after the 200 header was sent.
    """
    err = chunk.get("error", chunk)
    info = err if isinstance(err, dict) else {"message": err}
    try:
        code = int(info.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = 500
    status = code if 400 <= code <= 599 else 500
    message = str(info.get("message") or json.dumps(chunk)[:500])
    return status, f"error in stream: {message}"
