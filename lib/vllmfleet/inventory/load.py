"""The fleet inventory: load ``configs/fleet.yaml`` into typed objects and validate it.

:func:`load` reads the file (:func:`vllmfleet.inventory.yamldoc.read_yaml`: duplicate and non-string
keys are errors), builds the dataclasses below (every key typed and range-checked,
unknown keys rejected with a did-you-mean), checks that every name refers to an entry
that exists, and then applies the cross-field rules in :mod:`vllmfleet.inventory.rules`. It raises
:class:`~vllmfleet.errors.InventoryError` listing every problem with file, line, field
path and fix; warnings of a usable inventory are kept on :attr:`Inventory.warnings`.
"""


from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory.model import Alias, Host, Inventory, Model, Proxy
from vllmfleet.inventory.rules import check, check_references
from vllmfleet.inventory.schema import Context, build, show
from vllmfleet.inventory.yamldoc import read_yaml


@dataclass(frozen=True)
class _Section:
    """A top-level mapping of named entries, and what its names may look like."""

    cls: type[Any]
    entry: str
    name_pattern: str
    name_help: str
    example: str


_SECTIONS = {
    "hosts": _Section(Host, "host", r"[A-Za-z0-9][A-Za-z0-9_-]*",
                      "use letters, digits, '-' and '_' (the name becomes task names such as "
                      "deploy.<host> and backup folders)",
                      "motoko: {address: motoko.lan, platform: linux, ssh: {user: ops}}"),
    "aliases": _Section(Alias, "alias", r"\S+",
                        "use a name without spaces (clients send it as the model name)",
                        "llama31-8b-wintermute: {host: wintermute, max_input_tokens: 14000, …}"),
    "models": _Section(Model, "model", r"\S+", "use a name without spaces",
                       "llama-3.1-8b-instruct: {hf_id: meta-llama/Llama-3.1-8B-Instruct, …}"),
}
_TOP = ("hosts", "proxy", "aliases", "models")


def _named(ctx: Context, key: str, data: Any) -> dict[str, Any]:
    section = _SECTIONS[key]
    fix = f"add at least one {section.entry} under {key}:, e.g. {section.example}"
    if data is None or data == {}:
        ctx.error(key, f"{key}: is empty", fix)
        return {}
    if not isinstance(data, dict):
        ctx.error(key, f"{key} must be a mapping of {section.entry} names to entries, not "
                  f"{ctx.describe(key, data)}", fix)
        return {}
    out = {}
    for name, value in data.items():
        if not isinstance(name, str):  # read_yaml reported it
            continue
        path = f"{key}.{name}"
        if not re.fullmatch(section.name_pattern, name):
            ctx.error(path, f"{section.entry} name {show(name)} cannot be used", section.name_help)
            continue
        obj = build(ctx, path, value, section.cls, label=name, name=name)
        if obj is not None:
            out[name] = obj
    return out


def _fail(file: str, message: str, fix: str, *, line: int | None = 1) -> InventoryError:
    return InventoryError([Problem(severity="error", path="", file=file, line=line,
                                   message=message, fix=fix)])


def parse(text: str, *, file: str = "<inventory>") -> Inventory:
    """Parse and validate inventory ``text``; ``file`` is used in messages only.

    Raises :class:`InventoryError` (and nothing else) for any text a user can write.
    """
    doc = read_yaml(text, file=file)
    data = doc.data
    start = "start from the shipped configs/fleet.yaml"
    if data is None:
        raise _fail(file, "the inventory is empty", f"{start}: it needs "
                    + ", ".join(f"{k}:" for k in _TOP))
    ctx = Context(file=file, lines=doc.lines)
    ctx.problems.extend(doc.problems)
    if not isinstance(data, dict):
        raise _fail(file, "the inventory must be a mapping with the keys "
                    + ", ".join(_TOP) + f"; this file holds {ctx.describe('', data)}", start)
    for key in data:
        if isinstance(key, str) and key not in _TOP:
            hint = difflib.get_close_matches(key, _TOP, n=1)
            ctx.error(key, f"unknown top-level key {key!r}",
                      f"did you mean {hint[0]!r}?" if hint
                      else "remove it; the inventory's keys are " + ", ".join(_TOP))
    for key in _TOP:
        if key not in data and key != "proxy":
            ctx.error(key, f"the inventory has no {key}: section",
                      f"add {key}: with at least one {_SECTIONS[key].entry}, "
                      f"e.g. {_SECTIONS[key].example}")
    hosts, aliases, models = (_named(ctx, key, data[key]) if key in data else {}
                              for key in ("hosts", "aliases", "models"))
    proxy: Proxy | None = None
    if "proxy" in data:
        proxy = build(ctx, "proxy", data["proxy"], Proxy)
    else:
        ctx.error("proxy", "the inventory has no proxy: section",
                  "add proxy: {host: <the key of hosts: that runs LiteLLM>}, "
                  "e.g. proxy: {host: motoko, port: 4000}")
    check_references(ctx, data)
    if ctx.failed or proxy is None:
        raise InventoryError(ctx.problems)
    inventory = Inventory(path=Path(file),
                          digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                          hosts=hosts, proxy=proxy, aliases=aliases, models=models)
    check(ctx, inventory)
    if ctx.failed:
        raise InventoryError(ctx.problems)
    inventory.warnings.extend(ctx.problems)
    return inventory


def load(path: str | Path) -> Inventory:
    """Load and validate the inventory file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(str(p), "inventory file not found",
                    "pass --inventory PATH or set vllmfleet.inventory in invoke.yaml "
                    "(INVOKE_VLLMFLEET_INVENTORY)", line=None) from None
    except IsADirectoryError:
        raise _fail(str(p), "this is a folder, not an inventory file",
                    "name the YAML file itself, e.g. configs/fleet.yaml", line=None) from None
    except UnicodeDecodeError as exc:
        raise _fail(str(p), f"the inventory is not UTF-8 text (byte {exc.start}: {exc.reason})",
                    "save it as UTF-8; is this the right file?", line=None) from None
    except OSError as exc:
        raise _fail(str(p), f"cannot read the inventory: {exc.strerror or exc}",
                    "check the path and its permissions", line=None) from None
    return parse(text, file=str(p))
