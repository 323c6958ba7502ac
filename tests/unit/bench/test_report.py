"""The sweep's reports: JSON and CSV with the same figures, the HTML page, the summary."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vllmfleet.bench import SLO, Bounds, Load, Sweep, Target, summary, sweep, write
from vllmfleet.bench.report import CSV_COLUMNS

TARGET = Target(kind="proxy", name="local/reasoner", host="wintermute",
                url="http://127.0.0.1:4000", model="local/reasoner", key="k",
                backend_url="http://127.0.0.1:8000", backend_model="llama", max_input_tokens=100,
                max_output_tokens=50, timeout_s=10)
LOAD = Load(input_tokens=50, output_tokens=10)


@pytest.fixture
def swept(backend: Callable[..., Any]) -> Sweep:
    return asyncio.run(sweep(backend(slots=64, ttft_growth=0.01, rate_limited=2),
                             slo=SLO(ttft_s=0.255, itl_s=0.5),
                             bounds=Bounds(max_concurrency=64, requests_per_step=60)))


def test_json_csv_and_html_carry_the_same_answer(swept: Sweep, tmp_path: Path) -> None:
    paths = write(swept, TARGET, LOAD, tmp_path, fleet="local")
    assert [p.name for p in paths] == ["capacity_proxy_local_reasoner.json",
                                       "capacity_proxy_local_reasoner.csv",
                                       "capacity_proxy_local_reasoner.html"]
    doc = json.loads(paths[0].read_text())
    assert (doc["capacity"], doc["fleet"], doc["target"]["kind"]) == (15, "local", "proxy")
    assert doc["capacity_exact"] is True
    assert doc["slo"]["ttft_s"] == 0.255 and doc["load"]["input_tokens"] == 50
    step = doc["steps"][0]
    assert (step["concurrency"], step["rate_limited_429"], step["errors"]) == (1, 2, 0)
    assert step["itl_s"]["samples"] == 58 * 9 and step["tpot_s"]["p50"] is not None
    assert step["client_overhead"]["loop_lag_s"]["samples"] == 5
    with paths[1].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [int(r["concurrency"]) for r in rows] == [s["concurrency"] for s in doc["steps"]]
    assert rows[0]["ttft_p90"] == f"{step['ttft_s']['p90']:.4f}"
    assert {r["meets_slo"] for r in rows} == {"True", "False"}
    html = paths[2].read_text()
    assert "<script" not in html and "http://" not in html.replace(TARGET.url, "") \
        .replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<strong>15</strong>" in html


def test_the_summary_ends_with_the_capacity_and_why_it_stopped(swept: Sweep) -> None:
    text = summary(swept, TARGET)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["conc", "ok/n", "429", "err"]
    assert "capacity of alias local/reasoner through the proxy" in lines[-2]
    assert ": 15 concurrent streams within ttft P90 <= 255 ms" in lines[-2]
    assert lines[-1].startswith("stopped: bisected between 15 (meets) and 16 (misses)")
    rows = [line.split()[0] for line in lines[2:-3]]
    assert rows == sorted(rows, key=int)  # by concurrency, not in the order they ran


def test_html_escapes_what_it_shows(swept: Sweep, tmp_path: Path) -> None:
    evil = Target(**{**TARGET.__dict__, "name": "<b>x</b>", "model": "<script>"})
    html = write(swept, evil, LOAD, tmp_path)[2].read_text()
    assert "<b>x</b>" not in html and "<script>" not in html and "&lt;script&gt;" in html
