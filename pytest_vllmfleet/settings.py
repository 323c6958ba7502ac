"""The plugin's options: command line, environment, ini file, default — in that order.

Every option has three spellings: ``--fleet-config PATH``, ``VLLMFLEET_FLEET_CONFIG=PATH``
and ``vllmfleet_fleet_config = PATH`` in the ini file (``[tool.pytest.ini_options]``).
The first one present wins. A bad value raises :class:`pytest.UsageError` that names where
it came from, so a stale environment variable is not mistaken for a typo on the command
line. Relative paths are resolved against the directory pytest was started in (command
line, environment) or the ini file's directory (ini).
"""

from __future__ import annotations

import difflib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from vllmfleet.localfleet import SPEED_RANGE

Mode = Literal["local", "inventory"]
Target = Literal["direct", "proxy"]
EngineName = Literal["emulator", "vllm"]
ENGINE_NAMES: tuple[EngineName, ...] = ("emulator", "vllm")
MODES: tuple[Mode, ...] = ("local", "inventory")
TARGETS: tuple[Target, ...] = ("direct", "proxy")
DEFAULT_INVENTORY = Path("configs") / "fleet.yaml"
DEFAULT_ARTIFACTS = Path("artifacts")
DEFAULT_SPEED = 20.0


@dataclass(frozen=True, kw_only=True)
class Option:
    """One option in its three spellings."""

    flag: str
    help: str
    metavar: str
    repeat: bool = False

    @property
    def dest(self) -> str:
        return "vllmfleet_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return self.dest

    @property
    def env(self) -> str:
        return self.dest.upper()


HOST = Option(flag="--host", metavar="NAME", repeat=True,
              help="run the fleet suites against this vLLM host of the inventory (repeat or "
                   "comma-separate for several; default: every vLLM host)")
FLEET = Option(flag="--fleet", metavar="local|inventory",
               help="local (default): start a local fleet from the inventory once per session "
                    "and stop it at the end; inventory: test the real hosts at their addresses")
FLEET_CONFIG = Option(flag="--fleet-config", metavar="PATH",
                      help="the inventory (default: configs/fleet.yaml under the rootdir); "
                           "write --fleet-config=PATH for a path outside the project")
TARGET = Option(flag="--target", metavar="direct|proxy|both",
                help="talk to the vLLM servers directly, through the LiteLLM proxy, or both "
                     "(default: both)")
ARTIFACTS = Option(flag="--artifacts-dir", metavar="DIR",
                   help="where the CSV/JSON reports go (default: artifacts under the rootdir); "
                        "write --artifacts-dir=DIR for a folder outside the project")
SPEED = Option(flag="--fleet-speed", metavar="X",
               help="local fleet only: divide the emulated prefill/decode times by X "
                    f"(1 = a real GPU's pace; default {DEFAULT_SPEED:g})")
ENGINE = Option(flag="--engine", metavar="emulator|vllm",
                help="local fleet only: the engine per vLLM host: emulator (default) or vllm "
                     "(the real vLLM, CPU build; `./dev vllm-setup` installs it)")
OPTIONS: tuple[Option, ...] = (HOST, FLEET, FLEET_CONFIG, TARGET, ARTIFACTS, SPEED, ENGINE)


