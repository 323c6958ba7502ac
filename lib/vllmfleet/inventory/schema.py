"""From parsed YAML to typed, frozen dataclasses, collecting every problem on the way.

:func:`build` walks the data (from :func:`vllmfleet.inventory.yamldoc.read_yaml`) against a
dataclass that describes itself: field types (``int``, ``float``, ``str``, ``bool``,
``Literal[...]``, ``X | None``, ``list[X]``, ``dict[str, X]``, nested dataclasses) and,
through :func:`spec` / :func:`meta`, ranges (``ge``/``gt``/``le``/``lt``), a ``pattern``,
a ``help`` line (what a valid value is) and an ``example``, used to write the fix. Each
:class:`~vllmfleet.errors.Problem` names the field path and, through
:class:`~vllmfleet.inventory.yamldoc.Lines`, the line; a message quotes the value as it was written.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from vllmfleet.errors import Problem
from vllmfleet.inventory.yamldoc import Lines

T = TypeVar("T")

_MISSING = object()
_HUGE = 2**53  # larger numbers are typos (and overflow float arithmetic in the rules)
_YAML_BOOL_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false"}

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlevel = 2


def show(value: Any) -> str:
    """A short ``repr`` for messages (bounded, safe on recursive or huge values)."""
    return _short.repr(value)


class Context:
    """Where problems go, and how paths become lines."""

    def __init__(self, *, file: str, lines: Lines) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, severity: Literal["error", "warning"], path: str, message: str,
            fix: str = "") -> None:
        self.problems.append(Problem(severity=severity, path=path, message=message, fix=fix,
                                     file=self.file, line=self.lines.of(path)))

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.add("error", path, message, fix)

    def warning(self, path: str, message: str, fix: str = "") -> None:
        self.add("warning", path, message, fix)

    def describe(self, path: str, value: Any) -> str:
        """:func:`describe` ``value``, found at ``path``, as the user wrote it."""
        return describe(value, self.lines.raw(path))

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return "a list of " + _plural(get_args(tp)[0])
    if origin is dict:
        return "a mapping of names to " + _plural(get_args(tp)[1])
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(
        tp, _type_name(tp))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: Any, raw: str | None = None) -> str:
    """What the user wrote, in words: "'16k'", "8.9 (a number)", "a list", "nothing (null)".

    ``raw`` is the scalar as written in the file (``no`` rather than ``False``).
    """
    if value is None:
        return "nothing (null)" if not raw else f"{raw} (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return show(value)
    kind = "true/false" if isinstance(value, bool) else \
        "a number" if isinstance(value, int | float) else type(value).__name__
    return f"{raw if raw is not None else show(value)} ({kind})"


def _set_fix(name: str, tp: Any, meta: typing.Mapping[str, Any]) -> str:
    what = str(meta.get("help") or _type_name(tp))
    example = meta.get("example")
    return f"set {name} to {what}" + (f", e.g. {name}: {example}" if example else "")


def _check_range(ctx: Context, path: str, name: str, value: Any, tp: Any,
                 meta: typing.Mapping[str, Any]) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        ctx.error(path, f"{name} is {value}; it must be a finite number", _set_fix(name, tp, meta))
        return False
    if isinstance(value, int | float) and abs(value) > _HUGE:  # arithmetic on it would overflow
        ctx.error(path, f"{name} is {show(value)}; no setting is that large",
                  _set_fix(name, tp, meta))
        return False
    bounds: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
        "ge": (lambda v, b: v >= b, "at least"), "gt": (lambda v, b: v > b, "more than"),
        "le": (lambda v, b: v <= b, "at most"), "lt": (lambda v, b: v < b, "less than"),
    }
    for key, (test, words) in bounds.items():
        if key in meta and isinstance(value, int | float) and not test(value, meta[key]):
            ctx.error(path, f"{name} is {value}; it must be {words} {meta[key]}",
                      _set_fix(name, tp, meta))
            return False
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
        ctx.error(path, f"{name} {show(value)} is not valid here", _set_fix(name, tp, meta))
        return False
    return True


def _convert(ctx: Context, path: str, name: str, value: Any, tp: Any,
             meta: typing.Mapping[str, Any]) -> Any:
    """Convert ``value`` (the key ``name`` at ``path``) to ``tp``.

    On failure record a problem and return ``_MISSING``.
    """
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        non_null = [a for a in options if a is not type(None)]
        if len(non_null) != 1:
            raise TypeError(f"unsupported union {tp}")  # a schema bug, not a user's
        return _convert(ctx, path, name, value, non_null[0], meta)
    if origin is Literal:
        return _convert_choice(ctx, path, name, value, tp, meta)
    if origin is list:
        if not isinstance(value, list):
            fix = _set_fix(name, tp, meta)
            if isinstance(value, str):
                fix = f"write it as a list: {name}: [{value}]"
            ctx.error(path, f"{name} must be {_type_name(tp)}, not {ctx.describe(path, value)}",
                      fix)
            return _MISSING
        items = [_convert(ctx, f"{path}[{i}]", f"{name}[{i}]", v, get_args(tp)[0], {})
                 for i, v in enumerate(value)]
        return _MISSING if any(i is _MISSING for i in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            ctx.error(path, f"{name} must be {_type_name(tp)}, not {ctx.describe(path, value)}",
                      _set_fix(name, tp, meta))
            return _MISSING
        out = {}
        item_meta = {k: v for k, v in meta.items() if k != "example"}
        for key, item in value.items():
            converted = _convert(ctx, _join(path, str(key)), str(key), item, get_args(tp)[1],
                                 item_meta)
            if converted is not _MISSING and isinstance(key, str):  # other keys: read_yaml
                out[key] = converted
        return out if len(out) == len(value) else _MISSING
    if dataclasses.is_dataclass(tp):
        built = build(ctx, path, value, typing.cast("type[Any]", tp), label=name)
        return _MISSING if built is None else built
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raw = ctx.lines.raw(path)
        fix = _set_fix(name, tp, meta)
        if tp is str and raw is not None and value is not None:
            fix = f"quote it: '{raw}'" if "[" in name else f"quote it: {name}: '{raw}'"
        elif tp in (int, float) and isinstance(value, str) and (number := _number(value, tp)):
            fix = f"YAML reads {value} as text; write {name}: {number}"
        ctx.error(path, f"{name} must be {_type_name(tp)}, not {ctx.describe(path, value)}",
                  fix)
        return _MISSING
    if tp is float:
        value = float(value)
    return value if _check_range(ctx, path, name, value, tp, meta) else _MISSING


def _number(text: str, tp: Any) -> str:
    """How to write ``text`` (``1e3``, ``16_384``) so that YAML reads a number; "" if none."""
    try:
        number = float(text)
    except ValueError:
        return ""
    if not math.isfinite(number) or abs(number) > _HUGE:
        return ""
    if tp is int:
        return str(int(number)) if number.is_integer() else ""
    return repr(number)


def _convert_choice(ctx: Context, path: str, name: str, value: Any, tp: Any,
                    meta: typing.Mapping[str, Any]) -> Any:
    choices = get_args(tp)
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return value
    raw = ctx.lines.raw(path)
    words = [str(c) for c in choices]
    if isinstance(value, bool) and raw is not None and raw.lower() in _YAML_BOOL_WORDS:
        fix = f"YAML reads an unquoted {raw} as {str(value).lower()}; quote it: {name}: '{raw}'"
    else:
        typed = raw if raw is not None else value if isinstance(value, str) else show(value)
        hint = difflib.get_close_matches(typed, words, n=1)
        fix = (f"did you mean {name}: {hint[0]}?" if hint
               else f"use one of: {', '.join(words)}")
    ctx.error(path, f"{name} {ctx.describe(path, value)} is not {_type_name(tp)}", fix)
    return _MISSING


def _missing_fix(name: str, tp: Any, meta: typing.Mapping[str, Any]) -> str:
    example = meta.get("example")
    if example:
        return f"add {name}: {example}" + (f"  ({meta['help']})" if meta.get("help") else "")
    return f"add {name}: <{meta.get('help') or _type_name(tp)}>"


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """``get_type_hints`` once per class (resolving string annotations is slow)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def build(ctx: Context, path: str, data: Any, cls: type[T], *, label: str = "",
          **extra: Any) -> T | None:
    """Build dataclass ``cls`` from mapping ``data``; ``extra`` fills fields not read from YAML.

    ``label`` is the mapping's key in messages ("missing from vllm:"); it defaults to the
    last part of ``path``.

    Unknown keys are errors with a did-you-mean; missing required keys say what to add.
    Returns ``None`` when anything was wrong (the problems are in ``ctx``).
    """
    hints = _hints(typing.cast("type[Any]", cls))
    fields = {f.name: f for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.name not in extra}
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    name = label or path.rsplit(".", 1)[-1]
    if not isinstance(data, dict):
        if data is None:
            ctx.error(path, f"{name}: is empty", "add its keys under it: "
                      + ", ".join(_missing_fix(r, hints[r], fields[r].metadata)
                                  .removeprefix("add ") for r in required))
        else:
            ctx.error(path, f"{name} must be a mapping (keys indented under {name}:), "
                      f"not {ctx.describe(path, data)}",
                      "write it as key: value lines indented under " + f"{name}:")
        return None
    ok = True
    misspelt: set[str] = set()  # required keys an unknown key is a typo of: said once
    for key in data:
        if not isinstance(key, str):  # read_yaml reported it
            ok = False
        elif key not in fields:
            hint = difflib.get_close_matches(key, [f for f in fields if f not in data], n=1)
            if hint:
                fix = f"did you mean {hint[0]!r}?"
                if hint[0] in required:
                    misspelt.add(hint[0])
                    fix += " (it is required)"
            else:
                fix = "remove it; the keys of " + f"{name}: are " + ", ".join(sorted(fields))
            ctx.error(_join(path, key), f"unknown key {show(key)} in {name}:", fix)
            ok = False
    values: dict[str, Any] = dict(extra)
    for field_name, f in fields.items():
        child = _join(path, field_name)
        if field_name not in data:
            if field_name in required and field_name not in misspelt:
                ctx.error(child, f"required key {field_name!r} is missing from {name}:",
                          _missing_fix(field_name, hints[field_name], f.metadata))
                ok = False
            continue
        converted = _convert(ctx, child, field_name, data[field_name], hints[field_name],
                             f.metadata)
        if converted is _MISSING:
            ok = False
        else:
            values[field_name] = converted
    return cls(**values) if ok else None


def meta(*, help: str = "", example: str = "", **bounds: Any) -> dict[str, Any]:
    """Field metadata for :func:`dataclasses.field`: ``field(metadata=meta(help=...))``.

    ``help`` says what a valid value is (a noun phrase), ``example`` is a literal value;
    both end up in fixes ("add max_num_seqs: 2", "set port to a TCP port ..."). ``bounds``
    are ``ge``/``gt``/``le``/``lt`` and ``pattern`` (a full-match regular expression).
    """
    return {"help": help, "example": example, **bounds}


def spec(*, help: str = "", example: str = "", **bounds: Any) -> Any:
    """A field with :func:`meta`: ``spec(ge=1, help="a positive count", example="2")``.

    ``default`` passes through to :func:`dataclasses.field`. (For a mutable default or a
    required nested section use ``field(default_factory=..., metadata=meta(...))``.)
    """
    default = bounds.pop("default", dataclasses.MISSING)
    return dataclasses.field(default=default, metadata=meta(help=help, example=example, **bounds))
