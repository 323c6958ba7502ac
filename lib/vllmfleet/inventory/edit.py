"""Change values in an inventory file and keep everything else: comments, order, quoting,
flow style and blank lines (ruamel.yaml's round trip).

:func:`edited` returns the new text and a unified diff of it (only the changed values'
lines differ); :func:`write` replaces the file atomically. Used by ``inv fit.<host>
--apply``; the new text is loaded (validated) before it is written.
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from vllmfleet.errors import InventoryError, Problem

Key = tuple[str, ...]


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def edited(path: Path, changes: Mapping[Key, Any]) -> tuple[str, str]:
    """(new text, unified diff) of ``path`` with each ``changes`` key path set to its value."""
    text = path.read_text(encoding="utf-8")
    yaml = _yaml()
    data = yaml.load(text)
    for key, value in changes.items():
        node = data
        for part in key[:-1]:
            if not hasattr(node, "get") or node.get(part) is None:
                raise _missing(path, key, f"no {part!r} to change")
            node = node[part]
        if not hasattr(node, "__setitem__") or key[-1] not in node:
            raise _missing(path, key, "not set in the file")
        node[key[-1]] = value
    out = io.StringIO()
    yaml.dump(data, out)
    new = out.getvalue()
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"{path} (now)", tofile=f"{path} (fitted)"))
    return new, diff


def _missing(path: Path, key: Key, why: str) -> InventoryError:
    return InventoryError([Problem(severity="error", path=".".join(key), file=str(path),
                                   message=f"cannot change it: {why}",
                                   fix="add the key to the file, then run the command again")])


def write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
