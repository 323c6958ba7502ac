"""What one request to the fleet came to: :class:`Result`, and the error text of a body."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

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
    #: seconds of the client's own work on this request (building it, parsing each streamed
    #: line), measured around the socket reads; None when not measured (non-streamed calls)
    client_s: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def output_tokens(self) -> int | None:
        """Tokens generated: the usage count, else the content events of a stream."""
        if self.completion_tokens is not None:
            return self.completion_tokens
        return len(self.inter_token_s) + 1 if self.ttft_s is not None else None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (latency - TTFT) / (tokens - 1), as
        ``vllm bench serve`` computes it (vllm/benchmarks/serve.py, vLLM 0.32.0); None for a
        failed or non-streamed request or one of a single token."""
        tokens = self.output_tokens
        if not self.ok or self.ttft_s is None or tokens is None or tokens < 2 \
                or not self.inter_token_s:
            return None
        return (self.latency_s - self.ttft_s) / (tokens - 1)

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
