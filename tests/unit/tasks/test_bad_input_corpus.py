"""The bad-input corpus: what a new user or a careless operator types, as ``inv`` runs it.

Every case ends in a clear error — exit code 1 or 2, the value or where it came from named,
no traceback — or in what a user expects; none hangs (each run has a timeout) and none is
silently accepted (exit 0). Cases run in a throw-away copy of the project (``tasks.py`` and
``configs/``), so an ``invoke.yaml`` beside ``tasks.py`` is the project's own and the real
checkout is never touched. Issue 12 listed the first of them; add one for every new setting,
task argument or file the tasks read.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REFERENCE, ROOT
from vllmfleet.tasks.settings import DEFAULTS

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """``inv *args`` in a fresh project; ``setup`` prepares it (gets the project folder)."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]             # each must be in the output (stdout + stderr)
    code: int | tuple[int, ...] = (1, 2)
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "tasks.py", root / "tasks.py")
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "README.md").write_text("a file, not a folder\n", encoding="utf-8")
    return root


def _inv(root: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    clean["INVOKE_VLLMFLEET_BACKUPS_DIR"] = str(root / "backups")  # never the checkout's store
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=root,
                          env={**clean, "HOME": str(home), **(env or {})})


def _yaml(text: str) -> Setup:
    def setup(root: Path) -> None:
        (root / "invoke.yaml").write_text(text, encoding="utf-8")
    return setup


def _invoke_yaml_folder(root: Path) -> None:
    (root / "invoke.yaml").mkdir()


def _fifo(root: Path) -> None:
    os.mkfifo(root / "fifo.yaml")


def _huge(root: Path) -> None:
    with open(root / "huge.yaml", "wb") as out:
        out.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NULs, no disk used


def _unreadable(root: Path) -> None:
    path = root / "secret.yaml"
    path.write_text(REFERENCE.read_text(encoding="utf-8"), encoding="utf-8")
    path.chmod(0)


def _edited(old: str, new: str, name: str = "edited.yaml") -> Setup:
    def setup(root: Path) -> None:
        text = REFERENCE.read_text(encoding="utf-8")
        assert old in text, old
        (root / name).write_text(text.replace(old, new), encoding="utf-8")
    return setup


def _file_where_a_host_folder_goes(root: Path) -> None:
    (root / "out").mkdir()
    (root / "out" / "wintermute").write_text("not a folder\n", encoding="utf-8")


def _no_templates(root: Path) -> None:
    shutil.rmtree(root / "configs" / "templates")


