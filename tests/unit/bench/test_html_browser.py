"""The capacity report as a browser shows it: headless Chromium renders the page and a probe
script reads the laid-out plots (runs in CI: scripts/install-os-deps installs chromium)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vllmfleet.bench import SLO, Bounds, Load, Target, sweep, write

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1200")
# Added to a copy of the page (the report itself has no script): what the browser laid out.
PROBE = """<script>
const box = e => { const r = e.getBoundingClientRect();
  return {x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width, h: r.height}; };
const out = {};
for (const svg of document.querySelectorAll("svg.plot")) {
  out[svg.id] = {box: box(svg),
    meets: [...svg.querySelectorAll("circle.point.meets")].map(box),
    misses: [...svg.querySelectorAll("circle.point.misses")].map(box),
    slo: [...svg.querySelectorAll("line.slo")].map(box),
    capacity: [...svg.querySelectorAll("line.capacity")].map(box),
    bars: [...svg.querySelectorAll("rect.bar-429, rect.bar-error")].map(box)};
}
document.body.setAttribute("data-probe", JSON.stringify(out));
</script>"""
TARGET = Target(kind="direct", name="wintermute", host="wintermute", url="http://127.0.0.1:8000",
                model="llama", key=None, backend_url="http://127.0.0.1:8000",
                backend_model="llama", max_input_tokens=100, max_output_tokens=50, timeout_s=10)


def chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:  # required, not skipped: CI must show the plots render
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-os-deps (it installs Debian's "
                    "chromium package), then run this test again")
    return path


def rendered(page: Path, tmp_path: Path) -> dict[str, Any]:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert found, f"chromium rendered no probe (exit {proc.returncode}): {proc.stderr[-2000:]}"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def test_chromium_draws_every_plot_with_its_slo_and_capacity_lines(
        backend: Callable[..., Any], tmp_path: Path) -> None:
    result = asyncio.run(sweep(backend(slots=64, ttft_growth=0.01, rate_limited=2),
                               slo=SLO(ttft_s=0.255, itl_s=0.5),
                               bounds=Bounds(requests_per_step=60)))
    page = write(result, TARGET, Load(input_tokens=50, output_tokens=10), tmp_path)[2]
    plots = rendered(page, tmp_path)
    assert sorted(plots) == ["plot-e2e", "plot-itl", "plot-outcomes", "plot-ttft"]
    steps = len(result.steps)
    for plot in plots.values():
        assert plot["box"]["w"] > 300 and plot["box"]["h"] > 150  # laid out, visible
        assert len(plot["capacity"]) == 1
    ttft = plots["plot-ttft"]
    assert len(ttft["meets"]) + len(ttft["misses"]) == steps and ttft["misses"]
    (slo,) = ttft["slo"]
    # y grows downwards: points that meet the TTFT objective lie below its line, misses above
    assert all(p["y"] > slo["y"] for p in ttft["meets"])
    assert all(p["y"] < slo["y"] for p in ttft["misses"])
    # the capacity line stands on the point of the highest concurrency that met the SLO
    assert max(p["x"] for p in ttft["meets"]) == pytest.approx(ttft["capacity"][0]["x"], abs=1)
    assert len(plots["plot-itl"]["slo"]) == 1 and plots["plot-e2e"]["slo"] == []  # no E2E SLO
    bars = plots["plot-outcomes"]["bars"]
    assert len(bars) == 2 * steps and max(b["h"] for b in bars) > 10  # the 429s show
