"""Was a request refused the way the fleet promises: a 4xx whose message names the limit?

One check for the demo (:mod:`vllmfleet.acceptance.smoke`) and the pytest suites; each
returns problems in words (empty: as promised) and never raises.
"""

from __future__ import annotations

import re

from vllmfleet.client import Result


def names_number(message: str, number: int) -> bool:
    """Whether ``message`` names ``number`` on its own: 1024 is not named by "10240"."""
    return re.search(rf"(?<!\d){number}(?!\d)", message) is not None


def describe(result: Result) -> str:
    """One request in a line: status, time, and the error or the start of the answer."""
    head = f"{result.status or result.status_class} in {result.latency_s * 1000:.0f} ms"
    if result.retry_after is not None:
        head += f", Retry-After {result.retry_after:g} s"
    return f"{head}: {result.error[:240]}" if result.error else head


def refused_naming(result: Result, *, limit: int, what: str) -> list[str]:
    """Problems unless ``result`` is a 4xx (not 429) whose message names ``limit``."""
    if result.ok:
        return [f"accepted (200) although it is over {what}={limit}: the limit is not "
                "enforced"]
    if result.status_class == "5xx":
        return [f"answered {result.status}, a server fault instead of a clear refusal: "
                f"{result.error[:240]}"]
    if result.status_class != "4xx":
        return [f"expected a 4xx refusal over {what}={limit}, got {describe(result)}"]
    if not names_number(result.error, limit):
        return [f"refused with {result.status}, but the message does not name the limit "
                f"{what}={limit}: {result.error[:240]!r}"]
    return []


def held_or_refused(result: Result, *, limit: int) -> list[str]:
    """Problems unless ``result`` is a clear 4xx refusal or a 200 within ``limit`` tokens.

    For attempts to get past an output limit another way (a backend name, ``extra_body``,
    a second field, ``n``): the proxy may refuse them or cap them, never pass them on.
    """
    if result.status_class == "5xx":
        return [f"answered {result.status}, a server fault instead of a clear refusal: "
                f"{result.error[:240]}"]
    if result.ok:
        if result.completion_tokens is None:
            return ["accepted without usage, so the output limit cannot be checked"]
        if result.completion_tokens > limit:
            return [f"accepted with {result.completion_tokens} completion tokens, more than "
                    f"max_output_tokens={limit}: the limit was bypassed"]
        return []
    if result.status_class != "4xx" or result.status == 429:
        return [f"expected a 4xx refusal or an answer within {limit} tokens, got "
                f"{describe(result)}"]
    return []
