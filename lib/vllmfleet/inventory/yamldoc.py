"""Read YAML text into data, a map of field paths to lines, and the key mistakes PyYAML hides.

:func:`read_yaml` parses with PyYAML's safe constructor and, on top of ``yaml.safe_load``,
reports what it lets through silently: a key given twice (``safe_load`` keeps the last),
a key that is not a string (``8000:``, ``no:``, ``~:``), a scalar YAML cannot read
(``2024-13-45``), a tag such as ``!!python/object``. Text that is not usable YAML at all
(tabs, control characters, unclosed brackets, runaway nesting) raises
:class:`~vllmfleet.errors.InventoryError` with the line and a fix; never another exception.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from vllmfleet.errors import InventoryError, Problem

_TAG = "tag:yaml.org,2002:"
# How YAML 1.1 reads an unquoted scalar, in words, by resolved tag.
_READ_AS = {f"{_TAG}int": "a number", f"{_TAG}float": "a number", f"{_TAG}bool": "true/false",
            f"{_TAG}null": "null (nothing)", f"{_TAG}timestamp": "a date",
            f"{_TAG}binary": "binary data"}
_MAX_NODES = 50_000  # anchors can make a small file a huge tree; stop mapping lines there


def clip(text: str, limit: int = 60) -> str:
    """``text``, cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Lines:
    """Maps a field path such as ``hosts.wintermute.vllm.port`` to its line in the file,
    and keeps each scalar's text as written (``no``, ``8.9``) for messages."""

    def __init__(self) -> None:
        self._lines: dict[str, int] = {}
        self._raw: dict[str, str] = {}

    def record(self, path: str, line: int, *, weak: bool = False) -> None:
        if weak:
            self._lines.setdefault(path, line)
        else:
            self._lines[path] = line

    def record_raw(self, path: str, text: str, *, weak: bool = False) -> None:
        text = clip(text)
        if weak:
            self._raw.setdefault(path, text)
        else:
            self._raw[path] = text

    def of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest ancestor that is in the file."""
        if path in self._lines:
            return self._lines[path]
        # Try every shorter prefix (keys may hold dots: aliases.qwen2.5-7b.host).
        for cut in sorted((m.start() for m in re.finditer(r"[.\[]", path)), reverse=True):
            if path[:cut] in self._lines:
                return self._lines[path[:cut]]
        return self._lines.get("")

    def raw(self, path: str) -> str | None:
        """The scalar at ``path`` exactly as written, if it is in the file."""
        return self._raw.get(path)


@dataclasses.dataclass
class Document:
    """Parsed YAML: the data, where each path is, and key problems found while reading."""

    data: Any = dataclasses.field(repr=False)  # may be huge (anchors) or recursive
    lines: Lines
    problems: list[Problem]


class _Scan(SafeConstructor):
    """Maps paths to lines and reports duplicate and non-string keys (a loader mixin).

    ``yaml.safe_load`` keeps the last of two equal keys without a word and accepts
    ``8000:``, ``no:`` or ``~:`` as keys; the scan reports each, naming both lines.
    """

    def scan(self, root: yaml.Node, *, file: str) -> tuple[Lines, list[Problem]]:
        self.lines = Lines()
        self.found: list[Problem] = []
        self._file = file
        self._budget = _MAX_NODES
        self._checked: set[int] = set()
        self._walk(root, "", set(), weak=False)
        return self.lines, self.found

    def _problem(self, path: str, line: int, message: str, fix: str) -> None:
        self.found.append(Problem(severity="error", path=path, message=message, fix=fix,
                                  file=self._file, line=line))

    def _walk(self, node: yaml.Node, path: str, stack: set[int], *, weak: bool) -> None:
        if self._budget <= 0 or id(node) in stack:  # huge alias tree, or a recursive anchor
            return
        self._budget -= 1
        self.lines.record(path, node.start_mark.line + 1, weak=True)
        first_visit = id(node) not in self._checked
        self._checked.add(id(node))
        if first_visit and node.tag not in self.yaml_constructors \
                and node.tag != f"{_TAG}merge":
            self._problem(path, node.start_mark.line + 1, f"the YAML tag {node.tag!r} is not "
                          "allowed in an inventory", "remove the tag (the '!…' before the value)")
            return
        if isinstance(node, yaml.ScalarNode):
            self.lines.record_raw(path, node.value, weak=weak)
            if first_visit and node.tag != f"{_TAG}str":
                self._check_scalar(node, path)
            return
        stack.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self._walk_mapping(node, path, stack, weak=weak, check=first_visit)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]", stack, weak=weak)
        stack.discard(id(node))

    def _walk_mapping(self, node: yaml.MappingNode, path: str, stack: set[int], *,
                      weak: bool, check: bool) -> None:
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == f"{_TAG}merge":
                merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
                continue
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            child = f"{path}.{name}" if path else name
            if check:
                self._check_key(key, child, line, seen)
            self.lines.record(child, line, weak=weak)
            self._walk(value, child, stack, weak=weak)
        for source in merged:  # keys from `<<: *anchor`; keys written here win
            self._walk(source, path, stack, weak=True)

    def _check_key(self, key: yaml.Node, child: str, line: int, seen: dict[str, int]) -> None:
        if not isinstance(key, yaml.ScalarNode):
            self._problem(child, line, "a key must be a plain name, not a list or a mapping",
                          "write the key as a plain name, e.g. wintermute:")
        elif key.tag != f"{_TAG}str":
            kind = _READ_AS.get(key.tag, key.tag)
            self._problem(child, line, f"key {clip(key.value)!r} is read by YAML as {kind}, "
                          "not as a name", f"quote it: '{clip(key.value)}':")
        elif key.value in seen:
            self._problem(child, line, f"key {clip(key.value)!r} is given twice, on lines "
                          f"{seen[key.value]} and {line}; YAML would silently keep only the "
                          f"last one", "remove one of them (keep the value you mean)")
        else:
            seen[key.value] = line

    def _check_scalar(self, node: yaml.ScalarNode, path: str) -> None:
        try:
            self.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            kind = _READ_AS.get(node.tag, node.tag)
            self._problem(path, node.start_mark.line + 1,
                          f"{clip(node.value)!r} looks like {kind} to YAML but is not a valid "
                          f"one ({clip(str(exc), 120)})",
                          f"correct it, or quote it if it is text: '{clip(node.value)}'")


class _Loader(_Scan, yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader: slow, but its error messages are the clearest."""


