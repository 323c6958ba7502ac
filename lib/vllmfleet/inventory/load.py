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
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory.model import Alias, Host, Inventory, Model, Proxy
from vllmfleet.inventory.names import HOST_NAME, HOST_NAME_HELP, hidden_character
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
    "hosts": _Section(Host, "host", HOST_NAME.pattern, HOST_NAME_HELP,
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


def _check_text(ctx: Context, path: str, data: Any, seen: set[int] | None = None) -> None:
    """Every key and string value under ``data`` is free of control and invisible characters
    (:func:`~vllmfleet.inventory.names.hidden_character`); each one found is an error.
    (A recursive YAML anchor is walked once; read_yaml's caller reports it.)"""
    seen = set() if seen is None else seen
    if isinstance(data, dict | list):
        if id(data) in seen:
            return
        seen.add(id(data))
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (char := hidden_character(key)):
                ctx.error(child, f"the name {show(key)} holds the invisible or control "
                          f"character {char}", "retype the name with plain characters")
            _check_text(ctx, child, value, seen)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_text(ctx, f"{path}[{i}]", value, seen)
    elif isinstance(data, str) and (char := hidden_character(data)):
        ctx.error(path, f"{path.rsplit('.', 1)[-1]} {show(data)} holds the invisible or "
                  f"control character {char}", "retype the value with plain characters; "
                  "inventory text is one line of printable characters")


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
    _check_text(ctx, "", data)
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


#: The largest inventory :func:`load` reads. The reference fleet's is 6 KiB; a fleet of a
#: thousand hosts stays under 1 MiB. Anything larger is the wrong file (/dev/zero, a log).
MAX_BYTES = 4 * 1024 * 1024


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device")


def _read(p: Path) -> bytes:
    """The bytes of regular file ``p``, at most :data:`MAX_BYTES`; a FIFO, device or folder is
    refused without reading it (``O_NONBLOCK``: opening a FIFO must not wait for a writer)."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(p)
        if not stat.S_ISREG(info.st_mode):
            raise _fail(str(p), f"this is {_kind(info.st_mode)}, not a regular file",
                        "name the inventory's YAML file, e.g. configs/fleet.yaml", line=None)
        if info.st_size > MAX_BYTES:
            raise _too_big(p, info.st_size)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:  # grew since fstat
        raise _too_big(p, len(data))
    return data


def _too_big(p: Path, size: int) -> InventoryError:
    return _fail(str(p), f"the file is {size / 2**20:.1f} MiB; an inventory is at most "
                 f"{MAX_BYTES // 2**20} MiB", "is this the right file? name the inventory's "
                 "YAML file, e.g. configs/fleet.yaml", line=None)


def load(path: str | Path) -> Inventory:
    """Load and validate the inventory file at ``path`` (a regular file of at most
    :data:`MAX_BYTES`)."""
    p = Path(path)
    try:
        text = _read(p).decode("utf-8")
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
