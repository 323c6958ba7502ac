"""The ``vllmfleet`` settings of the tasks: one frozen, validated :class:`Settings`.

Where a value comes from is invoke's business, in invoke's order (lowest first): the defaults
here (``tasks.py`` hands :func:`config_defaults` to ``ns.configure``), ``/etc/invoke.yaml``,
``~/.invoke.yaml``, the project's ``invoke.yaml`` beside ``tasks.py``, ``INVOKE_VLLMFLEET_<KEY>``,
the file of ``inv -f FILE``; a task argument (``--inventory``) beats them all. What a value
must be is this module's business: every setting is checked once, here, and a bad one is an
``invoke.Exit`` (code 2) naming the setting, where it came from, the value and the fix.

The defaults reach invoke as text (or None): invoke casts an ``INVOKE_VLLMFLEET_*`` value to
the type of the value it overrides, and ``int("ten")`` would be a bare traceback; as text it
reaches :class:`Settings`, which parses it.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, InitVar, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from invoke.config import Config, DataProxy
from invoke.context import Context
from invoke.exceptions import Exit

from vllmfleet.remote import MAX_LOG_LINES

__all__ = [
    "DEFAULTS",
    "LOG_LINES_MAX",
    "Settings",
    "Source",
    "Sudo",
    "cli_runtime_path",
    "config_defaults",
    "inventory_of",
    "kind_of",
    "project_config",
    "settings",
    "where",
]

Sudo = Literal["proxy", "all", "none"]
#: The most log lines a failure report or ``logs.<host> --lines`` shows: the host adapters'
#: own bound, which ``deploy.apply.Options`` guards too.
LOG_LINES_MAX = MAX_LOG_LINES
LOCK_STALE_MAX_S = 10 * 365 * 86400.0
SECTION = "vllmfleet"


class _Bad(ValueError):
    """A value a setting cannot take (the caller adds name, source and fix); ``why`` says
    what is wrong with it when "is not <what it must be>" alone would not."""

    def __init__(self, value: object, why: str = "") -> None:
        super().__init__(value)
        self.why = why


def _path(value: object) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise _Bad(value)
    return Path(value).expanduser()


def _optional_path(value: object) -> Path | None:
    return None if value is None or value == "" else _path(value)


def _folder(value: object) -> Path:
    """A folder path: a path that is not an existing file, device or FIFO (a folder the task
    creates later may not exist yet)."""
    path = _path(value)
    if path.exists() and not path.is_dir():
        raise _Bad(value, f"it is {kind_of(path)}, not a folder")
    return path


def _optional_folder(value: object) -> Path | None:
    return None if value is None or value == "" else _folder(value)


def kind_of(path: Path) -> str:
    """What ``path`` is, in words, for an error ("a file", "a device" …)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "unreadable"
    return ("a folder" if stat.S_ISDIR(mode) else "a file" if stat.S_ISREG(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device")


def _whole(low: int, high: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _Bad(value)  # 2.5 or 2.0 from YAML: not a count
        try:
            number = int(value)
        except ValueError:
            raise _Bad(value) from None
        if number < low or (high is not None and number > high):
            raise _Bad(value)
        return number

    return parse


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(value)
    try:
        number = float(value)
    except ValueError:
        raise _Bad(value) from None
    if not 1 <= number <= LOCK_STALE_MAX_S or math.isnan(number):
        raise _Bad(value)
    return number


_SUDO_WORDS: dict[str, Sudo] = {"proxy": "proxy", "all": "all", "none": "none",
                                "true": "all", "yes": "all", "false": "none", "no": "none"}


def _sudo(value: object) -> Sudo:
    word = str(value).strip().lower() if isinstance(value, (str, bool)) else None
    if word is None or word not in _SUDO_WORDS:
        raise _Bad(value)
    return _SUDO_WORDS[word]


@dataclass(frozen=True)
class _Spec:
    parse: Callable[[object], Any]
    want: str     # what the value must be, after "is not"
    example: str  # a good value, for the fix
    anchored: bool = False  # a path whose default is relative to the project (tasks.py's folder)


def _spec(parse: Callable[[object], Any], want: str, example: str, *,
          anchored: bool = False) -> dict[str, _Spec]:
    return {"spec": _Spec(parse, want, example, anchored)}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every ``vllmfleet.*`` setting, parsed and checked (see the module doc for the order).

    Build it with :func:`settings` (from a task's context) or :meth:`from_config`; building it
    directly checks the values the same way (``Settings(log_lines=0)`` is an ``Exit``).
    """

    #: the inventory (a task's ``--inventory`` beats it)
    inventory: Path = field(default=Path("configs/fleet.yaml"), metadata=_spec(
        _path, "a file path", "configs/fleet.yaml", anchored=True))
    #: rendered files, the local fleet's state and logs
    build_dir: Path = field(default=Path("build"), metadata=_spec(
        _folder, "a folder path", "build", anchored=True))
    #: where ``inv render`` writes (None: ``<build_dir>/rendered``; ``--out`` beats it)
    render_dir: Path | None = field(default=None, metadata=_spec(
        _optional_folder, "a folder path", "build/rendered"))
    #: the local backup store
    backups_dir: Path = field(default=Path("backups"), metadata=_spec(
        _folder, "a folder path", "backups", anchored=True))
    #: backups kept per host (older ones are pruned)
    backups_keep: int = field(default=10, metadata=_spec(
        _whole(1), "a whole number of backups per host, 1 or more", "10"))
    #: host keys are checked against this file (None: ~/.ssh/known_hosts)
    known_hosts: Path | None = field(default=None, metadata=_spec(
        _optional_path, "a file path", "~/.ssh/known_hosts"))
    #: ``sudo -n`` for file writes: on the proxy host only, on all hosts, on none
    sudo: Sudo = field(default="proxy", metadata=_spec(
        _sudo, "one of proxy (sudo -n on the proxy host only), all or none", "proxy"))
    #: a deploy lock older than this many seconds is reported as stale
    lock_stale_s: float = field(default=3600.0, metadata=_spec(
        _seconds, f"a number of seconds from 1 to {LOCK_STALE_MAX_S:.0f} (ten years)", "3600"))
    #: log lines in a failure report
    log_lines: int = field(default=40, metadata=_spec(
        _whole(1, LOG_LINES_MAX), f"a whole number of lines from 1 to {LOG_LINES_MAX}", "40"))
    #: where each value came from (setting → "INVOKE_VLLMFLEET_X", a file path …), for errors
    sources: InitVar[Mapping[str, Source | None] | None] = None

    def __post_init__(self, sources: Mapping[str, Source | None] | None) -> None:
        for f in fields(self):
            value = _parse(f.name, getattr(self, f.name), (sources or {}).get(f.name))
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        """The settings in ``config[SECTION]``; unset (or null) ones keep their defaults."""
        section = config.get(SECTION) or {}
        if not hasattr(section, "keys"):
            raise Exit(f"error: {SECTION}={_plain(section)!r}{_from(_source(config, None))} "
                       f"is not a mapping of settings: write e.g. `{SECTION}: {{log_lines: 40}}`"
                       " in invoke.yaml", code=2)
        names = [f.name for f in fields(cls)]
        for key in section:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise Exit(f"error: {SECTION}.{key}{_from(_source(config, str(key)))} is not a "
                           f"setting: {hint}the settings are {', '.join(names)}", code=2)
        given = {name: _plain(section.get(name)) for name in names
                 if section.get(name) is not None}
        return cls(**given, sources={name: _source(config, name) for name in given})


def inventory_of(config: Config) -> Path:
    """Just the ``inventory`` setting of ``config`` (checked like :class:`Settings` checks it):
    for the per-host task names at import, which a bad other setting must not hide."""
    section = config.get(SECTION)
    raw = _plain(section.get("inventory")) if hasattr(section, "get") else None
    if raw is None:
        return Settings().inventory
    path: Path = _parse("inventory", raw, _source(config, "inventory"))
    return path


#: Each setting's default as invoke's config holds it: text, or None (see the module doc).
DEFAULTS: Mapping[str, str | None] = {
    f.name: None if f.default is None or f.default is MISSING else str(f.default)
    for f in fields(Settings)
}


def config_defaults(root: Path) -> dict[str, str | None]:
    """:data:`DEFAULTS` with the project's paths anchored at ``root`` (``tasks.py``'s folder),
    so that ``inv`` works from any folder of the checkout; for ``ns.configure``."""
    anchored = {f.name for f in fields(Settings) if f.metadata["spec"].anchored}
    return {name: str(root / value) if name in anchored and value is not None else value
            for name, value in DEFAULTS.items()}


def settings(c: Context) -> Settings:
    """The task's settings (``c.config.vllmfleet``), checked; a bad one exits 2."""
    return Settings.from_config(c.config)


def where(c: Context, name: str) -> str:
    """``vllmfleet.<name>=<value> (from <source>)``: setting ``name`` as an error names it."""
    section = c.config.get(SECTION)
    value = _plain(section.get(name)) if hasattr(section, "get") else None
    return f"{SECTION}.{name}={value!r}{_from(_source(c.config, name))}"


def project_config(root: Path, *, runtime_path: Path | None = None) -> Config:
    """The config a task of the project at ``root`` gets, loaded the way ``inv`` loads it:
    system and user files, ``root``/invoke.yaml, the environment, the ``-f`` file.
    (``tasks.py`` has checked the files first: :func:`vllmfleet.tasks.files.check_config_files`.)
    """
    config = Config(project_location=root, runtime_path=runtime_path)
    config.load_project(merge=False)
    config.load_runtime(merge=False)
    config.load_collection({SECTION: config_defaults(root)}, merge=False)
    config.load_shell_env()  # merges; must come last: it only knows keys already loaded
    return config


def cli_runtime_path() -> Path | None:
    """The file of ``inv -f FILE`` (or INVOKE_RUNTIME_CONFIG) while ``inv`` loads tasks.py.

    invoke parses its own flags before it imports tasks.py and loads that file only after, so
    code that runs at import (the per-host task names) asks invoke's program for it.
    """
    program = getattr(sys.modules.get("invoke.main"), "program", None)
    if getattr(program, "core", None) is not None:
        path = program.args.config.value  # type: ignore[union-attr]
        if path:
            return Path(path)
    path = os.environ.get("INVOKE_RUNTIME_CONFIG")
    return Path(path) if path else None


# --- where a value came from, and the error ---------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: an environment variable, a config file (``runtime``:
    the file of ``inv -f``, which beats the environment), or the defaults."""

    kind: Literal["env", "file", "runtime", "default"]
    text: str  # "INVOKE_VLLMFLEET_LOG_LINES", "/srv/x/invoke.yaml", "-f /tmp/x.yaml", ...

    def fix(self, name: str, example: str) -> str:
        env = f"INVOKE_{SECTION.upper()}_{name.upper()}={example}"
        yaml = f"`{SECTION}: {{{name}: {example}}}`"
        if self.kind == "env":
            return f"set e.g. {env}, or unset it"
        if self.kind == "runtime":
            return f"write e.g. {yaml} in that file"
        return f"write e.g. {yaml} in {'that file' if self.kind == 'file' else 'invoke.yaml'}" \
               f" or set {env}"


#: invoke's config layers, highest first: (attribute of the loaded data, of its file path)
_LAYERS = (("_modifications", None), ("_overrides", None), ("_runtime", "_runtime_path"),
           ("_env", None), ("_project", "_project_path"), ("_user", "_user_path"),
           ("_system", "_system_path"), ("_collection", None), ("_defaults", None))


def _source(config: Config, key: str | None) -> Source | None:
    """Which of invoke's layers set ``vllmfleet.<key>`` (``key`` None: the section itself);
    None when unknowable (invoke's layers are private: an unexpected shape tells nothing)."""
    for layer, path_attr in _LAYERS:
        data = getattr(config, layer, None)
        section = data.get(SECTION) if isinstance(data, dict) else None
        if section is None or (key is not None and not (isinstance(section, dict)
                                                         and key in section)):
            continue
        if layer == "_env":
            prefix = getattr(config, "_env_prefix", None) or "INVOKE_"
            return Source("env", f"{prefix}{SECTION}_{key}".upper())
        if path_attr is not None:
            path = getattr(config, path_attr, None)
            return (Source("runtime", f"-f {path}") if layer == "_runtime"
                    else Source("file", str(path)))
        return Source("default", "the defaults of tasks.py" if layer == "_collection"
                      else "code that set it")
    return None


def _from(source: Source | None) -> str:
    return f" (from {source.text})" if source else ""


def _plain(value: Any) -> Any:
    """invoke's DataProxy as the plain dict it holds (for messages and parsing)."""
    if isinstance(value, DataProxy):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _parse(name: str, value: object, source: Source | None) -> Any:
    """The one check of setting ``name``; a bad value exits 2 naming setting, source, value and
    the fix."""
    spec: _Spec = next(f.metadata["spec"] for f in fields(Settings) if f.name == name)
    try:
        return spec.parse(value)
    except _Bad as exc:
        fix = (source or Source("default", "")).fix(name, spec.example)
        why = f" ({exc.why})" if exc.why else ""
        raise Exit(f"error: {SECTION}.{name}={value!r}{_from(source)} is not {spec.want}{why}"
                   f": {fix}", code=2) from None
