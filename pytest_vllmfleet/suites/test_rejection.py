"""Acceptance criterion 3: requests over a limit get a clear 4xx, never a 5xx.

- over max_input_tokens, per alias, through the proxy: a prompt between the alias's limit
  and the backend's max_model_len (so only the proxy can refuse it) → 4xx naming the limit;
- over max_output_tokens, per alias, through the proxy → 4xx naming the limit, or, for an
  alias with ``on_max_output: clamp``, an answer of at most max_output_tokens;
- the known ways around the output limit, per alias, through the proxy: the backend's own
  name (``hosted_vllm/<served name>``), ``extra_body.max_tokens``, ``max_completion_tokens``
  beside a small ``max_tokens``, ``n=2`` → refused (4xx) or answered within the limit;
- over max_model_len, per host, directly at vLLM → 4xx naming max_model_len;
- afterwards every selected host still serves, directly and through the proxy.

Prompt sizes are exact counts by the backend's /tokenize, the counter that enforces
max_input_tokens at the proxy for every alias with ``exact_input_tokens`` (the default), so
the suite holds for any tokenizer. (An alias that opts out is counted by LiteLLM's tiktoken,
which counts this filler text about the same.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_vllmfleet.checks import (
    SHORT,
    clamp_problems,
    fail_with,
    refused_naming,
    route_for,
    still_serves,
)
from pytest_vllmfleet.fleet import Fleet
from pytest_vllmfleet.plugin import Recorder
from vllmfleet.acceptance.limits import held_or_refused
from vllmfleet.client import FleetClient
from vllmfleet.client.prompts import PromptBuilder
from vllmfleet.inventory import Alias

pytestmark = pytest.mark.rejection


@pytest.mark.parametrize("fleet_target", ["proxy"])
def test_over_max_input_is_refused_by_the_proxy(
        fleet: Fleet, fleet_alias: Alias, fleet_target: str, proxy_client: FleetClient,
        prompt_builder: Callable[[str], PromptBuilder], fleet_report: Recorder) -> None:
    vllm = fleet.vllm(fleet_alias.host)
    margin = max(1, (vllm.max_model_len - fleet_alias.max_input_tokens) // 2)
    tokens = fleet_alias.max_input_tokens + margin
    prompt = fleet.run(prompt_builder(fleet_alias.host).build(tokens))
    result = fleet.run(proxy_client.chat(model=fleet_alias.name, messages=prompt.messages,
                                         max_tokens=8))
    fleet_report.add("rejection", [result], host=fleet_alias.host, target="proxy",
                     model=fleet_alias.name, max_input_tokens=fleet_alias.max_input_tokens,
                     label=f"{tokens} tok > max_input")
    problems = refused_naming(result, limit=fleet_alias.max_input_tokens,
                              what="max_input_tokens")
    if problems:
        fail_with(f"{fleet_alias.name} via proxy, a prompt of {tokens} tokens (max_input_tokens "
                  f"{fleet_alias.max_input_tokens}, backend max_model_len {vllm.max_model_len})",
                  problems)


@pytest.mark.parametrize("fleet_target", ["proxy"])
def test_over_max_output_is_refused_by_the_proxy(fleet: Fleet, fleet_alias: Alias,
                                                 fleet_target: str, proxy_client: FleetClient,
                                                 fleet_report: Recorder) -> None:
    limit = fleet_alias.max_output_tokens
    result = fleet.run(proxy_client.chat(model=fleet_alias.name, messages=SHORT,
                                         max_tokens=limit + 1))
    fleet_report.add("rejection", [result], host=fleet_alias.host, target="proxy",
                     model=fleet_alias.name, max_input_tokens=fleet_alias.max_input_tokens,
                     label=f"max_tokens {limit + 1} > max_output")
    where = f"{fleet_alias.name} via proxy, max_tokens={limit + 1} (max_output_tokens {limit})"
    if fleet_alias.on_max_output == "clamp":
        problems = clamp_problems(result, limit=limit)
    else:
        problems = refused_naming(result, limit=limit, what="max_output_tokens")
    if problems:
        fail_with(where, problems)


@pytest.mark.parametrize("fleet_target", ["proxy"])
def test_text_tokenizers_disagree_on_is_refused_over_max_input(
        fleet: Fleet, fleet_alias: Alias, fleet_target: str, proxy_client: FleetClient,
        fleet_report: Recorder) -> None:
    """Runs of ``=`` count far lower by LiteLLM's tiktoken than by most model tokenizers: a
    prompt over max_input_tokens by the backend's own count must still be refused."""
    if not fleet_alias.exact_input_tokens:
        pytest.skip(f"{fleet_alias.name} opts out of exact counting (exact_input_tokens: "
                    "false): the proxy counts with tiktoken there")
    vllm = fleet.vllm(fleet_alias.host)
    counter = fleet.client(fleet_alias.host)
    target = fleet_alias.max_input_tokens + max(
        1, (vllm.max_model_len - fleet_alias.max_input_tokens) // 2)
    chars, count = 1024, 0
    while True:  # grow the run until the backend counts it between the two limits
        messages = [{"role": "user", "content": "=" * chars}]
        count = fleet.run(counter.tokenize(model=vllm.served_model_name, messages=messages))
        if count > fleet_alias.max_input_tokens or chars > 64 * vllm.max_model_len:
            break
        chars = max(chars + 1, chars * target // max(count, 1))
    if not fleet_alias.max_input_tokens < count < vllm.max_model_len:
        pytest.skip(f"{vllm.served_model_name}'s tokenizer does not put a run of '=' between "
                    f"max_input_tokens and max_model_len ({chars} chars: {count} tokens)")
    result = fleet.run(proxy_client.chat(model=fleet_alias.name, messages=messages,
                                         max_tokens=8))
    fleet_report.add("rejection", [result], host=fleet_alias.host, target="proxy",
                     model=fleet_alias.name, max_input_tokens=fleet_alias.max_input_tokens,
                     label=f"'=' x {chars}: {count} tok > max_input")
    problems = refused_naming(result, limit=fleet_alias.max_input_tokens,
                              what="max_input_tokens")
    if problems:
        fail_with(f"{fleet_alias.name} via proxy, '=' x {chars} ({count} tokens by the "
                  f"backend, max_input_tokens {fleet_alias.max_input_tokens})", problems)


def _bypass(kind: str, alias: Alias, served: str) -> dict[str, Any]:
    """The request of one bypass family. ``ignore_eos`` (a vLLM sampling parameter, sent in
    at the top level and in ``extra_body``, which LiteLLM merges into the backend's body)
    makes a backend generate every token it is allowed, so a bypass shows as
    more completion tokens than the limit even with a model that would stop early."""
    over = alias.max_output_tokens + 1
    eos = {"ignore_eos": True}
    return {
        "backend-name": {"model": f"hosted_vllm/{served}", "max_tokens": over,
                         "extra_body": eos},
        "extra_body": {"model": alias.name, "max_tokens": 1,
                       "extra_body": {**eos, "max_tokens": over}},
        "both-fields": {"model": alias.name, "max_tokens": 1, "max_completion_tokens": over,
                        "extra_body": eos},
        "n": {"model": alias.name, "max_tokens": alias.max_output_tokens,
              "n": alias.max_n + 1, "extra_body": eos},
    }[kind]


@pytest.mark.parametrize("kind", ["backend-name", "extra_body", "both-fields", "n"])
@pytest.mark.parametrize("fleet_target", ["proxy"])
def test_no_way_around_the_output_limit(fleet: Fleet, fleet_alias: Alias, fleet_target: str,
                                        kind: str, proxy_client: FleetClient,
                                        fleet_report: Recorder) -> None:
    served = fleet.vllm(fleet_alias.host).served_model_name
    body = _bypass(kind, fleet_alias, served)
    model = body.pop("model")
    result = fleet.run(proxy_client.chat(model=model, messages=SHORT, ignore_eos=True, **body))
    fleet_report.add("rejection", [result], host=fleet_alias.host, target="proxy",
                     model=fleet_alias.name, max_input_tokens=fleet_alias.max_input_tokens,
                     label=f"bypass {kind}")
    limit = fleet_alias.max_output_tokens * (fleet_alias.max_n if kind == "n" else 1)
    problems = held_or_refused(result, limit=limit)
    if problems:
        fail_with(f"{fleet_alias.name} via proxy, {kind}: {body}", problems)


@pytest.mark.parametrize("fleet_target", ["direct"])
def test_over_max_model_len_is_refused_by_vllm(
        fleet: Fleet, fleet_host: str, fleet_target: str,
        host_client: Callable[[str], FleetClient],
        prompt_builder: Callable[[str], PromptBuilder], fleet_report: Recorder) -> None:
    vllm = fleet.vllm(fleet_host)
    tokens = vllm.max_model_len + 64
    prompt = fleet.run(prompt_builder(fleet_host).build(tokens))
    result = fleet.run(host_client(fleet_host).chat(model=vllm.served_model_name,
                                                    messages=prompt.messages, max_tokens=8))
    fleet_report.add("rejection", [result], host=fleet_host, target="direct",
                     model=vllm.served_model_name, label=f"{tokens} tok > max_model_len")
    problems = refused_naming(result, limit=vllm.max_model_len, what="max_model_len")
    if problems:
        fail_with(f"{fleet_host} direct, a prompt of {tokens} tokens (max_model_len "
                  f"{vllm.max_model_len})", problems)


def test_the_fleet_still_serves_afterwards(fleet: Fleet, fleet_host: str,
                                           fleet_target: Any) -> None:
    route = route_for(fleet, fleet_host, fleet_target)
    problems = fleet.run(still_serves(route))
    if problems:
        fail_with(f"{fleet_host} via {fleet_target} after the rejections", problems)
