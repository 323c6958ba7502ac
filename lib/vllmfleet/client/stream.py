"""Streamed chat completions over aiohttp: one pooled session per client, SSE read to its end.

Why aiohttp (issue 13, measured on this project's 2-core machine against an instant server):
the httpx stream path reached 12-23 % of a bare aiohttp loop's request rate and, because it
stopped reading at ``[DONE]`` before the chunked body ended, httpcore closed the connection
after every request (948 TCP connections for 948 requests). Here:

- one :class:`aiohttp.ClientSession` per :class:`~vllmfleet.client.FleetClient`, created on
  first use inside the running event loop, with an unbounded pool: one TCP connection per
  *concurrent* stream, reused by the next request;
- every stream is read to the end of its body (past ``[DONE]``) so the connection goes back
  to the pool, and ``latency_s`` is taken after that, when the answer is really over;
- ``ClientTimeout(total=timeout_s)``: the caller's ``timeout_s`` bounds the whole request,
  which keeps the rule "the client gives up before the proxy" (the fixtures pass 90 % of the
  proxy's ``request_timeout_s``);
- :class:`Events` is the project's SSE validation (error events, malformed events, cut-off
  streams), fed line by line; it also times the client's own work between socket reads
  (``Result.client_s``), the figure that tells whether the client bounds a latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from vllmfleet.client.result import INCOMPLETE_STREAM_STATUS, Result, error_message

_loads: Callable[[bytes], Any] = json.loads
try:  # orjson parses an SSE event several times faster; optional, like uvloop
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    _loads = orjson.loads

#: Seconds to open a connection (as the httpx client had); the whole request has ``timeout_s``.
CONNECT_TIMEOUT_S = 10.0


def retry_after_value(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form; HTTP dates are not used by our stack)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(kw_only=True)
class Events:
    """The state of one SSE body being read: feed :meth:`line` each line, then :meth:`result`.

    A stream succeeds only when it ends with ``[DONE]`` or a finish_reason. An error event
    (``data: {"error": …}``, sent by LiteLLM and vLLM when the engine dies mid-answer) gives
    that error's code (500 when it has none); a malformed event or a cut-off stream gives
    :data:`INCOMPLETE_STREAM_STATUS`.
    """

    model: str
    start: float
    parts: list[str] = field(default_factory=list)
    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)
    last: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    finish: str | None = None
    done: bool = False
    failure: tuple[int, str] | None = None

    def line(self, raw: bytes, now: float) -> bool:
        """Take one line received at ``now``; False once the stream has said all it will."""
        if raw[:5] != b"data:":
            return True
        payload = raw[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return False
        try:
            chunk = _loads(payload)
        except ValueError as exc:
            return self._fail(INCOMPLETE_STREAM_STATUS,
                              f"malformed stream event ({exc}): {_shown(payload)}")
        if not isinstance(chunk, dict):
            return self._fail(INCOMPLETE_STREAM_STATUS,
                              f"malformed stream event (not an object): {_shown(payload)}")
        if chunk.get("error") is not None or chunk.get("object") == "error":
            return self._fail(*error_event(chunk))
        if "model" in chunk:
            self.model = str(chunk["model"])
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            delta = (delta.get("content") if delta else None) or choice.get("text")
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            if delta:
                if self.ttft is None:
                    self.ttft = now - self.start
                else:
                    self.gaps.append(now - self.last)
                self.last = now
                self.parts.append(delta)
        return True

    def _fail(self, status: int, error: str) -> bool:
        self.failure = (status, error)
        return False

    def result(self, end: float, *, client_s: float | None = None) -> Result:
        """The request's :class:`Result`, ``end`` being when its body was read to the end."""
        failure = self.failure
        if failure is None and not self.done and self.finish is None:
            failure = (INCOMPLETE_STREAM_STATUS,
                       f"incomplete stream: it ended after {len(self.parts)} content events "
                       "without [DONE] or a finish_reason (the server stopped mid-answer)")
        result = Result(status=200, latency_s=end - self.start, model=self.model,
                        text="".join(self.parts), ttft_s=self.ttft, inter_token_s=self.gaps,
                        finish_reason=self.finish, client_s=client_s)
        if failure is not None:
            return replace(result, status=failure[0], error=failure[1])
        return replace(result, prompt_tokens=self.usage.get("prompt_tokens"),
                       completion_tokens=self.usage.get("completion_tokens"))


def error_event(chunk: dict[str, Any]) -> tuple[int, str]:
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


class StreamSession:
    """The aiohttp side of a FleetClient: streamed POSTs to ``base_url``, pooled."""

    def __init__(self, base_url: str, *, headers: dict[str, str], timeout_s: float) -> None:
        self.base_url = base_url
        self.headers = headers
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=CONNECT_TIMEOUT_S)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        """The pooled session, made in the running loop on first use (aiohttp needs one);
        a client used again from another loop (a second ``asyncio.run``) gets a new one."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            # limit=0: no cap, so N concurrent streams hold N connections and never queue
            # in the pool; keep-alive returns each to the pool for the next request
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                base_url=self.base_url, headers=self.headers, timeout=self.timeout,
                connector=connector, auto_decompress=False)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, body: dict[str, Any], start: float) -> Result:
        """POST ``body`` as JSON and read the SSE answer; failures are Results, not raised."""
        model = str(body.get("model", ""))
        try:
            return await self._post(path, body, start, model)
        except TimeoutError as exc:
            return Result(status=0, latency_s=time.perf_counter() - start, model=model,
                          error=f"timed out: {exc.__class__.__name__}", timed_out=True)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            return Result(status=0, latency_s=time.perf_counter() - start, model=model,
                          error=f"{exc.__class__.__name__}: {exc}")

    async def _post(self, path: str, body: dict[str, Any], start: float, model: str) -> Result:
        data = json.dumps(body).encode()
        clock = time.perf_counter
        busy = clock() - start  # building the body is the client's own work
        async with self.session().post(path, data=data, headers=_JSON) as response:
            if response.status != 200:
                text = (await response.read()).decode(errors="replace")
                return Result(status=response.status, latency_s=clock() - start, model=model,
                              error=error_message(text),
                              retry_after=retry_after_value(response.headers.get("Retry-After")))
            events = Events(model=model, start=start, last=start)
            content = response.content
            more, pending = True, b""
            # whatever has arrived, split into lines here (as `vllm bench serve` does with
            # iter_any): far cheaper than one readline() per line
            async for data in content.iter_any():
                now = clock()
                *lines, pending = (pending + data).split(b"\n")
                for raw in lines:
                    if not events.line(raw, now):
                        more = False
                        break
                busy += clock() - now
                if not more:
                    break
            if more and pending:  # a last line without its newline
                events.line(pending, clock())
            elif not more and events.failure is None:
                await content.read()  # the rest of the body: the connection goes back to the pool
        return events.result(clock(), client_s=busy)


_JSON = {"Content-Type": "application/json"}


def _shown(payload: bytes | str) -> str:
    """The start of an event's payload as text, for an error message."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return repr(text[:200])
