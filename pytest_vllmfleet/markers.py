"""The suite markers and their arguments, validated so that a typo is an error.

``@pytest.mark.context_limit(fraction=0.75, samples=10)`` and
``@pytest.mark.burst(concurrency=5, max_errors=1)`` take keyword arguments only; each is
read into a keyword-only dataclass whose ``__post_init__`` checks the values. An unknown
argument, a positional argument or a value out of range raises :class:`MarkerError`
naming the test, the marker and the fix; the plugin turns it into a usage error at
collection time.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

SUITES: tuple[str, ...] = ("context_limit", "burst", "rejection", "rollback", "capacity")

MARKERS: tuple[str, ...] = (
    "context_limit(fraction=0.75, samples=10): acceptance criterion 1 — the configured context "
    "is effective: prompts of `fraction` x max_input_tokens (exact, by /tokenize) succeed direct "
    "and via the proxy, `samples` times each (at least 10, for a P90)",
    "burst(concurrency=5, max_errors=1): acceptance criterion 2 — `concurrency` requests at once "
    "complete with at most `max_errors` errors, no 5xx, every 429 with Retry-After",
    "rejection: acceptance criterion 3 — over max_input (proxy), over max_model_len (direct) and "
    "over max_output (proxy) are refused with a 4xx naming the limit, never a 5xx",
    "rollback: acceptance criterion 4 — after a deploy and a rollback, files and behaviour equal "
    "the pre-deploy baseline",
    "capacity(ttft_s=2.0, itl_s=0.2, e2e_s=None, percentile=0.9, error_budget=0.01, "
    "max_429_share=0.1, max_concurrency=16, max_seconds=180.0, output_tokens=32, "
    "min_capacity=1): capacity sweep (opt-in, `-m capacity`) — the most concurrent streams "
    "each host (and its alias through the proxy) serves within the SLO is at least "
    "`min_capacity`; JSON/CSV/HTML in the artifacts",
)


#: The most prompts ``context_limit`` sends per host and target (each nearly the whole
#: context): beyond it a typo (samples=10000) would keep a GPU busy for hours.
MAX_SAMPLES = 1000


class MarkerError(ValueError):
    """A suite marker was given arguments it does not accept."""


@dataclass(frozen=True, kw_only=True)
class ContextLimit:
    """Arguments of ``@pytest.mark.context_limit``."""

    fraction: float = 0.75
    samples: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)) \
                or not 0 < self.fraction <= 1:
            raise MarkerError(f"fraction={self.fraction!r}: give a number in (0, 1], the share "
                              "of the alias's max_input_tokens each request uses, e.g. 0.75")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) \
                or not 10 <= self.samples <= MAX_SAMPLES:
            raise MarkerError(f"samples={self.samples!r}: give a whole number from 10 to "
                              f"{MAX_SAMPLES}; a P90 needs 10 samples (acceptance criterion 1), "
                              "and each is a prompt of nearly the whole context")


@dataclass(frozen=True, kw_only=True)
class Burst:
    """Arguments of ``@pytest.mark.burst``."""

    concurrency: int = 5
    max_errors: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) \
                or not 1 <= self.concurrency <= 1000:
            raise MarkerError(f"concurrency={self.concurrency!r}: give a whole number of "
                              "requests sent at once, 1 to 1000, e.g. 5")
        if isinstance(self.max_errors, bool) or not isinstance(self.max_errors, int) \
                or not 0 <= self.max_errors < self.concurrency:
            raise MarkerError(f"max_errors={self.max_errors!r}: give a whole number from 0 to "
                              f"{self.concurrency - 1} (requests allowed not to complete; "
                              f"with {self.concurrency} or more the burst could never fail)")


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """Arguments of ``@pytest.mark.capacity`` (the SLO itself is checked by vllmfleet.bench)."""

    ttft_s: float | None = 2.0
    itl_s: float | None = 0.2
    e2e_s: float | None = None
    percentile: float = 0.9
    error_budget: float = 0.01
    max_429_share: float = 0.1
    max_concurrency: int = 16
    max_seconds: float = 180.0
    output_tokens: int = 32
    min_capacity: int = 1

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "output_tokens", "min_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MarkerError(f"{name}={value!r}: give a whole number of at least 1")
        if isinstance(self.max_seconds, bool) or not isinstance(self.max_seconds, (int, float)) \
                or not self.max_seconds > 0:
            raise MarkerError(f"max_seconds={self.max_seconds!r}: give a positive number of "
                              "seconds, e.g. 180")
        try:
            self.slo()
        except ValueError as exc:
            raise MarkerError(str(exc)) from None

    def slo(self) -> Any:
        """The :class:`vllmfleet.bench.SLO` these arguments set."""
        from vllmfleet.bench import SLO

        return SLO(ttft_s=self.ttft_s, itl_s=self.itl_s, e2e_s=self.e2e_s,
                   percentile=self.percentile, error_budget=self.error_budget,
                   max_429_share=self.max_429_share)


@dataclass(frozen=True, kw_only=True)
class NoArguments:
    """Markers that take no arguments (``rejection``, ``rollback``)."""


SPECS: dict[str, type[Any]] = {"context_limit": ContextLimit, "burst": Burst,
                               "rejection": NoArguments, "rollback": NoArguments,
                               "capacity": Capacity}
T = TypeVar("T")


def parse(mark: pytest.Mark, cls: type[T]) -> T:
    """``mark``'s arguments as ``cls``; :class:`MarkerError` says what is wrong and the fix."""
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    accepted = ", ".join(f"{f.name}={f.default!r}"
                         for f in dataclasses.fields(cls)) or "no arguments"  # type: ignore[arg-type]
    usage = f"@pytest.mark.{mark.name}({'' if not fields else accepted})"
    if mark.args:
        raise MarkerError(f"@pytest.mark.{mark.name} takes keyword arguments only, got "
                          f"{mark.args!r}; write {usage}")
    for key in mark.kwargs:
        if key not in fields:
            hint = difflib.get_close_matches(key, fields, n=1)
            raise MarkerError(f"@pytest.mark.{mark.name}: unknown argument {key!r}"
                              + (f"; did you mean {hint[0]!r}?" if hint else "")
                              + f" (accepted: {accepted})")
    try:
        return cls(**mark.kwargs)
    except MarkerError as exc:
        raise MarkerError(f"@pytest.mark.{mark.name}: {exc}") from None


def check_item(item: pytest.Item) -> None:
    """Validate every suite marker on ``item``; raise MarkerError naming the test."""
    for name, cls in SPECS.items():
        for mark in item.iter_markers(name):
            try:
                parse(mark, cls)
            except MarkerError as exc:
                raise MarkerError(f"{item.nodeid}: {exc}") from None


def settings_of(item: pytest.Item, name: str, cls: type[T]) -> T:
    """The closest ``name`` marker's arguments (the defaults when the test has none)."""
    mark = item.get_closest_marker(name)
    return cls() if mark is None else parse(mark, cls)
