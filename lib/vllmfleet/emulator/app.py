"""Running the emulator: start-up sequence, serving, crash and graceful shutdown.

:class:`Emulator` is one server (engine + API + HTTP) without the start-up checks — what
in-process tests start on port 0. :func:`serve` is the whole life of ``python -m
vllmfleet.emulator``: the port is bound first (as vLLM does, so a busy port fails at once),
then the configuration checks, the emulated model loading (``--emulator-slow-start``),
injected start failures, the capacity check, and serving until SIGTERM/SIGINT (exit 0,
in-flight requests cancelled) or an injected crash (/health 503, then exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence

from vllmfleet.emulator import cli, logs, startup
from vllmfleet.emulator.config import EmulatorConfig
from vllmfleet.emulator.engine import Engine, EngineSettings
from vllmfleet.emulator.httpserver import HTTPServer
from vllmfleet.emulator.metrics import Metrics
from vllmfleet.emulator.server import ApiSettings, OpenAIApi

log = logging.getLogger("vllm.entrypoints.openai.api_server")
engine_log = logging.getLogger("vllm.v1.engine.core")
uvicorn_log = logging.getLogger("uvicorn.error")
STATS_INTERVAL_S = 10.0


class Emulator:
    """One emulated vLLM server; see the module docstring."""

    def __init__(self, cfg: EmulatorConfig, *, kv_capacity_tokens: int | None = None) -> None:
        self.cfg = cfg
        self.crashed = asyncio.Event()
        self.metrics = Metrics(model_name=cfg.served_model_names[0])
        capacity = kv_capacity_tokens or cfg.max_model_len * cfg.max_num_seqs
        self.metrics.cache_config = {"block_size": "16", "num_gpu_blocks": str(capacity // 16)}
        self.engine = Engine(EngineSettings(
            max_num_seqs=cfg.max_num_seqs, kv_capacity_tokens=capacity,
            time_scale=cfg.speed.time_scale, prefill_tps=cfg.speed.prefill_tps,
            decode_tps=cfg.speed.decode_tps, output_tokens=cfg.speed.output_tokens,
            crash_after=cfg.faults.crash_after,
            max_num_queued_reqs=cfg.max_num_queued_reqs), self.metrics, on_dead=self._on_dead)
        self.api = OpenAIApi(ApiSettings(
            model=cfg.model, served_model_names=cfg.served_model_names,
            max_model_len=cfg.max_model_len, version=cfg.version, api_keys=cfg.api_keys,
            log_requests=cfg.log_requests), self.engine, self.metrics)
        self.http = HTTPServer(self.api, access_log_enabled=cfg.access_log)
        self.host = cfg.host or "0.0.0.0"
        self.port = cfg.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen (on ``sock`` if given, else on the configured host and port)."""
        self.host, self.port = await self.http.start(self.host, self.port, sock=sock)

    async def close(self) -> None:
        """Stop serving; in-flight requests are cancelled."""
        await self.http.close()

    def _on_dead(self) -> None:
        engine_log.error("EngineCore encountered a fatal error.")
        engine_log.error("RuntimeError: emulated engine crash after %d requests "
                         "(--emulator-crash-after)", self.engine.completed)
        log.error("AsyncLLM output_handler failed. Engine is dead; /health answers 503 and "
                  "the server shuts down in %.1f s.", self.cfg.faults.crash_linger_s)
        asyncio.get_running_loop().call_later(self.cfg.faults.crash_linger_s, self.crashed.set)


