"""An OpenAI-compatible async client for vLLM servers and the LiteLLM proxy.

Streamed chat completions go over aiohttp (:mod:`vllmfleet.client.stream`: one pooled
session, one TCP connection per concurrent stream); the small calls (health, models,
metrics, tokenize, non-streamed chat) over httpx. Every call returns a :class:`Result`
instead of raising for HTTP errors, timeouts or refused connections, because callers (the
demo, health checks, the acceptance suites) classify outcomes rather than stop at the first
one. Streaming requests measure time to first token and inter-token latency; a stream only
succeeds when it ends with ``[DONE]`` or a finish_reason: an error event (``data: {"error":
…}``, sent by LiteLLM and vLLM when the engine dies mid-answer) gives that error's code (500
when it has none), and a cut-off or malformed stream gives :data:`INCOMPLETE_STREAM_STATUS`
(502), with the reason in ``error``. ``retry_429`` makes the client wait and retry 429
answers, honouring ``Retry-After`` (through tenacity); it is off by default so tests see the
proxy's answer as it is.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from vllmfleet.client.result import INCOMPLETE_STREAM_STATUS, Result, StatusClass, error_message
from vllmfleet.client.stream import StreamSession, retry_after_value

__all__ = ["INCOMPLETE_STREAM_STATUS", "FleetClient", "Result", "StatusClass", "error_message",
           "parse_metrics", "retry_after_seconds"]

def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form; HTTP dates are not used by our stack)."""
    return retry_after_value(headers.get("retry-after"))


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
        self._streams = StreamSession(self.base_url, headers=headers, timeout_s=timeout_s)

    async def __aenter__(self) -> FleetClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._streams.aclose()

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
                return await self._streams.post(path, body, start)
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
