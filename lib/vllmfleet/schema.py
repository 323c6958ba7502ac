"""Turn parsed YAML into typed, frozen dataclasses, collecting every problem on the way.

The inventory's dataclasses describe themselves: field types (``int``, ``float``, ``str``,
``bool``, ``Literal[...]``, ``X | None``, ``list[X]``, ``dict[str, X]``, nested dataclasses)
and, through ``field(metadata=...)``, ranges (``ge``/``gt``/``le``/``lt``), a ``pattern``
and a ``help`` line used as the fix. :func:`build` walks a YAML value against such a
dataclass and returns the object or ``None`` with :class:`~vllmfleet.errors.Problem` s
appended, each naming the field path and, through :class:`Lines`, the file line.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from vllmfleet.errors import Problem

T = TypeVar("T")

_MISSING = object()


class Lines:
    """Maps a field path such as ``hosts.wintermute.vllm.port`` to its line in the file."""

    def __init__(self, text: str) -> None:
        self._lines: dict[str, int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self._lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self._lines[child] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]")

    def of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest ancestor that is in the file."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)
        return self._lines.get("")


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


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of names to {_type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_range(ctx: Context, path: str, value: Any, meta: typing.Mapping[str, Any]) -> bool:
    ok = True
    bounds: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
        "ge": (lambda v, b: v >= b, "at least"), "gt": (lambda v, b: v > b, "more than"),
        "le": (lambda v, b: v <= b, "at most"), "lt": (lambda v, b: v < b, "less than"),
    }
    for key, (test, words) in bounds.items():
        if key in meta and isinstance(value, int | float) and not test(value, meta[key]):
            ctx.error(path, f"{value!r} is out of range: it must be {words} {meta[key]}",
                      meta.get("help", ""))
            ok = False
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
        ctx.error(path, f"{value!r} is not valid here", meta.get("help", f"match {pattern}"))
        ok = False
    return ok


def _convert(ctx: Context, path: str, value: Any, tp: Any,
             meta: typing.Mapping[str, Any]) -> Any:
    """Convert ``value`` to ``tp``; on failure record a problem and return ``_MISSING``."""
    origin = get_origin(tp)
    fix = str(meta.get("help", ""))
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        non_null = [a for a in options if a is not type(None)]
        if len(non_null) == 1:
            return _convert(ctx, path, value, non_null[0], meta)
        raise TypeError(f"unsupported union {tp}")
    if origin is Literal:
        choices = get_args(tp)
        if value in choices and type(value) is type(next(c for c in choices if c == value)):
            return value
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        ctx.error(path, f"{value!r} is not allowed{extra}; use {_type_name(tp)}", fix)
        return _MISSING
    if origin is list:
        if not isinstance(value, list):
            ctx.error(path, f"expected {_type_name(tp)}, got {value!r}", fix)
            return _MISSING
        items = [_convert(ctx, f"{path}[{i}]", v, get_args(tp)[0], {})
                 for i, v in enumerate(value)]
        return _MISSING if any(i is _MISSING for i in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            ctx.error(path, f"expected {_type_name(tp)}, got {value!r}", fix)
            return _MISSING
        out = {}
        for key, item in value.items():
            converted = _convert(ctx, _join(path, str(key)), item, get_args(tp)[1], meta)
            if converted is not _MISSING:
                out[str(key)] = converted
        return out if len(out) == len(value) else _MISSING
    if dataclasses.is_dataclass(tp):
        built = build(ctx, path, value, typing.cast("type[Any]", tp))
        return _MISSING if built is None else built
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        ctx.error(path, f"expected {_type_name(tp)}, got {value!r}", fix)
        return _MISSING
    if tp is float:
        value = float(value)
    return value if _check_range(ctx, path, value, meta) else _MISSING


def build(ctx: Context, path: str, data: Any, cls: type[T], **extra: Any) -> T | None:
    """Build dataclass ``cls`` from mapping ``data``; ``extra`` fills fields not read from YAML.

    Unknown keys are errors with a did-you-mean; missing required keys name the field.
    Returns ``None`` when anything was wrong (the problems are in ``ctx``).
    """
    if not isinstance(data, dict):
        ctx.error(path, f"expected a mapping, got {data!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.name not in extra}
    ok = True
    for key in data:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            extra_words = f"did you mean {hint[0]!r}?" if hint else \
                "known keys: " + ", ".join(sorted(fields))
            ctx.error(_join(path, str(key)), f"unknown key {key!r}", extra_words)
            ok = False
    values: dict[str, Any] = dict(extra)
    for name, f in fields.items():
        child = _join(path, name)
        if name not in data:
            required = (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING)
            if required:
                ctx.error(child, f"required key {name!r} is missing",
                          str(f.metadata.get("help", f"add {name}: <{_type_name(hints[name])}>")))
                ok = False
            continue
        converted = _convert(ctx, child, data[name], hints[name], f.metadata)
        if converted is _MISSING:
            ok = False
        else:
            values[name] = converted
    return cls(**values) if ok else None


def spec(*, help: str = "", **bounds: Any) -> Any:
    """Field metadata: ``spec(ge=1, help="...")``; ``default`` / ``default_factory`` pass through."""
    default = bounds.pop("default", dataclasses.MISSING)
    factory = bounds.pop("default_factory", dataclasses.MISSING)
    meta = {"help": help, **bounds}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
