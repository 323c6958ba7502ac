"""Plain-text tables: columns aligned by padding, the last column left as it is.

Every column-aligned table the library prints (health checks, the smoke report, load
reports, deploy summaries, backup lists) is built here. This module imports nothing from
vllmfleet, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(rows: Iterable[Sequence[str]], *, header: Sequence[str] | None = None,
          sep: str = "  ", rstrip: bool = True) -> list[str]:
    """The lines of a table: ``header`` (if any) then ``rows``.

    Every column but the last is padded on the right to its widest cell (header included),
    columns are joined with ``sep``, and the last column is not padded. ``rstrip`` removes
    trailing spaces from each line (an empty last cell leaves the padding otherwise).
    """
    lines = [tuple(header)] if header is not None else []
    lines += [tuple(r) for r in rows]
    if not lines:
        return []
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]) - 1)]
    out = [sep.join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)), r[-1]])
           for r in lines]
    return [line.rstrip() for line in out] if rstrip else out
