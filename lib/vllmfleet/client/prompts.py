"""Chat prompts of an exact token count, as the serving vLLM counts them.

Tests near a limit must know how long their prompt is in the server's own tokens, chat
template included. :class:`PromptBuilder` asks the server's ``POST /tokenize`` (vLLM and the
emulator have it; the LiteLLM proxy does not, so prompts for the proxy are counted by the
backend that serves the alias) and adjusts plain English filler until the count is exact:

1. measure the template's cost (one empty user message);
2. find the most filler words whose count is at most the target, by narrowing a bracket
   (interpolated guesses: common words are one token in most tokenizers, so this usually
   takes one or two rounds; several-token words only take a round or two more);
3. close the remaining gap with pad words the same way; if pads cannot hit it exactly, give
   back a word and close the larger gap.

The solution for a size is remembered, so the next prompt of the same size (another
``seed``, which rotates the words so that prefix caching cannot make later samples cheap)
usually costs one ``/tokenize`` call. A server without ``/tokenize`` raises
:class:`~vllmfleet.errors.HostError` saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
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
    ``words`` and ``pad`` are the filler (default: :data:`WORDS`, :data:`PAD`).
    """

    def __init__(self, client: FleetClient, *, model: str, host: str,
                 max_rounds: int = 30, words: Sequence[str] = WORDS, pad: str = PAD) -> None:
        if max_rounds < 2:
            raise ValueError(f"max_rounds must be at least 2, got {max_rounds}")
        if not words or not all(w.strip() and " " not in w for w in (*words, pad)):
            raise ValueError(f"words {list(words)[:5]} and pad {pad!r} must be single "
                             "non-empty words")
        self.words = tuple(words)
        self.pad = pad
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

    def messages(self, words: int, pads: int, *, seed: int = 0) -> Messages:
        """The filler message: ``words`` rotating words (starting at ``seed``), ``pads`` pads."""
        size = len(self.words)
        parts = [self.words[(seed + i) % size] for i in range(words)] + [self.pad] * pads
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
        search = _Search(self, tokens=tokens, seed=seed)
        try:
            words, pads = await search.solve(base, self._solved.get(tokens))
        except _OutOfRounds:
            raise HostError(
                f"could not build a prompt of exactly {tokens} tokens for {self.model} in "
                f"{self.max_rounds} /tokenize rounds (closest: {search.closest}); the "
                "server's tokenizer splits the filler words unusually", host=self.host) from None
        self._solved[tokens] = (words, pads)
        return Prompt(messages=self.messages(words, pads, seed=seed), tokens=tokens,
                      model=self.model)


class _OutOfRounds(Exception):
    pass


class _Search:
    """Words, then pads, by bracketing: never steps back and forth between two counts.

    The count grows with the number of words (and of pads), but by a tokenizer-dependent
    amount per word: one token in cl100k, several for a capitalised first word or a rare
    word in a small vocabulary. The earlier search stepped by an average cost and oscillated
    around the target when single words cost more than that average. Here each count
    narrows a bracket ``[lo, hi)`` — the most words known to fit, the fewest known not to —
    and the next guess lies strictly inside it (interpolated, every other guess the middle),
    so it ends in a few rounds for any tokenizer: with the most words that fit, pads close
    the rest; when pads cannot hit the target exactly (each costs more than the gap), one
    word fewer leaves a larger gap to close.
    """

    WORD_RETREATS = 4  # words given back when pads cannot close a gap exactly

    def __init__(self, builder: PromptBuilder, *, tokens: int, seed: int) -> None:
        self.builder, self.tokens, self.seed = builder, tokens, seed
        self.rounds = 0
        self.closest: int | None = None

    async def measure(self, words: int, pads: int) -> int:
        if self.rounds >= self.builder.max_rounds:
            raise _OutOfRounds
        self.rounds += 1
        got = await self.builder.count(self.builder.messages(words, pads, seed=self.seed))
        if self.closest is None or abs(self.tokens - got) < abs(self.tokens - self.closest):
            self.closest = got
        return got

    async def _words(self, words: int) -> int:
        return await self.measure(words, 0)

    async def solve(self, base: int, known: tuple[int, int] | None) -> tuple[int, int]:
        if known is not None and await self.measure(*known) == self.tokens:
            return known  # another seed of a size already solved: usually one call
        words, got = await self._most(self._words, lo=(0, base),
                                      first=self.tokens - base)
        for _ in range(self.WORD_RETREATS + 1):
            if got == self.tokens:
                return words, 0
            pads, filled = await self._most(functools.partial(self.measure, words),
                                            lo=(0, got), first=self.tokens - got)
            if filled == self.tokens:
                return words, pads
            if words == 0:
                break
            words -= 1
            got = await self.measure(words, 0)
        raise _OutOfRounds

    async def _most(self, count: Callable[[int], Awaitable[int]], *, lo: tuple[int, int],
                    first: int) -> tuple[int, int]:
        """The largest ``x`` whose ``count(x)`` is at most the target, with its count.

        ``lo`` is a known ``(x, count(x))`` at or below the target; ``first`` the first guess.
        Returns early with a count equal to the target.
        """
        lo_x, lo_y = lo
        origin_x, origin_y = lo
        hi_x: int | None = None
        guess, step = first, 0
        while hi_x is None or hi_x > lo_x + 1:
            if hi_x is not None and step % 2:
                guess = (lo_x + hi_x) // 2  # every other guess halves the bracket
            low, high = lo_x + 1, (hi_x - 1 if hi_x is not None else None)
            x = max(guess, low) if high is None else min(max(guess, low), high)
            y = await count(x)
            if y == self.tokens:
                return x, y
            if y < self.tokens:
                lo_x, lo_y = x, y
            else:
                hi_x = x
            per_unit = max((y - origin_y) / (x - origin_x), 1.0)
            guess = lo_x + max(int((self.tokens - lo_y) / per_unit), 1)
            step += 1
        return lo_x, lo_y