CASES = [
    # --- where rendered files go ----------------------------------------------------------------
    Case("render-out-device", ("render", "--out", "/dev/null"), ("/dev/null", "--out")),
    Case("render-out-file", ("render", "--out", "README.md"), ("README.md", "not a folder")),
    Case("render-out-proc", ("render", "--out", "/proc/x"), ("/proc/x", "--out")),
    Case("render-dir-env-proc", ("render",), ("/proc/x", "INVOKE_VLLMFLEET_RENDER_DIR"),
         env={"INVOKE_VLLMFLEET_RENDER_DIR": "/proc/x"}),
    Case("build-dir-proc-up", ("fleet.up",), ("/proc/x", "INVOKE_VLLMFLEET_BUILD_DIR"),
         env={"INVOKE_VLLMFLEET_BUILD_DIR": "/proc/x"}),
    Case("build-dir-file-status", ("fleet.status",), ("README.md", "INVOKE_VLLMFLEET_BUILD_DIR"),
         env={"INVOKE_VLLMFLEET_BUILD_DIR": "README.md"}),
    Case("build-dir-file-down", ("fleet.down",), ("README.md", "INVOKE_VLLMFLEET_BUILD_DIR"),
         env={"INVOKE_VLLMFLEET_BUILD_DIR": "README.md"}),
    Case("backups-dir-file-list", ("backups.list",), ("/etc/passwd", "not a folder"),
         env={"INVOKE_VLLMFLEET_BACKUPS_DIR": "/etc/passwd"}),
    Case("backups-dir-file-verify", ("backups.verify",), ("/etc/passwd", "not a folder"),
         env={"INVOKE_VLLMFLEET_BACKUPS_DIR": "/etc/passwd"}),
    Case("render-out-host-is-a-file", ("render", "--out", "out"),
         ("cannot write the rendered files", "out/wintermute"),
         setup=_file_where_a_host_folder_goes),
    Case("templates-missing", ("render", "--out", "out"),
         ("template folder", "configs/templates"), setup=_no_templates),
    # --- invoke.yaml: wrong types and broken files ----------------------------------------------
    Case("yaml-inventory-int", ("validate",), ("vllmfleet.inventory=123", "invoke.yaml"),
         setup=_yaml("vllmfleet: {inventory: 123}\n")),
    Case("yaml-build-dir-list", ("fleet.status",), ("vllmfleet.build_dir", "invoke.yaml"),
         setup=_yaml("vllmfleet: {build_dir: [a, b]}\n")),
    Case("yaml-backups-dir-list", ("backups.list",), ("vllmfleet.backups_dir", "invoke.yaml"),
         setup=_yaml("vllmfleet: {backups_dir: [a, b]}\n")),
    Case("yaml-render-dir-map", ("render",), ("vllmfleet.render_dir", "invoke.yaml"),
         setup=_yaml("vllmfleet: {render_dir: {a: 1}}\n")),
    Case("yaml-log-lines-list", ("validate",), ("vllmfleet.log_lines", "invoke.yaml"),
         setup=_yaml("vllmfleet: {log_lines: [1]}\n")),
    Case("yaml-malformed", ("validate",), ("invoke.yaml",),
         setup=_yaml("vllmfleet: {inventory: [\n")),
    Case("yaml-a-list", ("validate",), ("invoke.yaml",), setup=_yaml("- a\n- b\n")),
    Case("yaml-section-text", ("validate",), ("vllmfleet", "not a mapping"),
         setup=_yaml("vllmfleet: text\n")),
    Case("yaml-a-folder", ("validate",), ("invoke.yaml",), setup=_invoke_yaml_folder),
    Case("env-cannot-override-yaml-int", ("validate",),
         ("INVOKE_VLLMFLEET_LOG_LINES='abc'", "invoke.yaml", "unset it"),
         env={"INVOKE_VLLMFLEET_LOG_LINES": "abc"}, setup=_yaml("vllmfleet: {log_lines: 5}\n")),
    Case("env-cannot-override-yaml-float", ("validate",),
         ("INVOKE_VLLMFLEET_LOCK_STALE_S='1h'", "invoke.yaml"),
         env={"INVOKE_VLLMFLEET_LOCK_STALE_S": "1h"},
         setup=_yaml("vllmfleet: {lock_stale_s: 60.0}\n")),
    # --- the inventory file itself --------------------------------------------------------------
    Case("inventory-dev-zero", ("validate", "--inventory", "/dev/zero"),
         ("/dev/zero", "not a regular file")),
    Case("inventory-fifo", ("validate", "--inventory", "fifo.yaml"),
         ("fifo.yaml", "not a regular file"), setup=_fifo),
    Case("inventory-huge", ("validate", "--inventory", "huge.yaml"), ("huge.yaml", "MiB"),
         setup=_huge),
    Case("inventory-folder", ("validate", "--inventory", "configs"), ("configs", "folder")),
    # --- task arguments -------------------------------------------------------------------------
    Case("speed-denormal", ("fleet.up", "--speed", "1e-320"), ("--speed", "1e-320")),
    Case("speed-inf", ("fleet.up", "--speed", "inf"), ("--speed", "inf")),
    Case("speed-nan", ("fleet.up", "--speed", "nan"), ("--speed", "nan")),
    Case("speed-zero", ("fleet.up", "--speed", "0"), ("--speed",)),
    Case("speed-huge", ("fleet.up", "--speed", "1e300"), ("--speed", "1e300")),
    Case("demo-speed-inf", ("fleet.demo", "--speed", "inf"), ("--speed", "inf")),
    Case("plan-host-commas", ("plan", "--host", ",,,"), ("--host", "names no host")),
    Case("render-host-blank", ("render", "--out", "out", "--host", " , "),
         ("--host", "names no host")),
    Case("plan-host-unknown", ("plan", "--host", "wintermut"), ("wintermut", "wintermute")),
    Case("engine-unknown", ("fleet.up", "--engine", "vlm"), ("--engine", "vlm")),
    Case("health-host-commas", ("health", "--host", ",,,"), ("--host", "names no host")),
    Case("backups-host-commas", ("backups.list", "--host", ",,,"), ("--host", "names no host")),
    Case("logs-lines-zero", ("logs.wintermute", "--lines", "0"), ("lines=0", "1 and 10000")),
    Case("logs-lines-text", ("logs.wintermute", "--lines", "abc"), ("--lines 'abc'",)),
    Case("logs-service", ("logs.wintermute", "--service", "foo"), ("'foo'", "--service vllm")),
    Case("rollback-to-path", ("rollback.wintermute", "--to", "../x"),
         ("backup id '../x'", "not a path", "nothing was changed")),
    Case("rollback-to-missing", ("rollback.wintermute", "--to", "20261122T120301Z"),
         ("there is no such backup",)),
]

