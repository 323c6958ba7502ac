"""A short smoke test of a running fleet: health, one answer per alias, the limits in force.

Used by the demo (``inv fleet.demo``) on the local fleet and usable against any fleet whose
URLs are known. Per vLLM host (direct): /health, /v1/models (served name and max_model_len as
in the inventory; an empty list or one without the served name fails) and one short answer.
Per alias name (through the proxy): one short answer, then one request over max_output_tokens
and one over max_input_tokens, each expected to be refused with a 4xx that names the limit —
the limits a client really meets. A clamping alias must answer with usage that shows at most
max_output_tokens (no usage is a failure).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from vllmfleet.acceptance.limits import refused_naming
from vllmfleet.client import FleetClient, Result
from vllmfleet.health import served_lengths, serving_problems
from vllmfleet.inventory import Endpoints, Inventory
from vllmfleet.tables import table

_HELLO = [{"role": "user", "content": "Say hello to the fleet in five words."}]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the smoke report."""

    target: str  # "direct" or "proxy"
    name: str  # host name or alias name
    what: str
    ok: bool
    detail: str
    latency_s: float | None = None


@dataclass(kw_only=True)
class SmokeReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _words(n: int) -> str:
    """Text of about ``n`` tokens for any tokenizer that counts a common word as one."""
    return " ".join(["fleet"] * n)


def _limit_check(target: str, name: str, what: str, result: Result, limit: int) -> Check:
    refused = not refused_naming(result, limit=limit, what=what)
    return Check(target=target, name=name, what=what, ok=refused,
                 detail=f"{result.status} {_around(result.error, str(limit))}",
                 latency_s=result.latency_s)


def _around(message: str, needle: str, width: int = 80) -> str:
    """The part of ``message`` that shows ``needle`` (the limit), for a one-line report."""
    message = " ".join(message.split())
    at = message.find(needle)
    if len(message) <= width or at < 0:
        return message[:width]
    start = max(0, min(at - width // 2, len(message) - width))
    return ("…" if start else "") + message[start:start + width] + "…"


async def _direct(inv: Inventory, host: str, url: str, backend_key: str | None) -> list[Check]:
    vllm = inv.hosts[host].vllm
    assert vllm is not None
    checks: list[Check] = []
    async with FleetClient(url, api_key=backend_key, timeout_s=60) as client:
        status = await client.health()
        checks.append(Check(target="direct", name=host, what="health", ok=status == 200,
                            detail=f"/health {status}"))
        try:
            models = await client.models()
        except Exception as exc:  # the report shows any failure; it must not stop the smoke
            models = []
            checks.append(Check(target="direct", name=host, what="models", ok=False,
                                detail=f"/v1/models failed: {exc}"))
        else:
            # the served name here; each listed model's length in the rows below
            problems = serving_problems(
                served_lengths(models), served=vllm.served_model_name,
                max_model_len=vllm.max_model_len, wrong=None, nothing="no model",
                absent="/v1/models lists {listed}, not {served} as the inventory says")
            checks += [Check(target="direct", name=host, what="models", ok=False, detail=p)
                       for p in problems]
        for model in models:
            good = (model.get("id") == vllm.served_model_name
                    and model.get("max_model_len") == vllm.max_model_len)
            checks.append(Check(target="direct", name=host, what="models", ok=good,
                                detail=f"{model.get('id')} max_model_len="
                                       f"{model.get('max_model_len')} (inventory: "
                                       f"{vllm.served_model_name}, {vllm.max_model_len})"))
        answer = await client.chat(model=vllm.served_model_name, messages=_HELLO, max_tokens=8)
        checks.append(Check(target="direct", name=host, what="answer", ok=answer.ok,
                            detail=f"{answer.status} {answer.error or answer.text[:40]!r}",
                            latency_s=answer.latency_s))
    return checks


async def _proxy_alias(client: FleetClient, inv: Inventory, name: str, canonical: str,
                       with_limits: bool) -> list[Check]:
    alias = inv.aliases[canonical]
    answer = await client.chat(model=name, messages=_HELLO, max_tokens=8)
    checks = [Check(target="proxy", name=name, what="answer", ok=answer.ok,
                    detail=f"{answer.status} {answer.error or answer.text[:40]!r}",
                    latency_s=answer.latency_s)]
    if not with_limits:
        return checks
    over_out = await client.chat(model=name, messages=_HELLO,
                                 max_tokens=alias.max_output_tokens + 1)
    if alias.on_max_output == "clamp":
        clamped = (over_out.ok and over_out.completion_tokens is not None
                   and over_out.completion_tokens <= alias.max_output_tokens)
        seen = ("no usage in the answer, so the clamp cannot be seen"
                if over_out.ok and over_out.completion_tokens is None
                else f"completion_tokens={over_out.completion_tokens}")
        checks.append(Check(target="proxy", name=name, what="max_output clamp", ok=clamped,
                            detail=f"{over_out.status} {seen} ≤ {alias.max_output_tokens}"
                                   + (f" {over_out.error[:80]}" if over_out.error else ""),
                            latency_s=over_out.latency_s))
    else:
        checks.append(_limit_check("proxy", name, f"max_output {alias.max_output_tokens}",
                                   over_out, alias.max_output_tokens))
    prompt = [{"role": "user", "content": _words(alias.max_input_tokens + 200)}]
    over_in = await client.chat(model=name, messages=prompt, max_tokens=8)
    checks.append(_limit_check("proxy", name, f"max_input {alias.max_input_tokens}", over_in,
                               alias.max_input_tokens))
    return checks


async def run_smoke(inv: Inventory, endpoints: Endpoints) -> SmokeReport:
    """Run every check; hosts in parallel, proxy aliases one after another (rate limits)."""
    report = SmokeReport()
    direct = await asyncio.gather(*(_direct(inv, host, url, endpoints.backend_key)
                                    for host, url in endpoints.hosts.items()))
    for checks in direct:
        report.checks.extend(checks)
    async with FleetClient(endpoints.proxy, api_key=endpoints.key,
                           timeout_s=60) as proxy:
        for path in ("/health/liveliness", "/health/readiness"):
            status = await proxy.health(path)
            report.checks.append(Check(target="proxy", name="proxy", what=path.split("/")[-1],
                                       ok=status == 200, detail=f"{path} {status}"))
        for alias in inv.aliases.values():
            for i, name in enumerate(alias.names):
                report.checks.extend(await _proxy_alias(proxy, inv, name, alias.name, i == 0))
    return report


def format_smoke(report: SmokeReport) -> str:
    """The smoke report as a table, with a verdict line."""
    rows: list[tuple[str, ...]] = []
    for c in report.checks:
        latency = f"{c.latency_s * 1000:.0f} ms" if c.latency_s is not None else ""
        rows.append((c.target, c.name, c.what, "ok" if c.ok else "FAIL", latency, c.detail))
    lines = table(rows, header=("target", "name", "check", "result", "latency", "detail"),
                  rstrip=False)
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    failed = sum(not c.ok for c in report.checks)
    verdict = (f"all {len(report.checks)} checks passed" if report.ok
               else f"{failed} of {len(report.checks)} checks FAILED")
    return "\n".join([*lines, "", verdict])
