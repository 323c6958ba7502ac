"""A stand-in for a vLLM server: same flags, API, length rules, scheduling and start-up checks.

Run it as ``python -m vllmfleet.emulator --model M --served-model-name NAME --port 8000 …``
(any ``vllm serve`` flag line) plus ``--emulator-…`` flags for the emulated GPU, speed,
vLLM version and injected faults; ``--help`` lists them. Modules:

- :mod:`~vllmfleet.emulator.cli` — flags → :class:`~vllmfleet.emulator.config.EmulatorConfig`
- :mod:`~vllmfleet.emulator.startup` — vLLM's start-up refusals and the capacity check
- :mod:`~vllmfleet.emulator.app` — the process: start-up sequence, serving, crash, shutdown
- :mod:`~vllmfleet.emulator.server` / :mod:`~vllmfleet.emulator.protocol` — the HTTP API
- :mod:`~vllmfleet.emulator.outputs` — choices, logprobs and stream chunks as vLLM shapes them
- :mod:`~vllmfleet.emulator.streams` — streamed answers (server-sent events, n choices)
- :mod:`~vllmfleet.emulator.engine` — FIFO scheduling, latency, KV usage
- :mod:`~vllmfleet.emulator.versions` — length rules and error bodies per vLLM version (the
  facts themselves: :mod:`vllmfleet.vllm.versions`)
- :mod:`~vllmfleet.emulator.tokenizer` — a cl100k-like deterministic tokenizer
- :mod:`~vllmfleet.emulator.metrics` — /metrics under vLLM's names
- :mod:`~vllmfleet.emulator.httpserver` — the asyncio HTTP/1.1 server underneath
"""

from __future__ import annotations

from vllmfleet.emulator.app import Emulator, main, serve
from vllmfleet.emulator.cli import parse
from vllmfleet.emulator.config import EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "main", "parse", "serve"]