_FAST = bool(getattr(yaml, "__with_libyaml__", False))
if _FAST:
    from yaml._yaml import CParser

    class _FastLoader(_Scan, Composer, CParser, Resolver):
        """libyaml's parser (about 6x faster) under PyYAML's Python composer and constructor.

        Not ``yaml.CSafeLoader``: its composer is C code that recurses without a limit and
        crashes the interpreter on deeply nested input (``"- " * 50000``); the Python
        composer raises RecursionError instead.
        """

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


def _yaml_problem(exc: BaseException, text: str, file: str) -> Problem:
    """Explain a PyYAML error in a user's words, with its line."""
    line: int | None = None
    if isinstance(exc, RecursionError):
        return Problem(severity="error", path="", file=file, line=None,
                       message="not valid YAML: the data is nested too deeply to read",
                       fix="an inventory is a few levels deep; look for runaway [ or {")
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        return Problem(severity="error", path="", file=file, line=line,
                       message=f"not valid YAML: the text contains the control character "
                               f"#x{exc.character:04x}" if isinstance(exc.character, int)
                       else f"not valid YAML: {exc.reason}",
                       fix="is this the inventory? it must be UTF-8 text; remove the "
                           "stray character")
    reason = str(exc)
    mark = None
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or reason
        if exc.context and exc.context_mark and exc.problem:
            reason = f"{exc.problem} ({exc.context} on line {exc.context_mark.line + 1})"
    if mark is not None:
        line = mark.line + 1
    fixes = {"\\t": "indent with spaces, not tabs",
             "undefined alias": "define the anchor (&name) before using it as *name",
             "mapping values are not allowed": "quote a value that contains ': ', or fix the "
                                               "indentation of this key",
             "single document": "keep one YAML document in the file (remove the extra ---)",
             "unhashable key": "write the key as a plain name",
             "for merging": "a merge key takes an anchored mapping: <<: *name (or [*a, *b])"}
    fix = next((f for k, f in fixes.items() if k in reason),
               "check indentation and quoting near that line")
    return Problem(severity="error", path="", file=file, line=line,
                   message=f"not valid YAML: {clip(reason, 200)}", fix=fix)


def read_yaml(text: str, *, file: str) -> Document:
    """Parse ``text``; raise :class:`InventoryError` if it is not usable YAML."""
    try:
        if _FAST:
            try:
                return _read(_FastLoader, text, file)
            except InventoryError:
                pass  # read it again for PyYAML's own words: they name the tab, the alias ...
        return _read(_Loader, text, file)
    except RecursionError as exc:  # from either composer; no point in reading it twice
        raise InventoryError([_yaml_problem(exc, text, file)]) from None


def _read(kind: type[_Loader] | type[_FastLoader], text: str, file: str) -> Document:
    loader: _Loader | _FastLoader | None = None
    try:
        loader = kind(text)
        root = loader.get_single_node()
        if root is None:
            return Document(data=None, lines=Lines(), problems=[])
        lines, problems = loader.scan(root, file=file)
        try:
            data = loader.construct_document(root)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError, RecursionError) as exc:
            raise InventoryError(problems or [_yaml_problem(exc, text, file)]) from None
        return Document(data=data, lines=lines, problems=problems)
    except yaml.YAMLError as exc:
        raise InventoryError([_yaml_problem(exc, text, file)]) from None
    finally:
        if loader is not None:
            loader.dispose()
