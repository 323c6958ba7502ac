"""The files and folders around the tasks: invoke's config files, checked before invoke loads
them, and the folders a task creates — each failure an ``invoke.Exit`` (code 2) that names the
file, or the setting and where its value came from, instead of a traceback.

invoke 2.2 stops with a bare traceback on a config file that is not YAML, not a mapping, holds a
mapping where a setting's default is text (``AmbiguousMergeError``), or when an
``INVOKE_VLLMFLEET_<KEY>`` value cannot be cast to the type a file gave that key
(``Environment._cast``: ``int("abc")``). ``tasks.py`` calls :func:`check_config_files` when it
is imported, before invoke loads them.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import yaml
from invoke.exceptions import Exit

from vllmfleet.tasks.settings import SECTION, Settings, Source, kind_of

__all__ = ["check_config_files", "make_folder"]


def make_folder(path: Path, *, named: str) -> Path:
    """Create the folder ``path`` (and its parents) and return it; when that cannot be, exit 2
    saying why, naming the path and where it came from (``named``: ``--out /x`` or
    :func:`vllmfleet.tasks.settings.where`'s text)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = (f"it is {kind_of(path)}, not a folder" if path.exists() and not path.is_dir()
               else f"cannot create it: {exc.strerror or exc}")
        raise Exit(f"error: {path} ({named}): {why}; choose a folder you can write", code=2) \
            from None
    return path


#: the config files invoke reads, lowest first, as invoke names them (``Config.prefix``
#: "invoke", extensions tried in this order; invoke 2.2 ``Config._load_file``)
_CONFIG_EXTENSIONS = ("yaml", "yml", "json", "py")


def check_config_files(root: Path, *, runtime_path: Path | None = None) -> None:
    """Exit 2 naming the file when one of the config files invoke would load for the project
    at ``root`` (/etc/invoke.*, ~/.invoke.*, ``root``/invoke.*, the ``-f`` file) is broken:
    not a regular file, not YAML/JSON, not a mapping, or its ``vllmfleet`` not a mapping.
    invoke's own loader would stop with a traceback on each of them."""
    stems = [Path("/etc/invoke"), Path("~/.invoke").expanduser(), root / "invoke"]
    found = []
    for stem in stems:
        for ext in _CONFIG_EXTENSIONS:
            path = stem.with_name(f"{stem.name}.{ext}")
            if path.exists():  # invoke takes the first that exists, whatever it is
                found.append(path)
                break
    if runtime_path is not None:
        found.append(runtime_path)
    for path in found:
        _check_config_file(path)


def _check_config_file(path: Path) -> None:
    fix = "fix or remove it"
    if path.suffix == ".py":
        return
    if not path.is_file():
        raise Exit(f"error: config file {path} is {kind_of(path)}, not a file: {fix}", code=2)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise Exit(f"error: config file {path} is not valid YAML ({at}{exc.problem or exc}): "
                   f"{fix}", code=2) from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise Exit(f"error: config file {path} cannot be read: {detail}: {fix}", code=2) \
            from None
    if data is not None and not isinstance(data, dict):
        raise Exit(f"error: config file {path} holds {type(data).__name__}, not a mapping of "
                   f"settings: write e.g. `{SECTION}: {{log_lines: 40}}`", code=2)
    section = (data or {}).get(SECTION)
    if section is not None and not isinstance(section, dict):
        raise Exit(f"error: {SECTION}={section!r} (from {path}) is not a mapping of settings: "
                   f"write e.g. `{SECTION}: {{log_lines: 40}}` in that file", code=2)
    specs = {f.name: f.metadata["spec"] for f in fields(Settings)}
    for key, value in (section or {}).items():
        spec = specs.get(str(key))
        if spec is None:
            continue  # Settings.from_config names the unknown key
        # invoke cannot merge a mapping over a default, nor cast INVOKE_VLLMFLEET_<KEY> into
        # a list or into the int/float a file gave (invoke 2.2 env.py Environment._cast)
        env = f"INVOKE_{SECTION}_{key}".upper()
        if isinstance(value, dict | list):
            raise Exit(f"error: {SECTION}.{key}={value!r} (from {path}) is not {spec.want}: "
                       f"{Source('file', str(path)).fix(str(key), spec.example)}", code=2)
        if env in os.environ and not _castable(value, os.environ[env]):
            raise Exit(f"error: {env}={os.environ[env]!r} is not {spec.want} (invoke reads it "
                       f"as the {type(value).__name__} that {path} gives {SECTION}.{key}): "
                       f"set e.g. {env}={spec.example}, or unset it", code=2)


def _castable(old: object, new: str) -> bool:
    """Whether invoke can cast environment text ``new`` to the type of ``old``."""
    if isinstance(old, bool | str) or old is None:
        return True
    if isinstance(old, int | float):
        try:
            type(old)(new)
        except ValueError:
            return False
        return True
    return False
