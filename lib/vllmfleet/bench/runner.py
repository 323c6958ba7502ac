"""What a sweep talks to, and the step runner: exact-size prompts, streamed requests.

:func:`target` names what to measure: a vLLM host directly (``bench.<host>``) or an alias
through the proxy (``bench.proxy``). Prompt and answer sizes come from the inventory's
limits: the prompt is ``input_share`` of the alias's ``max_input_tokens`` (direct: of what
``max_model_len`` leaves after the answer), exact by the backend's ``/tokenize``
(:class:`~vllmfleet.client.prompts.PromptBuilder`); the answer asks for ``output_tokens``,
at most the alias's ``max_output_tokens``. :func:`run_sweep` builds a few prompts of that size
(different words, so prefix caching cannot make later requests cheap) and sweeps.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

from vllmfleet.bench.slo import SLO
from vllmfleet.bench.sweep import Bounds, Say, Sweep, sweep
from vllmfleet.client import FleetClient, Result
from vllmfleet.client.load import LoadRun, run_requests
from vllmfleet.client.prompts import Prompt, PromptBuilder
from vllmfleet.errors import FleetError
from vllmfleet.inventory import Alias, Endpoints, Inventory

Kind = Literal["direct", "proxy"]
#: The client gives up before the proxy (DESIGN.md): 90 % of the proxy's request timeout,
#: the rule the pytest plugin's clients follow too (pytest_vllmfleet.fleet.client_timeout_s).
CLIENT_TIMEOUT_SHARE = 0.9
PROMPT_VARIANTS = 8


@dataclass(frozen=True, kw_only=True)
class Target:
    """One thing to measure: where, which model name, through what."""

    kind: Kind
    name: str  # the host (direct) or the alias (proxy)
    host: str  # the vLLM host that serves it
    url: str
    model: str
    key: str | None
    backend_url: str  # the host's own server: /tokenize and /metrics
    backend_model: str
    max_input_tokens: int
    max_output_tokens: int
    timeout_s: float

    def describe(self) -> str:
        via = f"alias {self.name} through the proxy {self.url}" if self.kind == "proxy" \
            else f"{self.host} directly at {self.url}"
        return f"{via} (model {self.model})"


def _main_alias(inventory: Inventory, host: str) -> Alias | None:
    aliases = inventory.aliases_of(host)
    main = [a for a in aliases if a.profile_of is None] or aliases
    return main[0] if main else None


def alias_of(inventory: Inventory, *, kind: Kind, name: str) -> Alias | None:
    """The alias whose limits (and ``slo:``) a target uses: the alias itself through the
    proxy (by any of its names), the host's main alias directly; None when there is none."""
    if kind == "proxy":
        return next((a for a in inventory.aliases.values() if name in a.names), None)
    return _main_alias(inventory, name) if name in inventory.hosts else None


def target(inventory: Inventory, endpoints: Endpoints, *, kind: Kind, name: str) -> Target:
    """The target ``name``: a vLLM host (``direct``) or an alias (``proxy``)."""
    timeout = min(float(inventory.proxy.request_timeout_s), 300.0) * CLIENT_TIMEOUT_SHARE
    alias: Alias | None
    if kind == "proxy":
        aliases = {n: a for a in inventory.aliases.values() for n in a.names}
        if name not in aliases:
            raise FleetError(f"alias {name!r} is not in {inventory.path}; aliases: "
                             + ", ".join(sorted(inventory.aliases)))
        alias = aliases[name]
        host = alias.host
        if endpoints.key is None:
            raise FleetError(f"no key for the proxy at {endpoints.proxy}: {endpoints.key_hint}")
    else:
        host, alias = name, _main_alias(inventory, name)
    spec = inventory.hosts[host].vllm if host in inventory.hosts else None
    if spec is None or host not in endpoints.hosts:
        raise FleetError(f"{host!r} is not a vLLM host of {inventory.path}; vLLM hosts: "
                         + ", ".join(inventory.vllm_hosts))
    max_out = alias.max_output_tokens if alias else spec.max_model_len // 4
    max_in = alias.max_input_tokens if alias else spec.max_model_len - max_out
    via_proxy = kind == "proxy"
    return Target(kind=kind, name=name, host=host,
                  url=endpoints.proxy if via_proxy else endpoints.hosts[host],
                  model=name if via_proxy else spec.served_model_name,
                  key=endpoints.key if via_proxy else None,
                  backend_url=endpoints.hosts[host], backend_model=spec.served_model_name,
                  max_input_tokens=max_in, max_output_tokens=max_out, timeout_s=timeout)


@dataclass(frozen=True, kw_only=True)
class Load:
    """What each request of the sweep sends."""

    input_tokens: int
    output_tokens: int


def load_for(goal: Target, *, input_share: float = 0.5, input_tokens: int | None = None,
             output_tokens: int = 64) -> Load:
    """Request sizes from the target's limits (``input_tokens`` overrides the share)."""
    if not 0 < input_share <= 1:
        raise ValueError(f"input_share={input_share!r}: give a share in (0, 1], e.g. 0.5")
    size = input_tokens if input_tokens is not None else int(goal.max_input_tokens * input_share)
    if not 1 <= size <= goal.max_input_tokens:
        raise ValueError(f"input_tokens={size}: give 1 to {goal.max_input_tokens} (the "
                         f"max_input_tokens of {goal.name})")
    if not 1 <= output_tokens <= goal.max_output_tokens:
        raise ValueError(f"output_tokens={output_tokens}: give 1 to {goal.max_output_tokens} "
                         f"(the max_output_tokens of {goal.name})")
    return Load(input_tokens=size, output_tokens=output_tokens)


def _ticker(out: TextIO | None = None) -> Callable[[int, int], None]:
    """A counter on one terminal line (nothing when stderr is not a terminal)."""
    stream = sys.stderr if out is None else out
    live = stream.isatty()

    def tick(done: int, total: int) -> None:
        if live:
            end = "\n" if done == total else ""
            print(f"\r    {done}/{total} requests", end=end, file=stream, flush=True)
    return tick


async def run_sweep(goal: Target, load: Load, *, slo: SLO, bounds: Bounds,
                    say: Say | None = None) -> Sweep:
    """Build the prompts, then sweep ``goal``; every request is streamed."""
    tick = _ticker()
    async with FleetClient(goal.url, api_key=goal.key, timeout_s=goal.timeout_s) as client, \
            FleetClient(goal.backend_url, timeout_s=goal.timeout_s) as backend:
        builder = PromptBuilder(backend, model=goal.backend_model, host=goal.host)
        prompts: list[Prompt] = [await builder.build(load.input_tokens, seed=seed)
                                 for seed in range(PROMPT_VARIANTS)]
        if say is not None:
            say(f"{goal.describe()}: prompts of exactly {load.input_tokens} tokens "
                f"({builder.calls} /tokenize calls), answers of {load.output_tokens}")

        async def run_step(concurrency: int, count: int) -> LoadRun:
            finished = 0

            async def send(i: int) -> Result:
                nonlocal finished
                result = await client.chat(model=goal.model,
                                           messages=prompts[i % len(prompts)].messages,
                                           max_tokens=load.output_tokens, stream=True)
                finished += 1
                tick(finished, count)
                return result

            return await run_requests(send, count=count, concurrency=concurrency,
                                      metrics=backend.metrics, metrics_interval_s=0.25)

        return await sweep(run_step, slo=slo, bounds=bounds, say=say)
