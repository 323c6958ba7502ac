"""Reading vLLM command-line arguments (the inverse of rendering them)."""

from __future__ import annotations

from collections.abc import Sequence


def flag_value(args: Sequence[str], name: str) -> str | None:
    """The value of ``name`` in vLLM arguments (``--flag value`` or ``--flag=value``), or None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None
