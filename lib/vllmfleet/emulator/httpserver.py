"""A small HTTP/1.1 server on asyncio's Protocol API: keep-alive, pipelining, chunked SSE.

Why not aiohttp or uvicorn: the emulator must start in well under a second in the base
install (neither is a vllmfleet dependency), and at zero delay it must outrun the load
generator (benchmarks/emulator_rps.py measures it). It implements what OpenAI clients,
LiteLLM and curl use: request bodies by Content-Length or chunked, ``Expect:
100-continue``, persistent connections, answers with Content-Length or chunked
streaming, and cancellation of the handler when the client goes away (vLLM aborts such
requests too). Malformed requests get 400/413/431 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
log = logging.getLogger("vllmfleet.emulator.http")
access_log = logging.getLogger("uvicorn.access")


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer: str = "-"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Write = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class StreamResponse:
    """A chunked answer: ``produce`` writes the body piece by piece."""

    produce: Callable[[Write], Awaitable[None]]
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response | StreamResponse]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


_date_cache: tuple[int, bytes] = (0, b"")


def _date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


def _head(status: int, content_type: str, extra: list[tuple[str, str]], *,
          length: int | None, close: bool) -> bytes:
    phrase = HTTPStatus(status).phrase
    lines = [b"HTTP/1.1 %d %s\r\ndate: %s\r\nserver: uvicorn\r\n"
             % (status, phrase.encode(), _date())]
    if length is None:
        lines.append(b"transfer-encoding: chunked\r\n")
    else:
        lines.append(b"content-length: %d\r\n" % length)
    if content_type:
        lines.append(b"content-type: %s\r\n" % content_type.encode())
    for name, value in extra:
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    if close:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass(slots=True)
class _Pending:
    request: Request
    body_start: int
    length: int | None  # None: chunked
    keep_alive: bool
    continued: bool = False


def _parse_head(buf: bytearray, end: int, peer: str) -> _Pending:
    text = bytes(buf[:end]).decode("latin-1")
    first, _, rest = text.partition("\r\n")
    parts = first.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "Invalid HTTP request line.")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in rest.split("\r\n") if rest else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(400, "Invalid HTTP header line.")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = target.partition("?")
    request = Request(method=method, path=path, query=query, version=version,
                      headers=headers, peer=peer)
    conn = headers.get("connection", "").lower()
    keep_alive = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _Pending(request, end + 4, None, keep_alive)
    raw = headers.get("content-length", "0")
    if not raw.isdigit():
        raise _BadRequest(400, "Invalid Content-Length header.")
    if int(raw) > MAX_BODY:
        raise _BadRequest(413, "Request body is too large.")
    return _Pending(request, end + 4, int(raw), keep_alive)


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """The body of a chunked request starting at ``start`` and where it ends, if complete."""
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest(400, "Invalid chunk size.") from None
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", eol)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(body) + size > MAX_BODY:
            raise _BadRequest(413, "Request body is too large.")
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


class _Connection(asyncio.Protocol):
    def __init__(self, server: HTTPServer) -> None:
        self._server = server
        self._buf = bytearray()
        self._pending: _Pending | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._peer = "-"
        self._closed = False
        self._paused_reading = False
        self._drain: asyncio.Future[None] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)  # _write sees _closed and raises

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._task is None:
            self._next()
        elif len(self._buf) > MAX_HEAD and self._transport is not None:
            self._transport.pause_reading()
            self._paused_reading = True

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # request handling
    def _next(self) -> None:
        try:
            request, keep_alive = self._take() or (None, False)
        except _BadRequest as exc:
            self._fail(exc.status, str(exc))
            return
        if request is not None:
            self._task = asyncio.get_running_loop().create_task(self._serve(request, keep_alive))

    def _take(self) -> tuple[Request, bool] | None:
        if self._pending is None:
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise _BadRequest(431, "Request header fields are too large.")
                return None
            if end > MAX_HEAD:
                raise _BadRequest(431, "Request header fields are too large.")
            self._pending = _parse_head(self._buf, end, self._peer)
        pending = self._pending
        if pending.length is None:
            done = _dechunk(self._buf, pending.body_start)
            if done is None:
                self._maybe_continue(pending)
                return None
            pending.request.body, consumed = done
        else:
            consumed = pending.body_start + pending.length
            if len(self._buf) < consumed:
                self._maybe_continue(pending)
                return None
            pending.request.body = bytes(self._buf[pending.body_start:consumed])
        del self._buf[:consumed]
        self._pending = None
        return pending.request, pending.keep_alive

    def _maybe_continue(self, pending: _Pending) -> None:
        expect = pending.request.headers.get("expect", "").lower()
        if expect == "100-continue" and not pending.continued and self._transport is not None:
            pending.continued = True
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _fail(self, status: int, message: str) -> None:
        if self._transport is None or self._closed:
            return
        body = message.encode()
        self._transport.write(_head(status, "text/plain; charset=utf-8", [],
                                    length=len(body), close=True) + body)
        self._transport.close()

    async def _write(self, data: bytes) -> None:
        if self._closed or self._transport is None:
            raise ConnectionResetError("client went away")
        self._transport.write(data)
        if self._drain is not None and not self._drain.done():
            await self._drain
            if self._closed:
                raise ConnectionResetError("client went away")

    async def _serve(self, request: Request, keep_alive: bool) -> None:
        transport = self._transport
        assert transport is not None
        close = not keep_alive
        try:
            try:
                response = await self._server.handler(request)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Exception in ASGI application")
                response = Response(500, b"Internal Server Error", "text/plain; charset=utf-8")
            close = close or self._server.closing
            if isinstance(response, Response):
                transport.write(_head(response.status, response.content_type, response.headers,
                                      length=len(response.body), close=close)
                                + response.body)
            else:
                await self._stream(response, close)
            self._server.log_access(request, response.status)
        except (asyncio.CancelledError, ConnectionError):
            close = True
        except Exception:  # a broken stream producer: the answer is cut short
            log.exception("Exception while streaming the response")
            close = True
        finally:
            self._task = None
        if close:
            if not self._closed:
                transport.close()
            return
        if self._paused_reading:
            self._paused_reading = False
            transport.resume_reading()
        if self._buf:
            self._next()

    async def _stream(self, response: StreamResponse, close: bool) -> None:
        await self._write(_head(response.status, response.content_type, response.headers,
                                length=None, close=close))

        async def chunk(data: bytes) -> None:
            if data:
                await self._write(b"%x\r\n%s\r\n" % (len(data), data))

        await response.produce(chunk)
        await self._write(b"0\r\n\r\n")


class HTTPServer:
    """Serve ``handler`` on a TCP address; see the module docstring."""

    def __init__(self, handler: Handler, *, access_log_enabled: bool = True) -> None:
        self.handler = handler
        self.access_log_enabled = access_log_enabled
        self.connections: set[_Connection] = set()
        self.closing = False
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *,
                    sock: socket.socket | None = None) -> tuple[str, int]:
        """Listen on ``sock``, or bind ``host``:``port`` (0 picks a free port); the address."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock,
                                                    backlog=2048)
        else:
            self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                    reuse_address=True, backlog=2048)
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def log_access(self, request: Request, status: int) -> None:
        if self.access_log_enabled:
            access_log.info('%s - "%s %s %s" %d %s', request.peer, request.method,
                            request.path, request.version, status, HTTPStatus(status).phrase)

    async def close(self) -> None:
        """Stop listening, cancel in-flight requests and close every connection."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn._task is not None and not conn._task.done():
                conn._task.cancel()
            if conn._transport is not None:
                conn._transport.close()
        if self._server is not None:
            await self._server.wait_closed()
