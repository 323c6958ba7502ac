"""The shapes of generated output: choices, logprobs and server-sent event chunks.

Shapes follow vLLM 0.32's protocol models (``vllm/entrypoints/openai/chat_completion/
protocol.py``, ``…/completion/protocol.py``): a chat choice's ``logprobs`` is
``{"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}…]}…]}``;
a completion choice's is ``{text_offset, token_logprobs, tokens, top_logprobs: [{token:
logprob}…]}``. The emulator's logprob values are invented (the chosen token -0.5, the
alternatives -1.5, -2.5 …); what a client notices is the shape and the counts.
"""

from __future__ import annotations

import json
from typing import Any

from vllmfleet.emulator import tokenizer

_CHOSEN_LOGPROB = -0.5


def _alternatives(piece: str, top: int) -> list[tuple[str, float]]:
    size = len(tokenizer.FILLER)
    start = tokenizer.FILLER.index(piece.lstrip()) if piece.lstrip() in tokenizer.FILLER \
        else 0
    return [(tokenizer.FILLER[(start + 1 + k) % size], -1.5 - k) for k in range(top)]


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def chat_logprobs(pieces: list[str], top: int) -> dict[str, Any]:
    """A chat choice's ``logprobs``: per token, ``top`` entries, the chosen token first
    (as a real 0.32.0 run lists them)."""
    return {"content": [
        {**_entry(piece, _CHOSEN_LOGPROB),
         "top_logprobs": ([_entry(piece, _CHOSEN_LOGPROB)] if top > 0 else [])
         + [_entry(t, lp) for t, lp in _alternatives(piece, top - 1)]}
        for piece in pieces]}


def completion_logprobs(pieces: list[str], top: int, *, offset: int = 0) -> dict[str, Any]:
    """A completion choice's ``logprobs`` (text offsets start at ``offset``)."""
    offsets, at = [], offset
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return {"text_offset": offsets, "token_logprobs": [_CHOSEN_LOGPROB] * len(pieces),
            "tokens": list(pieces),
            # the chosen token and the top N (N + 1 entries when it is not among them)
            "top_logprobs": [{piece: _CHOSEN_LOGPROB, **dict(_alternatives(piece, top))}
                             for piece in pieces]}


def chat_choice(index: int, pieces: list[str], reason: str,
                logprobs: int | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces),
                               "tool_calls": [], "reasoning_content": None}
    return {"index": index, "message": message,
            "logprobs": None if logprobs is None else chat_logprobs(pieces, logprobs),
            "finish_reason": reason, "stop_reason": None}


def completion_choice(index: int, pieces: list[str], reason: str,
                      logprobs: int | None) -> dict[str, Any]:
    return {"index": index, "text": "".join(pieces),
            "logprobs": None if logprobs is None else completion_logprobs(pieces, logprobs),
            "finish_reason": reason, "stop_reason": None, "prompt_logprobs": None}


def _dump(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def sse(head: dict[str, Any], choices: list[dict[str, Any]]) -> bytes:
    """One ``data:`` event: the chunk's head fields and its choices."""
    return b"data: %s\n\n" % _dump({**head, "choices": choices})


def chat_delta(index: int, piece: str, finish: str | None,
               logprobs: int | None) -> dict[str, Any]:
    return {"index": index, "delta": {"content": piece},
            "logprobs": None if logprobs is None else chat_logprobs([piece], logprobs),
            "finish_reason": finish}


def chat_opening(index: int) -> dict[str, Any]:
    return {"index": index, "delta": {"role": "assistant", "content": ""},
            "logprobs": None, "finish_reason": None}


def completion_delta(index: int, piece: str, finish: str | None, logprobs: int | None,
                     offset: int) -> dict[str, Any]:
    return {"index": index, "text": piece,
            "logprobs": None if logprobs is None else completion_logprobs(
                [piece], logprobs, offset=offset),
            "finish_reason": finish, "stop_reason": None}
