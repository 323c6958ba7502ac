"""Chat prompts of an exact token count, as the serving vLLM counts them.

Tests near a limit must know how long their prompt is in the server's own tokens, chat
template included. :class:`PromptBuilder` asks the server's ``POST /tokenize`` (vLLM and the
emulator have it; the LiteLLM proxy does not, so prompts for the proxy are counted by the
backend that serves the alias) and adjusts plain English filler until the count is exact:

1. measure the template's cost (one empty user message);
2. guess the number of words from the tokens each word costs, count, correct — a few
   rounds at most, since common words are one token in every tokenizer we meet;
3. close a remaining gap of a token or two with one-token pad words.

The solution for a size is remembered, so the next prompt of the same size (another
``seed``, which rotates the words so that prefix caching cannot make later samples cheap)
usually costs one ``/tokenize`` call. A server without ``/tokenize`` raises
:class:`~vllmfleet.errors.HostError` saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from vllmfleet.client import FleetClient
from vllmfleet.errors import HostError

# Common words: one token each in cl100k, Llama 3 and Qwen 2 tokenizers and the emulator's.
WORDS: tuple[str, ...] = (
    "fleet", "river", "stone", "light", "house", "water", "green", "market", "window",
    "garden", "morning", "letter", "table", "music", "travel", "number", "simple", "yellow",
    "paper", "winter", "summer", "street", "friend", "orange", "silver", "forest", "island",
    "bridge", "camera", "doctor", "engine", "flower", "circle", "mountain", "planet", "signal",
)
PAD = "a"  # one token in every tokenizer; closes the last small gap

Messages = list[dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """Chat messages and their exact token count (chat template included)."""

    messages: Messages
    tokens: int
    model: str


class PromptBuilder:
    """Builds prompts of exactly N tokens for one served model, using ``/tokenize``.

    ``client`` talks to the vLLM server (not the proxy); ``host`` names it in errors.
    """

    def __init__(self, client: FleetClient, *, model: str, host: str,
                 max_rounds: int = 10) -> None:
        if max_rounds < 2:
            raise ValueError(f"max_rounds must be at least 2, got {max_rounds}")
        self.client = client
        self.model = model
        self.host = host
        self.max_rounds = max_rounds
        self._overhead: int | None = None
        self._solved: dict[int, tuple[int, int]] = {}
        self.calls = 0

    async def count(self, messages: Messages) -> int:
        """The server's token count of ``messages`` with the generation prompt."""
        self.calls += 1
        where = f"{self.client.base_url}/tokenize"
        try:
            return await self.client.tokenize(model=self.model, messages=messages)
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status in (404, 405):
                raise HostError(
                    f"{where} answered {status}: this server has no /tokenize, so prompt "
                    "sizes cannot be made exact; point the prompt builder at the vLLM "
                    "server itself (the LiteLLM proxy does not offer /tokenize)",
                    host=self.host) from None
            raise HostError(f"{where} answered {status}: {exc.response.text[:300]}",
                            host=self.host) from None
        except httpx.HTTPError as exc:
            raise HostError(f"cannot reach {where}: {exc.__class__.__name__}: {exc}; is the "
                            "server running?", host=self.host) from None
        except (KeyError, ValueError) as exc:
            raise HostError(f"{where} did not return a token count ({exc}); is this a "
                            "vLLM server?", host=self.host) from None

    @staticmethod
    def messages(words: int, pads: int, *, seed: int = 0) -> Messages:
        """The filler message: ``words`` rotating words (starting at ``seed``), ``pads`` pads."""
        size = len(WORDS)
        parts = [WORDS[(seed + i) % size] for i in range(words)] + [PAD] * pads
        text = " ".join(parts)
        return [{"role": "user", "content": text[:1].upper() + text[1:]}]

    async def overhead(self) -> int:
        """Tokens a one-message chat costs before any content (template and markers)."""
        if self._overhead is None:
            self._overhead = await self.count([{"role": "user", "content": ""}])
        return self._overhead

    async def build(self, tokens: int, *, seed: int = 0) -> Prompt:
        """A prompt of exactly ``tokens`` tokens; ``seed`` varies the words, not the size."""
        base = await self.overhead()
        if tokens <= base:
            raise HostError(f"a chat prompt for {self.model} costs at least {base + 1} "
                            f"tokens (template included); {tokens} is too few", host=self.host)
        words, pads = self._solved.get(tokens, (tokens - base, 0))
        closest: int | None = None
        for _ in range(self.max_rounds):
            messages = self.messages(words, pads, seed=seed)
            got = await self.count(messages)
            if got == tokens:
                self._solved[tokens] = (words, pads)
                return Prompt(messages=messages, tokens=got, model=self.model)
            if closest is None or abs(tokens - got) < abs(tokens - closest):
                closest = got
            words, pads = self._next(tokens, got, base, words, pads)
        raise HostError(f"could not build a prompt of exactly {tokens} tokens for {self.model} "
                        f"in {self.max_rounds} /tokenize rounds (closest: {closest}); the "
                        "server's tokenizer splits the filler words unusually", host=self.host)

    @staticmethod
    def _next(tokens: int, got: int, base: int, words: int, pads: int) -> tuple[int, int]:
        """Next (words, pads) to try after ``got`` tokens for ``words`` words, ``pads`` pads."""
        per_word = max((got - base - pads) / words, 1.0) if words else 1.0
        gap = tokens - got
        if gap > 0 and gap < per_word:
            return words, pads + gap  # less than a word short: pads are one token each
        step = int(gap / per_word) or (1 if gap > 0 else -1)
        return max(words + step, 1), 0
