"""A capacity sweep as one self-contained HTML page: inline SVG plots, no script, no fetch.

:func:`render` takes the JSON document of :func:`vllmfleet.bench.report.document` and draws,
against concurrency (log2 axis, since the sweep doubles):

- ``plot-e2e``, ``plot-ttft``, ``plot-itl``: the value at the SLO's percentile per step
  (``circle.point``; filled green when the step met the SLO, red when not), the SLO's limit
  (``line.slo``) and the chosen capacity (``line.capacity``);
- ``plot-outcomes``: 429s (``rect.bar-429``) and errors (``rect.bar-error``) per step.

Then a table of the steps. Class names and ids are the page's interface: the browser test
(tests/unit/bench/test_html_browser.py) checks them in Chromium's rendered DOM.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

W, H = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 40, 28, 40
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px} .answer{font-size:18px;margin:12px 0}
.plots{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fafafa;border:1px solid #ddd}
.axis{stroke:#888} .grid{stroke:#eee} text{font-size:11px;fill:#444}
.series{fill:none;stroke:#3366cc;stroke-width:2} .point.meets{fill:#2a9d3a}
.point.misses{fill:#d33} .slo{stroke:#d33;stroke-dasharray:6 4;stroke-width:1.5}
.capacity{stroke:#2a9d3a;stroke-width:2} .bar-429{fill:#e9a23b} .bar-error{fill:#d33}
table{border-collapse:collapse;margin-top:16px} td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right;font-size:13px} td.text{text-align:left}
"""


def _x(concurrency: int, low: int, high: int) -> float:
    span = max(math.log2(high) - math.log2(low), 1.0)
    return LEFT + (W - LEFT - RIGHT) * (math.log2(concurrency) - math.log2(low)) / span


def _y(value: float, top: float) -> float:
    return H - BOTTOM - (H - TOP - BOTTOM) * value / top if top > 0 else H - BOTTOM


def _frame(plot_id: str, title: str, xs: list[int], top: float, unit: str) -> list[str]:
    low, high = min(xs), max(xs)
    out = [f'<svg id="{plot_id}" class="plot" xmlns="http://www.w3.org/2000/svg" '
           f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">',
           f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="16" style="font-size:13px;font-weight:600">'
           f"{escape(title)}</text>"]
    for i in range(5):
        value = top * i / 4
        y = _y(value, top)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{value:.0f}{unit}</text>")
    for c in sorted(set(xs)):
        x = _x(c, low, high)
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{c}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" '
               f'y2="{H - BOTTOM}"/><line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" '
               f'y2="{H - BOTTOM}"/><text x="{(W + LEFT) / 2}" y="{H - 8}" '
               'text-anchor="middle">concurrent streams</text>')
    return out


def _capacity(capacity: int, xs: list[int], top: float) -> str:
    if capacity < 1:
        return ""
    x = _x(capacity, min(xs), max(xs))
    # the label to the left of the line when the line is near the right edge
    text_x, anchor = (x - 4, "end") if x > W - RIGHT - 80 else (x + 4, "start")
    return (f'<line class="capacity" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{H - BOTTOM}">'
            f'<title>capacity: {capacity}</title></line><text x="{text_x:.1f}" y="{TOP + 10}" '
            f'text-anchor="{anchor}">capacity {capacity}</text>')


def line_plot(plot_id: str, title: str, steps: list[dict[str, Any]], metric: str,
              limit: float | None, capacity: int) -> str:
    """Value at the SLO percentile (ms) vs concurrency, the SLO line, the capacity line."""
    points = [(s["concurrency"], s["at_slo_percentile"][metric], s["meets_slo"])
              for s in sorted(steps, key=lambda s: s["concurrency"])]
    xs = [c for c, _, _ in points] or [1]
    values = [v * 1000 for _, v, _ in points if v is not None]
    top = max([*values, (limit or 0) * 1000, 1e-3]) * 1.15
    out = _frame(plot_id, title, xs, top, " ms")
    drawn = [(c, v * 1000, ok) for c, v, ok in points if v is not None]
    if drawn:
        path = " ".join(f"{_x(c, min(xs), max(xs)):.1f},{_y(v, top):.1f}" for c, v, _ in drawn)
        out.append(f'<polyline class="series" points="{path}"/>')
    for c, v, ok in drawn:
        out.append(f'<circle class="point {"meets" if ok else "misses"}" '
                   f'cx="{_x(c, min(xs), max(xs)):.1f}" cy="{_y(v, top):.1f}" r="4">'
                   f"<title>{c} streams: {v:.1f} ms</title></circle>")
    if limit is not None:
        y = _y(limit * 1000, top)
        out.append(f'<line class="slo" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}">'
                   f"<title>SLO {limit * 1000:.0f} ms</title></line>"
                   f'<text x="{LEFT + 4}" y="{y - 4:.1f}">SLO '
                   f"{limit * 1000:.0f} ms</text>")
    out.append(_capacity(capacity, xs, top))
    return "\n".join([*out, "</svg>"])


