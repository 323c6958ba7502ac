"""Streamed answers: server-sent events of a chat or completions request.

The ``n`` choices of a request are generated concurrently and their chunks interleave as
they come (each chunk names its choice ``index``); a chat stream opens each choice with a
role chunk; the last chunk of a choice carries its finish reason; with ``include_usage`` a
final chunk with empty ``choices`` carries the usage; ``data: [DONE]`` ends the stream (all
as a real vLLM 0.32.0 run shows). An engine crash ends the stream with the error body.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from vllmfleet.emulator import outputs
from vllmfleet.emulator.engine import Engine, EngineDeadError, EngineSequence
from vllmfleet.emulator.httpserver import Write
from vllmfleet.emulator.protocol import Generate, usage
from vllmfleet.emulator.versions import VersionRules


class Stream:
    """Server-sent events of one streamed request (its ``n`` choices interleaved as they
    are generated); subclasses shape the chunks."""

    object_name = ""

    def __init__(self, engine: Engine, rules: VersionRules, seqs: list[EngineSequence],
                 model: str, options: Generate) -> None:
        self.engine = engine
        self.rules = rules
        self.seqs = seqs
        self.options = options
        self.head = {"id": seqs[0].request_id, "object": self.object_name,
                     "created": int(time.time()), "model": model}

    def event(self, index: int, piece: str, finish: str | None, offset: int) -> dict[str, Any]:
        raise NotImplementedError

    def opening(self, index: int) -> bytes:
        return b""

    async def _choice(self, index: int, seq: EngineSequence, write: Write) -> None:
        await write(self.opening(index))
        target = self.engine.target_tokens(seq)
        finish = "length" if target >= seq.max_tokens else "stop"
        sent = offset = 0

        async def emit(chunk: list[str]) -> None:
            nonlocal sent, offset
            events = []
            for piece in chunk:
                sent += 1
                events.append(outputs.sse(self.head, [self.event(
                    index, piece, finish if sent == target else None, offset)]))
                offset += len(piece)
            await write(b"".join(events))

        await self.engine.run(seq, emit)

    async def produce(self, write: Write) -> None:
        try:
            await asyncio.gather(*(self._choice(i, seq, write)
                                   for i, seq in enumerate(self.seqs)))
        except EngineDeadError as exc:
            body = self.rules.error_body(str(exc), type_="InternalServerError", code=500)
            await write(b"data: %s\n\ndata: [DONE]\n\n" % json.dumps(body).encode())
            return
        if self.options.include_usage:
            prompt = self.seqs[0].prompt_tokens
            total = usage(prompt, sum(seq.generated for seq in self.seqs))
            await write(b"data: %s\n\n" % json.dumps(
                {**self.head, "choices": [], "usage": total}, separators=(",", ":")).encode())
        await write(b"data: [DONE]\n\n")


class ChatStream(Stream):
    object_name = "chat.completion.chunk"

    def opening(self, index: int) -> bytes:
        return outputs.sse(self.head, [outputs.chat_opening(index)])

    def event(self, index: int, piece: str, finish: str | None, offset: int) -> dict[str, Any]:
        return outputs.chat_delta(index, piece, finish, self.options.logprobs)


class CompletionStream(Stream):
    object_name = "text_completion"

    def event(self, index: int, piece: str, finish: str | None, offset: int) -> dict[str, Any]:
        return outputs.completion_delta(index, piece, finish, self.options.logprobs, offset)