@dataclass(frozen=True, kw_only=True)
class Value:
    """A raw option value and where it came from, for messages."""

    text: str
    source: str  # "command line", "environment" or the ini file
    spelled: str  # how the user wrote it: "--target=x", "VLLMFLEET_TARGET=x", "vllmfleet_target"
    base: Path  # the directory a relative path is relative to

    def where(self) -> str:
        return f"{self.spelled} ({self.source})"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The resolved options of one pytest session."""

    mode: Mode
    inventory: Path
    inventory_explicit: bool
    inventory_where: str
    hosts: tuple[str, ...] | None  # None: every vLLM host
    hosts_where: str
    targets: tuple[Target, ...]
    artifacts_dir: Path
    speed: float
    engine: EngineName
    explicit: tuple[str, ...]  # the options the user set (any spelling)


def add_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    """Register each option on the command line (in ``group``) and as an ini key."""
    for opt in OPTIONS:
        extra = f" [env {opt.env}, ini {opt.ini}]"
        if opt.repeat:
            group.addoption(opt.flag, action="append", dest=opt.dest, default=None,
                            metavar=opt.metavar, help=opt.help + extra)
            parser.addini(opt.ini, opt.help, type="args", default=[])
        else:
            group.addoption(opt.flag, dest=opt.dest, default=None, metavar=opt.metavar,
                            help=opt.help + extra)
            parser.addini(opt.ini, opt.help, type="string", default="")


def _raw(config: pytest.Config, opt: Option) -> Value | None:
    """The first spelling of ``opt`` that is set: command line, environment, ini."""
    here = Path(config.invocation_params.dir)
    cli = config.getoption(opt.dest)
    if cli:
        text = ",".join(cli) if isinstance(cli, list) else str(cli)
        return Value(text=text, source="command line", spelled=f"{opt.flag}={text}", base=here)
    env = os.environ.get(opt.env, "").strip()
    if env:
        return Value(text=env, source="environment", spelled=f"{opt.env}={env}", base=here)
    ini = config.getini(opt.ini)
    text = " ".join(ini) if isinstance(ini, list) else str(ini or "").strip()
    if text:
        inifile = config.inipath
        return Value(text=text, source=str(inifile) if inifile else "ini",
                     spelled=f"{opt.ini} = {text}",
                     base=inifile.parent if inifile else config.rootpath)
    return None


def _choice(value: Value | None, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    text = value.text.strip().lower()
    if text not in choices:
        hint = difflib.get_close_matches(text, choices, n=1)
        raise pytest.UsageError(
            f"vllmfleet: {value.where()}: {value.text!r} is not one of "
            f"{', '.join(choices)}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return text


def _path(value: Value) -> Path:
    path = Path(os.path.expanduser(value.text.strip()))
    return path if path.is_absolute() else value.base / path


def _speed(value: Value | None) -> float:
    if value is None:
        return DEFAULT_SPEED
    try:
        speed = float(value.text)
    except ValueError:
        speed = float("nan")
    low, high = SPEED_RANGE
    if not low <= speed <= high:  # nan too; 1e-320 would make every emulated delay infinite
        raise pytest.UsageError(f"vllmfleet: {value.where()}: give a positive number from "
                                f"{low:g} to {high:g}, e.g. {DEFAULT_SPEED:g} (emulated delays "
                                f"{DEFAULT_SPEED:g} times shorter) or 1 (real time)")
    return speed


def split_names(text: str) -> list[str]:
    """Host names from ``a,b``, ``a b`` or repeated flags (already comma-joined)."""
    return [n for n in text.replace(",", " ").split() if n]


def check_rootdir(config: pytest.Config) -> None:
    """Refuse a rootdir that pytest took from the value of ``--fleet-config PATH``.

    pytest chooses the rootdir (and so the ini file, testpaths and addopts) before plugins
    load, so it reads the separate value of a plugin's option as a test path. When that
    moved the rootdir away from where pytest was started, say so and how to write it.
    """
    here = Path(config.invocation_params.dir)
    root = config.rootpath
    if root == here:
        return
    args = [str(a) for a in config.invocation_params.args]
    for opt in (FLEET_CONFIG, ARTIFACTS):
        for flag, value in itertools.pairwise(args):
            if flag != opt.flag:
                continue
            path = (here / os.path.expanduser(value)).resolve()
            under = root == path or root in path.parents
            elsewhere = root not in here.parents  # a project that is not around the cwd
            widened = config.inipath is None and not path.is_relative_to(here)
            if under and (elsewhere or widened):
                raise pytest.UsageError(
                    f"vllmfleet: pytest took {value} (the value of {opt.flag}) for a test path "
                    f"and chose {root} as the rootdir, because it reads the command line "
                    f"before plugins load; write {opt.flag}={value}")


def resolve(config: pytest.Config) -> Settings:
    """Resolve every option (without loading the inventory); bad values are usage errors."""
    check_rootdir(config)
    raw = {opt.flag: _raw(config, opt) for opt in OPTIONS}
    mode: Mode = "inventory" if _choice(raw[FLEET.flag], MODES, "local") == "inventory" \
        else "local"
    target = _choice(raw[TARGET.flag], ("direct", "proxy", "both"), "both")
    targets: tuple[Target, ...] = TARGETS if target == "both" else (
        ("direct",) if target == "direct" else ("proxy",))
    inv = raw[FLEET_CONFIG.flag]
    inventory = _path(inv) if inv else config.rootpath / DEFAULT_INVENTORY
    art = raw[ARTIFACTS.flag]
    artifacts = _path(art) if art else config.rootpath / DEFAULT_ARTIFACTS
    if art and artifacts.exists() and not artifacts.is_dir():
        raise pytest.UsageError(f"vllmfleet: {art.where()}: {artifacts} exists and is not a "
                                "directory; name a directory for the reports")
    engine: EngineName = "vllm" if _choice(raw[ENGINE.flag], ENGINE_NAMES, "emulator") == \
        "vllm" else "emulator"
    if engine == "vllm" and mode != "local":
        value = raw[ENGINE.flag]
        assert value is not None
        raise pytest.UsageError(f"vllmfleet: {value.where()}: the engine is chosen for the "
                                "local fleet only; use it with --fleet local, or drop it")
    hosts_value = raw[HOST.flag]
    hosts = tuple(dict.fromkeys(split_names(hosts_value.text))) if hosts_value else None
    return Settings(
        mode=mode,
        inventory=inventory, inventory_explicit=inv is not None,
        inventory_where=inv.where() if inv else f"default ({DEFAULT_INVENTORY})",
        hosts=hosts or None, hosts_where=hosts_value.where() if hosts_value else "",
        targets=targets, artifacts_dir=artifacts, speed=_speed(raw[SPEED.flag]), engine=engine,
        explicit=tuple(flag for flag, value in raw.items() if value is not None))


def check_hosts(settings: Settings, vllm_hosts: list[str], inventory: Path) -> tuple[str, ...]:
    """The selected hosts, checked against the inventory's vLLM hosts (in inventory order)."""
    if settings.hosts is None:
        return tuple(vllm_hosts)
    for name in settings.hosts:
        if name not in vllm_hosts:
            hint = difflib.get_close_matches(name, vllm_hosts, n=1)
            raise pytest.UsageError(
                f"vllmfleet: {settings.hosts_where}: {name!r} is not a vLLM host of "
                f"{inventory} (vLLM hosts: {', '.join(vllm_hosts) or 'none'})"
                + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return tuple(settings.hosts)
