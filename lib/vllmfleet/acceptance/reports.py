"""Reports of the acceptance suites: CSV per suite, a JSON summary, a terminal table.

The suites add every request they make to one :class:`Report` (a group per test), and
:meth:`Report.write` produces, in the artifacts directory:

- ``<suite>_test_results.csv`` (``context_test_results.csv``, ``burst_test_results.csv``,
  ``rejection_test_results.csv``): one row per request. The first columns are those of the
  fleet's old test scripts (``test_id, request_id, model, max_input_tokens, success, latency,
  status_code, prompt_tokens, completion_tokens, total_tokens, error``), then ``host,
  target, ttft, status_class, retry_after, tpot, itl_mean, client_s`` (TPOT and the mean
  inter-token gap of a streamed answer; ``client_s``: the client's own work on it). Times are
  in seconds; an empty cell means "not measured" (no answer, no streamed token, no header).
- ``acceptance_summary.json``: per test, the sample counts, P50/P90/P99 (``null`` where
  the samples cannot support the percentile, see :mod:`vllmfleet.client.load`) of latency,
  TTFT, ITL and TPOT, outcomes, the peak running/waiting requests seen in the backend's
  metrics, and the client's overhead: its work per request, its event loop's lag while the
  test ran, and ``client_bound``: the figures (ttft, itl) that lag is not small next to.

:meth:`Report.table` is the same summary as text, for the end of a pytest run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllmfleet.client.load import LoadRun, ResultStats, Stats, client_bound
from vllmfleet.tables import table

if TYPE_CHECKING:  # the client (httpx) is not needed to summarise results
    from vllmfleet.client import Result

CSV_COLUMNS: tuple[str, ...] = (
    "test_id", "request_id", "model", "max_input_tokens", "success", "latency", "status_code",
    "prompt_tokens", "completion_tokens", "total_tokens", "error",
    "host", "target", "ttft", "status_class", "retry_after", "tpot", "itl_mean", "client_s",
)
SUMMARY_FILE = "acceptance_summary.json"


def csv_name(suite: str) -> str:
    return f"{suite}_test_results.csv"


@dataclass(kw_only=True)
class Group(ResultStats):
    """The requests of one test (one host, one target), with what was seen meanwhile."""

    suite: str
    test_id: str
    host: str
    target: str
    model: str
    max_input_tokens: int | None
    label: str = ""  # what the test sent, in a few words ("over max_input", "5 at once")
    results: list[Result] = field(default_factory=list)
    peak_running: float | None = None
    peak_waiting: float | None = None
    loop_lag_s: list[float] = field(default_factory=list)

    @property
    def loop_lag(self) -> Stats:
        return Stats.of(self.loop_lag_s)

    def rows(self) -> list[dict[str, Any]]:
        return [_row(self, i, r) for i, r in enumerate(self.results, start=1)]

    def summary(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "test_id": self.test_id, "label": self.label,
            "host": self.host,
            "target": self.target, "model": self.model,
            "max_input_tokens": self.max_input_tokens,
            "requests": len(self.results), "ok": sum(r.ok for r in self.results),
            "outcomes": dict(sorted(self.outcomes.items())),
            "latency_s": self.latency.as_dict(), "ttft_s": self.ttft.as_dict(),
            "itl_s": self.itl.as_dict(), "tpot_s": self.tpot.as_dict(),
            "peak_running": self.peak_running, "peak_waiting": self.peak_waiting,
            "client_overhead": {"work_s": self.client_work.as_dict(),
                                "loop_lag_s": self.loop_lag.as_dict(),
                                "client_bound": client_bound(self, self.loop_lag)},
        }


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _row(group: Group, i: int, r: Result) -> dict[str, Any]:
    def opt(value: int | None) -> str:
        return "" if value is None else str(value)

    return {
        "test_id": group.test_id, "request_id": i, "model": r.model or group.model,
        "max_input_tokens": opt(group.max_input_tokens), "success": r.ok,
        "latency": _num(r.latency_s), "status_code": r.status,
        "prompt_tokens": opt(r.prompt_tokens), "completion_tokens": opt(r.completion_tokens),
        "total_tokens": opt(r.total_tokens), "error": r.error,
        "host": group.host, "target": group.target, "ttft": _num(r.ttft_s),
        "status_class": r.status_class, "retry_after": _num(r.retry_after, 1),
        "tpot": _num(r.tpot_s),
        "itl_mean": _num(sum(r.inter_token_s) / len(r.inter_token_s)
                         if r.inter_token_s else None),
        "client_s": _num(r.client_s, 6),
    }


class Report:
    """Every request the suites made in one session, grouped by test."""

    def __init__(self) -> None:
        self.groups: list[Group] = []

    def add(self, *, suite: str, test_id: str, host: str, target: str, model: str,
            results: Sequence[Result], max_input_tokens: int | None = None,
            label: str = "", run: LoadRun | None = None) -> Group:
        """Record ``results`` of one test; ``run`` adds the metrics peaks of a load run."""
        group = Group(suite=suite, test_id=test_id, host=host, target=target, model=model,
                      max_input_tokens=max_input_tokens, label=label, results=list(results))
        if run is not None:
            group.peak_running, group.peak_waiting = run.peak_running, run.peak_waiting
            group.loop_lag_s = list(run.loop_lag_s)
        self.groups.append(group)
        return group

    @property
    def suites(self) -> list[str]:
        return sorted({g.suite for g in self.groups})

    def summary(self, **meta: Any) -> dict[str, Any]:
        return {**meta, "percentiles": "a percentile q needs at least 1/(1-q) samples "
                                       "(P50: 2, P90: 10, P99: 100); below that it is null",
                "tests": [g.summary() for g in self.groups]}

    def write(self, directory: Path, **meta: Any) -> list[Path]:
        """Write one CSV per suite that ran and the JSON summary; return the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for suite in self.suites:
            path = directory / csv_name(suite)
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                for group in self.groups:
                    if group.suite == suite:
                        writer.writerows(group.rows())
            written.append(path)
        path = directory / SUMMARY_FILE
        path.write_text(json.dumps(self.summary(**meta), indent=2) + "\n", encoding="utf-8")
        written.append(path)
        return written

    def table(self) -> str:
        """The summary as an aligned text table (times in milliseconds)."""
        head = ("suite", "sent", "host", "target", "model", "2xx/n", "p50", "p90", "p99",
                "ttft p50", "itl p50", "tpot p50", "client", "peak run/wait", "outcomes")
        rows: list[tuple[str, ...]] = []
        for g in self.groups:
            lat, ttft, lag = g.latency, g.ttft, g.loop_lag
            peaks = "" if g.peak_running is None and g.peak_waiting is None else \
                f"{_peak(g.peak_running)}/{_peak(g.peak_waiting)}"
            rows.append((g.suite, g.label, g.host, g.target, g.model,
                         f"{sum(r.ok for r in g.results)}/{len(g.results)}",
                         _ms(lat.p50), _ms(lat.p90), _ms(lat.p99), _ms(ttft.p50),
                         _ms(g.itl.p50, 1), _ms(g.tpot.p50, 1), _client(g, lag), peaks,
                         ", ".join(f"{n} x {k}" for k, n in sorted(g.outcomes.items()))))
        lines = table(rows, header=head)
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def _ms(seconds: float | None, digits: int = 0) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.{digits}f} ms"


def _client(group: Group, lag: Stats) -> str:
    """The client's work P50 and loop lag P90 (max below 10 samples); ``!`` marks a run
    whose figures the client bounds (see :func:`vllmfleet.client.load.client_bound`)."""
    work = group.client_work
    if work.samples == 0 and lag.samples == 0:
        return "—"
    worst = lag.p90 if lag.p90 is not None else lag.max
    mark = " !" if client_bound(group, lag) else ""
    return f"{_ms(work.p50, 1)}/{_ms(worst, 1)}{mark}"


def _peak(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"
