"""Service-level objectives of a capacity sweep, and the verdict on one step.

:class:`SLO` holds the latency targets a user sets (TTFT, ITL, end-to-end, each at the
same percentile, P90 by default; any of them may be off) and the error budget. A step
*meets* the SLO when every target holds at the percentile over its successful requests and
its errors (every failure but a 429) stay within the budget. 429s are counted apart: through
the proxy a 429 with ``Retry-After`` is the limit working, not a fault, so it does not spend
the error budget; but a refused user was not served, so a step where more than
``max_429_share`` (10 %) of the requests were refused misses, naming the proxy's limits as the
reason (1.0 ignores 429s). A 429 *without* ``Retry-After`` is an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vllmfleet.client.load import min_samples, percentile

if TYPE_CHECKING:
    from vllmfleet.client import Result
    from vllmfleet.inventory.model import SLO as AliasSLO

#: ``vllm bench serve --goodput`` names its objectives ttft/tpot/e2el in ms; ours are seconds.
METRICS: tuple[str, ...] = ("ttft", "itl", "e2e")


def _positive(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r}: give a positive number of seconds, e.g. "
                         f"{name}=2.0, or leave it out to have no {name} objective")


@dataclass(frozen=True, kw_only=True)
class SLO:
    """Latency targets in seconds at ``percentile`` (0.5 to 0.99), and the budgets."""

    ttft_s: float | None = 2.0
    itl_s: float | None = 0.2
    e2e_s: float | None = None
    percentile: float = 0.9
    error_budget: float = 0.01  # share of requests that may fail (429s aside)
    max_429_share: float = 0.1  # share of 429s (with Retry-After) a step may get

    def __post_init__(self) -> None:
        for name in ("ttft_s", "itl_s", "e2e_s"):
            _positive(name, getattr(self, name))
        if self.ttft_s is None and self.itl_s is None and self.e2e_s is None:
            raise ValueError("no objective: give at least one of ttft_s, itl_s, e2e_s")
        if not 0.5 <= self.percentile <= 0.99:
            raise ValueError(f"percentile={self.percentile!r}: give 0.5 to 0.99 (e.g. 0.9 "
                             "for P90)")
        for name in ("error_budget", "max_429_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r}: give a share between 0 and 1, e.g. 0.01")

    @property
    def label(self) -> str:
        """``P90`` for 0.9."""
        return f"P{self.percentile * 100:g}"

    def targets(self) -> dict[str, float]:
        """{metric: limit in seconds} of the objectives that are set."""
        limits = {"ttft": self.ttft_s, "itl": self.itl_s, "e2e": self.e2e_s}
        return {k: v for k, v in limits.items() if v is not None}

    @property
    def min_requests(self) -> int:
        """Successful requests a step needs before its percentile means anything."""
        return min_samples(self.percentile)

    def as_dict(self) -> dict[str, float | None]:
        return {"ttft_s": self.ttft_s, "itl_s": self.itl_s, "e2e_s": self.e2e_s,
                "percentile": self.percentile, "error_budget": self.error_budget,
                "max_429_share": self.max_429_share}


#: The SLO when neither the command line nor the inventory's alias (``slo:``) sets a value.
DEFAULTS: dict[str, float | None] = {"ttft_s": 2.0, "itl_s": 0.2, "e2e_s": None,
                                     "percentile": 90.0}


def merged(given: dict[str, float | None], alias: AliasSLO | None, *,
           error_budget: float = 0.01, max_429_share: float = 0.1) -> SLO:
    """The SLO from the command line (``given``: a value, ``0`` = no objective, absent =
    not given), else the alias's ``slo:`` in the inventory, else :data:`DEFAULTS`;
    ``percentile`` in percent (90)."""
    values: dict[str, float | None] = {}
    for name, default in DEFAULTS.items():
        if name in given:
            values[name] = given[name]
        elif alias is not None and getattr(alias, name) is not None:
            values[name] = getattr(alias, name)
        else:
            values[name] = default
    percent = values.pop("percentile")
    objectives = {k: (None if v == 0 else v) for k, v in values.items()}
    return SLO(**objectives, percentile=(90.0 if percent is None else percent) / 100,
               error_budget=error_budget,
               max_429_share=max_429_share)


def series(results: Sequence[Result], metric: str) -> list[float]:
    """The values of ``metric`` over the successful results."""
    ok = [r for r in results if r.ok]
    if metric == "ttft":
        return [r.ttft_s for r in ok if r.ttft_s is not None]
    if metric == "itl":
        return [gap for r in ok for gap in r.inter_token_s]
    if metric == "e2e":
        return [r.latency_s for r in ok]
    raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")


def at(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def verdict(results: Sequence[Result], slo: SLO) -> tuple[dict[str, float | None], list[str]]:
    """({metric: value at the SLO's percentile}, why the step misses the SLO: [] = meets)."""
    n = len(results)
    values = {m: at(series(results, m), slo.percentile) for m in METRICS}
    problems: list[str] = []
    ok = sum(r.ok for r in results)
    if ok < slo.min_requests:
        refused = sum(r.status == 429 for r in results)
        why = f" ({refused} x 429)" if refused else ""
        problems.append(f"only {ok} of {n} requests succeeded{why}; {slo.label} needs "
                        f"{slo.min_requests}")
    for metric, limit in slo.targets().items():
        value = values[metric]
        if value is not None and value > limit:
            problems.append(f"{metric} {slo.label} {value * 1000:.0f} ms > "
                            f"{limit * 1000:.0f} ms")
    limited = sum(r.status == 429 and r.retry_after is not None for r in results)
    errors = sum(not r.ok for r in results) - limited
    if n and errors / n > slo.error_budget:
        problems.append(f"{errors} errors of {n} requests ({errors / n:.0%}) > budget "
                        f"{slo.error_budget:.0%}")
    if n and limited / n > slo.max_429_share:
        problems.append(f"{limited} x 429 of {n} ({limited / n:.0%}) > allowed "
                        f"{slo.max_429_share:.0%}: the proxy's limits refuse users here")
    return values, problems
