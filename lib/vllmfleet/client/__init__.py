"""Talking to a fleet as its clients do: an OpenAI-compatible client, exact-size prompts, and
a concurrent load runner with percentiles.

=========  ========================================================================================
http       :class:`FleetClient` (chat with SSE, tokenize, models, metrics) and :class:`Result`
stream     the streamed path on aiohttp: pooled session, SSE validation, client-own timing
instant    :class:`InstantServer`: a zero-latency local endpoint (tests, client overhead)
loop       the event loop the clients run on (uvloop where installed)
prompts    :class:`PromptBuilder`: prompts of exactly N tokens, counted by the server's /tokenize
load       :func:`run_requests` (bounded concurrency), :class:`Stats` and P50/P90/P99
=========  ========================================================================================
"""

from __future__ import annotations

from vllmfleet.client.http import (
    INCOMPLETE_STREAM_STATUS,
    FleetClient,
    Result,
    StatusClass,
    error_message,
    parse_metrics,
    retry_after_seconds,
)

__all__ = [
    "INCOMPLETE_STREAM_STATUS",
    "FleetClient",
    "Result",
    "StatusClass",
    "error_message",
    "parse_metrics",
    "retry_after_seconds",
]
