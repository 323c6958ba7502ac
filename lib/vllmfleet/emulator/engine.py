"""The emulated engine: FIFO scheduling beyond max_num_seqs, latency, KV usage, crashes.

At most ``max_num_seqs`` sequences run at once, and only while their prompts fit in the
KV cache next to the others'; the rest wait in a FIFO queue (vLLM never answers 429),
unbounded unless ``max_num_queued_reqs`` (vLLM 0.29+) caps running + waiting: a request
beyond it is refused at once (503). A running sequence spends ``prompt_tokens /
prefill_tps`` on prefill, emits its first token, then one token per ``running /
decode_tps`` seconds (the decode throughput is shared by the running sequences); every
duration is multiplied by ``time_scale``, and a time scale of 0 means no delay at all.
Tokens are emitted in steps of at least :data:`MIN_STEP_S` so a fast emulated GPU does
not flood the event loop with timers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vllmfleet.emulator import tokenizer
from vllmfleet.emulator.metrics import Metrics

MIN_STEP_S = 0.005
Emit = Callable[[list[str]], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """How the emulated engine schedules and how fast it is."""

    max_num_seqs: int
    kv_capacity_tokens: int
    time_scale: float = 1.0
    prefill_tps: float = 4000.0
    decode_tps: float = 60.0
    output_tokens: int = 128  # the "natural" answer length before the model would stop
    crash_after: int | None = None
    max_num_queued_reqs: int | None = None  # --max-num-queued-reqs (vLLM 0.29+)


class QueueFullError(RuntimeError):
    """Admitting the request would exceed ``--max-num-queued-reqs`` (vLLM's
    ``QueueOverflowError``, answered 503 "Service Unavailable")."""

    def __init__(self) -> None:
        super().__init__("The engine is currently busy and cannot accept new requests. "
                         "Please try again later or on a different instance.")


class EngineDeadError(RuntimeError):
    """The engine has crashed (fault injection); no request can be served any more."""

    def __init__(self) -> None:
        super().__init__("EngineCore encountered an issue. See stack trace (above) for the "
                         "root cause.")


@dataclass(kw_only=True)
class EngineSequence:
    """One request inside the engine (waiting or running; vLLM calls it a sequence)."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    ignore_eos: bool = False
    min_tokens: int = 0
    arrival: float = field(default_factory=time.monotonic)
    generated: int = 0
    finish_reason: str = ""


class Engine:
    """Runs sequences under vLLM's scheduling rules; see the module docstring."""

    def __init__(self, settings: EngineSettings, metrics: Metrics, *,
                 on_dead: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._on_dead = on_dead
        self._running: set[int] = set()
        self._held = 0  # KV tokens held by running sequences at admission + generated
        self._waiting: deque[tuple[EngineSequence, asyncio.Future[None]]] = deque()
        self.completed = 0
        self.dead = False

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_usage(self) -> float:
        return min(1.0, self._held / self.settings.kv_capacity_tokens)

    def check_queue(self, n: int) -> None:
        """Raise :class:`QueueFullError` if ``n`` more sequences would exceed
        ``max_num_queued_reqs`` (running + waiting; 0.32.0 source:
        ``AsyncLLM._check_admission`` in vllm/v1/engine/async_llm.py, n counts as n)."""
        bound = self.settings.max_num_queued_reqs
        if bound is not None and self.num_running + self.num_waiting + n > bound:
            raise QueueFullError

    def target_tokens(self, seq: EngineSequence) -> int:
        """How many tokens ``seq`` generates: its max, or the natural length if shorter."""
        if seq.ignore_eos:
            return seq.max_tokens
        natural = max(self.settings.output_tokens, seq.min_tokens, 1)
        return min(seq.max_tokens, natural)

    async def run(self, seq: EngineSequence, emit: Emit) -> str:
        """Schedule ``seq``, call ``emit`` with each step's token pieces; the finish reason."""
        if self.dead:
            raise EngineDeadError
        await self._admit(seq)
        try:
            reason = await self._generate(seq, emit)
        except asyncio.CancelledError:
            self.metrics.finished["abort"] += 1
            raise
        finally:
            self._release(seq)
        self.completed += 1
        crash_after = self.settings.crash_after
        if crash_after is not None and self.completed >= crash_after:
            self.kill()
        return reason

    def kill(self) -> None:
        """Crash the engine: waiting and running requests fail, /health turns 503."""
        if self.dead:
            return
        self.dead = True
        while self._waiting:
            _, fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(EngineDeadError())
        if self._on_dead is not None:
            self._on_dead()

    async def _generate(self, seq: EngineSequence, emit: Emit) -> str:
        s = self.settings
        target = self.target_tokens(seq)
        self.metrics.prompt_tokens += seq.prompt_tokens
        if s.time_scale > 0 and s.prefill_tps > 0:
            await asyncio.sleep(seq.prompt_tokens / s.prefill_tps * s.time_scale)
        pieces = tokenizer.filler(target)
        first = True
        while seq.generated < target:
            if self.dead:
                raise EngineDeadError
            step = 1 if first else target - seq.generated
            if not first and s.time_scale > 0 and s.decode_tps > 0:
                per_token = len(self._running) / s.decode_tps * s.time_scale
                step = min(step, max(1, math.ceil(MIN_STEP_S / per_token)))
                await asyncio.sleep(step * per_token)
            chunk = pieces[seq.generated:seq.generated + step]
            seq.generated += step
            self._held += step
            self.metrics.generation_tokens += step
            if first:
                self.metrics.ttft.observe(time.monotonic() - seq.arrival)
                first = False
            await emit(chunk)
        seq.finish_reason = "length" if target >= seq.max_tokens else "stop"
        self.metrics.finished[seq.finish_reason] += 1
        self.metrics.e2e.observe(time.monotonic() - seq.arrival)
        return seq.finish_reason

    def _can_admit(self, seq: EngineSequence) -> bool:
        if len(self._running) >= self.settings.max_num_seqs:
            return False
        fits = self._held + seq.prompt_tokens <= self.settings.kv_capacity_tokens
        return fits or not self._running

    def _start(self, seq: EngineSequence) -> None:
        self._running.add(id(seq))
        self._held += seq.prompt_tokens

    async def _admit(self, seq: EngineSequence) -> None:
        if not self._waiting and self._can_admit(seq):
            self._start(seq)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, fut)
        self._waiting.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._release(seq)  # admitted, then cancelled before it resumed
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise

    def _release(self, seq: EngineSequence) -> None:
        if id(seq) not in self._running:
            return
        self._running.discard(id(seq))
        self._held -= seq.prompt_tokens + seq.generated
        while self._waiting:
            nxt, fut = self._waiting[0]
            if not fut.done() and not self._can_admit(nxt):
                break
            self._waiting.popleft()
            if not fut.done():  # a cancelled waiter is just dropped
                self._start(nxt)
                fut.set_result(None)
