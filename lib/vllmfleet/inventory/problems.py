"""The ``inv validate`` report: inventory problems as a person reads them.

::

    errors:
      configs/fleet.yaml:23: hosts.wintermute.vllm.max_model_len
        max_model_len 200000 is above llama-3.1-8b-instruct's max_position_embeddings 131072
        fix: lower max_model_len to at most 131072
    warnings:
      configs/fleet.yaml:70: aliases.llama31-8b-wintermute.max_input_tokens
        max_input_tokens 10000 is 61% of wintermute's max_model_len 16384; ...
        fix: use 13926-14745 (85-90 %) unless you mean it

    1 error, 1 warning

Errors come first, then warnings, each group in file and line order.
"""

from __future__ import annotations

from collections.abc import Iterable

from vllmfleet.errors import Problem

_RED, _YELLOW, _BOLD, _DIM, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _where(problem: Problem) -> str:
    where = problem.file or "<inventory>"
    if problem.line is not None:
        where += f":{problem.line}"
    return f"{where}: {problem.path}" if problem.path else where


def _order(problem: Problem) -> tuple[str, int]:
    return problem.file, problem.line if problem.line is not None else 0


def summary(problems: Iterable[Problem]) -> str:
    """The closing line: ``"2 errors, 1 warning"``."""
    items = list(problems)
    errors = sum(p.severity == "error" for p in items)
    return f"{_count(errors, 'error')}, {_count(len(items) - errors, 'warning')}"


def format_problems(problems: Iterable[Problem], *, color: bool = False) -> str:
    """Errors, then warnings, each with file:line, field path, message and fix, then a count.

    ``color`` adds ANSI colours (for a terminal). The text ends with a newline.
    """
    items = list(problems)

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    for severity, title, code in (("error", "errors:", _RED), ("warning", "warnings:", _YELLOW)):
        group = sorted((p for p in items if p.severity == severity), key=_order)
        if not group:
            continue
        out.append(paint(title, _BOLD + code))
        for problem in group:
            out.append("  " + paint(_where(problem), _BOLD))
            out.extend("    " + line for line in problem.message.splitlines() or [""])
            if problem.fix:
                out.append("    " + paint("fix: ", code) + problem.fix)
    if out:
        out.append("")
    failed = any(p.severity == "error" for p in items)
    out.append(paint(summary(items), _BOLD + (_RED if failed else "")))
    return "\n".join(out) + "\n"