# every setting, from the environment and from invoke.yaml, with a value it cannot take
BAD_SETTING = {"inventory": "", "build_dir": "", "render_dir": "README.md", "backups_dir": "",
               "backups_keep": "ten", "known_hosts": "  ", "sudo": "maybe",
               "lock_stale_s": "0", "log_lines": "0"}
assert set(BAD_SETTING) == set(DEFAULTS), "a new setting needs a bad value here"
CASES += [Case(f"env-{name}", ("validate",), (f"vllmfleet.{name}=",
                                              f"INVOKE_VLLMFLEET_{name.upper()}"),
               code=2, env={f"INVOKE_VLLMFLEET_{name.upper()}": value})
          for name, value in BAD_SETTING.items()]
CASES += [Case(f"yaml-{name}-list", ("validate",), (f"vllmfleet.{name}=", "invoke.yaml"),
               code=2, setup=_yaml(f"vllmfleet: {{{name}: [1, 2]}}\n"))
          for name in BAD_SETTING]

# --- inventories a careless edit makes (each a validation error naming the field) -------------
INVENTORY_CASES = [
    ("host-upper-case", _edited("\n  wintermute:", "\n  Wintermute:"), ("hosts.Wintermute",)),
    ("host-dot", _edited("\n  wintermute:", "\n  winter.mute:"), ("hosts.winter.mute",)),
    ("alias-zero-width", _edited("qwen2.5-7b-armitage:", "qwen2.5-7b\u200b-armitage:"),
     ("U+200B",)),
    ("alias-bidi", _edited("qwen2.5-7b-armitage:", "qwen2.5-7b\u202e-armitage:"), ("U+202E",)),
]


def _run(case: Case, tmp_path: Path) -> tuple[int, str]:
    root = _project(tmp_path)
    if case.setup is not None:
        case.setup(root)
    try:
        result = _inv(root, *case.args, env=case.env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"inv {' '.join(case.args)} hangs")
    return result.returncode, result.stdout + result.stderr


def _check(code: int, out: str, want: int | tuple[int, ...], says: tuple[str, ...]) -> None:
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    assert code in (want if isinstance(want, tuple) else (want,)), (code, out)
    for text in says:
        assert text in out, (text, out)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error(case: Case, tmp_path: Path) -> None:
    code, out = _run(case, tmp_path)
    _check(code, out, case.code, case.says)


@pytest.mark.parametrize("setup,says", [(s, w) for _, s, w in INVENTORY_CASES],
                         ids=[i for i, _, _ in INVENTORY_CASES])
def test_bad_inventory_is_a_validation_error(setup: Setup, says: tuple[str, ...],
                                             tmp_path: Path) -> None:
    code, out = _run(Case("inventory", ("validate", "--inventory", "edited.yaml"), says,
                          setup=setup), tmp_path)
    _check(code, out, 1, says)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_an_unreadable_inventory_is_named(tmp_path: Path) -> None:
    code, out = _run(Case("x", ("validate", "--inventory", "secret.yaml"), (),
                          setup=_unreadable), tmp_path)
    _check(code, out, 1, ("secret.yaml", "permission"))
    assert not stat.S_IMODE((tmp_path / "project" / "secret.yaml").stat().st_mode)


def test_the_clean_project_passes(tmp_path: Path) -> None:
    """The negative: the same copy of the project without a bad input validates, plans and
    renders (so the cases above fail for their input, not for the copy)."""
    root = _project(tmp_path)
    for args in (("validate",), ("plan", "--host", "wintermute,armitage"),
                 ("render", "--out", "out")):
        result = _inv(root, *args)
        assert result.returncode == 0, result.stdout + result.stderr