def outcome_plot(steps: list[dict[str, Any]], capacity: int) -> str:
    """429s and errors per step, side by side."""
    ordered = sorted(steps, key=lambda s: s["concurrency"])
    xs = [s["concurrency"] for s in ordered] or [1]
    top = float(max([4, *(max(s["rate_limited_429"], s["errors"]) for s in ordered)]) * 1.25)
    top = float(math.ceil(top / 4) * 4)  # whole numbers on the axis
    out = _frame("plot-outcomes", "429s and errors per step", xs, top, "")
    for s in ordered:
        x = _x(s["concurrency"], min(xs), max(xs))
        for kind, count, dx in (("bar-429", s["rate_limited_429"], -9),
                                ("bar-error", s["errors"], 1)):
            y = _y(count, top)
            out.append(f'<rect class="{kind}" x="{x + dx:.1f}" y="{y:.1f}" width="8" '
                       f'height="{H - BOTTOM - y:.1f}"><title>{s["concurrency"]} streams: '
                       f'{count} {"x 429" if kind == "bar-429" else "errors"}</title></rect>')
    out.append(_capacity(capacity, xs, top))
    return "\n".join([*out, "</svg>"])


def _cell(value: Any) -> str:
    if value is None:
        return "<td>—</td>"
    if isinstance(value, float):
        return f"<td>{value * 1000:.1f} ms</td>"
    return f"<td>{escape(str(value))}</td>"


def render(doc: dict[str, Any]) -> str:
    """The whole page."""
    slo, steps, capacity = doc["slo"], doc["steps"], doc["capacity"]
    label = f"P{slo['percentile'] * 100:g}"
    target = doc["target"]
    plots = [line_plot(f"plot-{m}", f"{name} {label} vs concurrency", steps, m,
                       slo[f"{m}_s"], capacity)
             for m, name in (("e2e", "Latency (E2E)"), ("ttft", "TTFT"),
                             ("itl", "Inter-token latency"))]
    plots.append(outcome_plot(steps, capacity))
    rows = "\n".join(
        "<tr>" + "".join([f"<td>{s['concurrency']}</td>", f"<td>{s['ok']}/{s['requests']}</td>",
                          f"<td>{s['rate_limited_429']}</td>", f"<td>{s['errors']}</td>",
                          f"<td>{s['throughput_rps']:.2f}</td>",
                          *(_cell(s["at_slo_percentile"][m]) for m in ("ttft", "itl", "e2e")),
                          _cell(s["client_overhead"]["loop_lag_s"]["p90"]),
                          '<td class="text">' + ("meets" if s["meets_slo"] else "misses: "
                                                 + escape("; ".join(s["problems"])))
                          + "</td>"]) + "</tr>"
        for s in sorted(steps, key=lambda s: s["concurrency"]))
    title = f"Capacity of {target['name']} ({target['kind']})"
    bound = "" if doc["capacity_exact"] else "at least "
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>{escape(target['url'])}, model {escape(target['model'])}; prompts of
{doc['load']['input_tokens']} tokens, answers of {doc['load']['output_tokens']} (streamed)</p>
<p class="answer" id="capacity">Capacity: {bound}<strong>{capacity}</strong>
concurrent streams</p>
<p>Stopped: {escape(doc['stop_reason'])}. {doc['requests']} requests in
{doc['wall_s']:.0f} s.</p>
<div class="plots">
{chr(10).join(plots)}
</div>
<table id="steps"><tr><th>streams</th><th>ok/n</th><th>429</th><th>errors</th><th>req/s</th>
<th>TTFT {label}</th><th>ITL {label}</th><th>E2E {label}</th><th>client lag P90</th>
<th>verdict</th></tr>
{rows}
</table></body></html>
"""