def bind(host: str | None, port: int) -> socket.socket:
    """Bind (not yet listen) the server socket, as vLLM does before loading the model."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _fail(error: startup.StartupError) -> int:
    engine_log.error("%s: %s", error.kind, error.message)
    engine_log.error("RuntimeError: Engine core initialization failed. See root cause above.")
    return 1


async def _stats(emulator: Emulator) -> None:
    """vLLM's periodic throughput line, while anything happens."""
    engine, metrics = emulator.engine, emulator.metrics
    last = (metrics.prompt_tokens, metrics.generation_tokens)
    while True:
        await asyncio.sleep(STATS_INTERVAL_S)
        now = (metrics.prompt_tokens, metrics.generation_tokens)
        if now == last and not engine.num_running and not engine.num_waiting:
            continue
        engine_log.info(
            "Engine 000: Avg prompt throughput: %.1f tokens/s, Avg generation throughput: "
            "%.1f tokens/s, Running: %d reqs, Waiting: %d reqs, GPU KV cache usage: %.1f%%, "
            "Prefix cache hit rate: 0.0%%", (now[0] - last[0]) / STATS_INTERVAL_S,
            (now[1] - last[1]) / STATS_INTERVAL_S, engine.num_running, engine.num_waiting,
            engine.kv_usage * 100)
        last = now


async def serve(cfg: EmulatorConfig) -> int:
    """Run one emulator until it is stopped (0) or fails (1); see the module docstring."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info("vLLM API server version %s (vllmfleet emulator)", cfg.version)
    log.info("non-default args: model=%r, served_model_name=%r, max_model_len=%d, "
             "max_num_seqs=%d, gpu_memory_utilization=%s, kv_cache_dtype=%s, quantization=%s",
             cfg.model, list(cfg.served_model_names), cfg.max_model_len, cfg.max_num_seqs,
             cfg.gpu_memory_utilization, cfg.kv_cache_dtype, cfg.quantization)
    try:
        sock = bind(cfg.host, cfg.port)
    except OSError as exc:
        log.error("OSError: %s (binding %s:%d)", exc, cfg.host or "0.0.0.0", cfg.port)
        return 1
    try:
        return await _run(cfg, sock, stop)
    finally:
        sock.close()


async def _run(cfg: EmulatorConfig, sock: socket.socket, stop: asyncio.Event) -> int:
    error = startup.config_error(cfg)
    if error is not None:
        return _fail(error)
    log.info("Starting to load model %s...", cfg.model)
    started = time.monotonic()
    if cfg.faults.slow_start_s > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), cfg.faults.slow_start_s)
        if stop.is_set():
            log.info("Interrupted while loading the model; exiting.")
            return 0
    if cfg.faults.fail_at_start is not None:
        return _fail(startup.StartupError(kind="RuntimeError", message=cfg.faults.fail_at_start))
    log.info("%s", startup.weights_line(cfg, time.monotonic() - started))
    checked = startup.capacity(cfg)
    for warning in checked.warnings:
        log.warning("%s", warning)
    if checked.error is not None:
        return _fail(checked.error)
    for line in checked.log_lines:
        engine_log.info("%s", line)
    if checked.max_model_len is not None:  # --max-model-len auto, resolved
        cfg = dataclasses.replace(cfg, max_model_len=checked.max_model_len)

    emulator = Emulator(cfg, kv_capacity_tokens=checked.kv_capacity_tokens)
    await emulator.start(sock=sock)
    host = cfg.host or "0.0.0.0"
    log.info("Starting vLLM API server 0 on http://%s:%d", host, emulator.port)
    uvicorn_log.info("Started server process [%d]", os.getpid())
    uvicorn_log.info("Waiting for application startup.")
    uvicorn_log.info("Application startup complete.")
    uvicorn_log.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host,
                     emulator.port)
    stats = asyncio.create_task(_stats(emulator)) if cfg.log_stats else None
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(emulator.crashed.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for task in [*waiters, *([stats] if stats else [])]:
        task.cancel()
    uvicorn_log.info("Shutting down")
    await emulator.close()
    uvicorn_log.info("Waiting for application shutdown.")
    uvicorn_log.info("Application shutdown complete.")
    uvicorn_log.info("Finished server process [%d]", os.getpid())
    return 1 if emulator.crashed.is_set() else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vllmfleet.emulator``: parse vLLM's flags and serve; the exit code."""
    cfg = cli.parse(argv)
    logs.setup(level=cfg.log_level)
    return asyncio.run(serve(cfg))
