"""Small checks the suites share; each returns problems in words, never raises.

A suite collects problems and calls :func:`fail_with`, so a failure reads like a finding
("wintermute via proxy: 2 of 5 requests did not complete …") instead of an assert diff.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NoReturn

import pytest

from pytest_vllmfleet.fleet import Fleet, Route
from vllmfleet.acceptance.limits import describe, refused_naming
from vllmfleet.client import Result

__all__ = ["clamp_problems", "describe", "fail_with", "refused_naming", "route_for",
           "still_serves", "usage_problems"]

SHORT = [{"role": "user", "content": "Reply with one word: ready?"}]


def fail_with(where: str, problems: Sequence[str], details: Iterable[str] = ()) -> NoReturn:
    """Fail the test with a readable list of what is wrong (no traceback)."""
    lines = [f"{where}:", *(f"  - {p}" for p in problems)]
    more = list(details)
    if more:
        lines += ["  requests:", *(f"    {d}" for d in more)]
    pytest.fail("\n".join(lines), pytrace=False)


async def still_serves(route: Route) -> list[str]:
    """Problems if the target no longer answers: /health (direct) and a short request."""
    problems: list[str] = []
    if route.target == "direct":
        status = await route.client.health()
        if status != 200:
            problems.append(f"/health answers {status or 'nothing'} afterwards: the server "
                            "crashed or ran out of memory (see its log)")
    answer = await route.client.chat(model=route.model, messages=SHORT, max_tokens=4)
    if not answer.ok:
        problems.append(f"a short request afterwards failed: {describe(answer)}")
    return problems


def usage_problems(results: Sequence[Result], *, prompt_tokens: int | None = None) -> list[str]:
    """Problems if an answer lacks the usage that was asked for, or miscounts the prompt.

    Every request of the suites asks for usage (a plain answer always carries it; a stream
    asks with ``stream_options.include_usage``), so an answer without it is a finding, not a
    reason to skip the count check. With ``prompt_tokens`` each answer's count must equal it.
    """
    answered = [r for r in results if r.ok]
    missing = sum(r.prompt_tokens is None or r.completion_tokens is None for r in answered)
    problems: list[str] = []
    if missing:
        problems.append(f"{missing} of {len(answered)} answers carried no usage (prompt/"
                        "completion tokens) although it was requested: the token counts "
                        "cannot be checked")
    if prompt_tokens is not None:
        miscounted = sorted({r.prompt_tokens for r in answered
                             if r.prompt_tokens is not None and r.prompt_tokens != prompt_tokens})
        if miscounted:
            problems.append(f"the server counted {miscounted} prompt tokens where /tokenize "
                            f"said {prompt_tokens}: its usage and /tokenize disagree")
    return problems


def clamp_problems(result: Result, *, limit: int) -> list[str]:
    """Problems unless ``result`` answered with a known number of at most ``limit`` tokens."""
    if not result.ok:
        return [f"the alias clamps, but the request failed: {describe(result)}"]
    if result.completion_tokens is None:
        return [f"answered without usage, so the clamp to max_output_tokens={limit} cannot be "
                "seen: the answer has no completion_tokens"]
    if result.completion_tokens > limit:
        return [f"answered {result.completion_tokens} tokens, more than "
                f"max_output_tokens={limit}: the clamp is not applied"]
    return []


def route_for(fleet: Fleet, host: str, target: str, *, retry_429: int = 0) -> Route:
    """The host's route on ``target``; skips a proxy test for a host no alias routes to."""
    if target == "proxy" and fleet.primary_alias(host) is None:
        pytest.skip(f"no alias of {fleet.inventory.path} routes to {host}")
    return fleet.route(host, "proxy" if target == "proxy" else "direct", retry_429=retry_429)
