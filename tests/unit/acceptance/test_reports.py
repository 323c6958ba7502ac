"""Reports: CSV columns as the old scripts had them (plus ours), JSON summary, terminal table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vllmfleet.acceptance.reports import CSV_COLUMNS, SUMMARY_FILE, Report
from vllmfleet.client import Result
from vllmfleet.client.load import LoadRun

OLD_COLUMNS = ["test_id", "request_id", "model", "max_input_tokens", "success", "latency",
               "status_code", "prompt_tokens", "completion_tokens", "total_tokens", "error"]


def _report() -> Report:
    report = Report()
    ok = [Result(status=200, latency_s=0.1 * (i + 1), ttft_s=0.05, prompt_tokens=10500,
                 completion_tokens=16, model="llama31-8b-wintermute",
                 inter_token_s=[0.002 * (i + 1)] * 15, client_s=0.0001) for i in range(10)]
    report.add(suite="context", test_id="t::ctx[wintermute-direct]", host="wintermute",
               target="direct", model="llama31-8b-wintermute", results=ok,
               max_input_tokens=14000, label="10500 tok")
    burst = [Result(status=200, latency_s=0.3), Result(status=429, latency_s=0.01,
                                                       retry_after=12.0, error="rate limit")]
    report.add(suite="burst", test_id="t::burst[armitage-proxy]", host="armitage",
               target="proxy", model="qwen2.5-7b-armitage", results=burst, label="2 at once",
               run=LoadRun(results=burst, wall_s=0.3, peak_running=1.0, peak_waiting=1.0,
                           loop_lag_s=[0.001] * 9 + [0.2]))
    return report


def test_csv_per_suite_keeps_the_old_columns_first(tmp_path: Path) -> None:
    written = _report().write(tmp_path, fleet="local")
    assert [p.name for p in written] == ["burst_test_results.csv", "context_test_results.csv",
                                         SUMMARY_FILE]
    with (tmp_path / "context_test_results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:len(OLD_COLUMNS)] == OLD_COLUMNS
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert list(rows[0])[len(OLD_COLUMNS):] == ["host", "target", "ttft", "status_class",
                                                 "retry_after", "tpot", "itl_mean",
                                                 "client_s"]
    first = rows[0]
    assert (first["request_id"], first["success"], first["latency"], first["total_tokens"],
            first["max_input_tokens"], first["status_class"]) == (
        "1", "True", "0.1000", "10516", "14000", "2xx")
    # TPOT = (latency - TTFT) / (tokens - 1) = 0.05 / 15; ITL: the mean gap
    assert (first["tpot"], first["itl_mean"], first["client_s"]) == ("0.0033", "0.0020",
                                                                     "0.000100")
    assert len(rows) == 10


def test_csv_shows_rate_limits_and_leaves_unmeasured_cells_empty(tmp_path: Path) -> None:
    _report().write(tmp_path)
    with (tmp_path / "burst_test_results.csv").open(newline="") as fh:
        limited = list(csv.DictReader(fh))[1]
    assert (limited["status_code"], limited["status_class"], limited["retry_after"],
            limited["success"], limited["error"]) == ("429", "429", "12.0", "False",
                                                      "rate limit")
    assert limited["ttft"] == "" and limited["prompt_tokens"] == ""


def test_json_summary_has_percentiles_and_sample_counts(tmp_path: Path) -> None:
    _report().write(tmp_path, fleet="local", inventory="configs/fleet.yaml")
    data = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert data["fleet"] == "local"
    ctx, burst = data["tests"]
    assert ctx["latency_s"]["samples"] == 10
    assert ctx["latency_s"]["p50"] == pytest.approx(0.55)
    assert ctx["latency_s"]["p90"] is not None and ctx["latency_s"]["p99"] is None
    assert burst["outcomes"] == {"200": 1, "429 with Retry-After": 1}
    assert (burst["peak_running"], burst["peak_waiting"]) == (1.0, 1.0)
    assert burst["latency_s"]["samples"] == 1  # failures are counted, not timed
    assert ctx["itl_s"]["samples"] == 150 and ctx["itl_s"]["p99"] is not None
    assert ctx["itl_s"]["p50"] == pytest.approx(0.011)
    assert ctx["tpot_s"]["samples"] == 10
    assert ctx["client_overhead"]["work_s"]["p50"] == pytest.approx(0.0001)
    # the burst's loop lag (P90 ~ 20 ms) is large next to nothing measured: no TTFT there
    assert burst["client_overhead"]["loop_lag_s"]["samples"] == 10
    assert burst["client_overhead"]["client_bound"] == []
    assert ctx["client_overhead"]["client_bound"] == []  # no loop lag measured there


def test_terminal_table_lists_each_test() -> None:
    lines = _report().table().splitlines()
    assert lines[0].split()[:5] == ["suite", "sent", "host", "target", "model"]
    context = next(line for line in lines if line.startswith("context"))
    assert "10/10" in context and "550 ms" in context
    burst = next(line for line in lines if line.startswith("burst"))
    assert "1/2" in burst and "1/1" in burst and "1 x 429 with Retry-After" in burst
    assert lines[0].split()[11:16] == ["itl", "p50", "tpot", "p50", "client"]
    assert "11.0 ms" in context and "3.3 ms" in context  # ITL p50, TPOT p50


def test_a_client_whose_loop_lags_marks_the_figures_it_bounds(tmp_path: Path) -> None:
    fast = [Result(status=200, latency_s=0.02, ttft_s=0.01, completion_tokens=3,
                   inter_token_s=[0.005, 0.005]) for _ in range(10)]
    report = Report()
    report.add(suite="burst", test_id="t", host="h", target="direct", model="m",
               results=fast, run=LoadRun(results=fast, wall_s=1, loop_lag_s=[0.004] * 10))
    report.write(tmp_path)
    test = json.loads((tmp_path / SUMMARY_FILE).read_text())["tests"][0]
    assert test["client_overhead"]["client_bound"] == ["ttft", "itl"]
    row = report.table().splitlines()[2]
    assert "0.1 ms/4.0 ms !" not in row and "—/4.0 ms !" in row  # no work measured; lag 4 ms
