"""The tasks' settings (``vllmfleet.*``), in-process: invoke loads them the way ``inv`` does
(defaults, ~/.invoke.yaml, the project's invoke.yaml, INVOKE_VLLMFLEET_*, ``-f``), and a bad
value is an ``invoke.Exit`` naming the setting, where it came from, the value and the fix."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.program import Program

from vllmfleet.tasks import checks
from vllmfleet.tasks.deploy import hosts_at_import
from vllmfleet.tasks.settings import (
    DEFAULTS,
    Settings,
    cli_runtime_path,
    config_defaults,
    project_config,
    settings,
)

ROOT = Path(__file__).resolve().parents[3]
FLEET = ROOT / "configs" / "fleet.yaml"


pytestmark = pytest.mark.usefixtures("clean_invoke_env")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def ctx(root: Path, runtime: Path | None = None) -> MockContext:
    return MockContext(config=project_config(root, runtime_path=runtime))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def refused(root: Path, runtime: Path | None = None) -> str:
    with pytest.raises(Exit) as caught:
        settings(ctx(root, runtime))
    assert caught.value.code == 2
    return str(caught.value.message)


# --- defaults --------------------------------------------------------------------------------

def test_defaults_with_paths_in_the_project(project: Path) -> None:
    got = settings(ctx(project))
    assert got.inventory == project / "configs" / "fleet.yaml"
    assert got.build_dir == project / "build"
    assert got.backups_dir == project / "backups"
    assert (got.render_dir, got.known_hosts) == (None, None)
    assert (got.backups_keep, got.sudo, got.lock_stale_s, got.log_lines) == (10, "proxy",
                                                                              3600.0, 40)


def test_the_defaults_are_the_dataclass_defaults_as_text() -> None:
    """One source: DEFAULTS is derived from Settings, every field, as text (or None), so that
    invoke hands INVOKE_VLLMFLEET_* through verbatim instead of casting (int('ten') crashes)."""
    assert list(DEFAULTS) == [f.name for f in fields(Settings)]
    assert all(value is None or isinstance(value, str) for value in DEFAULTS.values())
    assert Settings.from_config(project_config(Path("/nowhere"))) == Settings(
        inventory=Path("/nowhere/configs/fleet.yaml"), build_dir=Path("/nowhere/build"),
        backups_dir=Path("/nowhere/backups"))


def test_config_defaults_anchor_only_the_project_paths(tmp_path: Path) -> None:
    anchored = config_defaults(tmp_path)
    assert anchored["inventory"] == str(tmp_path / "configs" / "fleet.yaml")
    assert anchored["render_dir"] is None and anchored["known_hosts"] is None
    assert anchored["log_lines"] == DEFAULTS["log_lines"]


def test_a_context_without_the_section_gets_the_defaults() -> None:
    assert settings(MockContext()) == Settings()


# --- where values come from ------------------------------------------------------------------

def test_the_environment_overrides_the_defaults(project: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOG_LINES", "12")
    monkeypatch.setenv("INVOKE_VLLMFLEET_BACKUPS_KEEP", "3")
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOCK_STALE_S", "90.5")
    monkeypatch.setenv("INVOKE_VLLMFLEET_SUDO", "NO")
    monkeypatch.setenv("INVOKE_VLLMFLEET_KNOWN_HOSTS", "~/kh")
    got = settings(ctx(project))
    assert (got.log_lines, got.backups_keep, got.lock_stale_s, got.sudo) == (12, 3, 90.5, "none")
    assert got.known_hosts == Path.home() / "kh"


def test_the_project_invoke_yaml_overrides_the_defaults(project: Path) -> None:
    write(project / "invoke.yaml", "vllmfleet:\n  log_lines: 7\n  sudo: true\n"
                                   "  render_dir: out/r\n  inventory: ~/fleet.yaml\n")
    got = settings(ctx(project))
    assert (got.log_lines, got.sudo, got.render_dir) == (7, "all", Path("out/r"))
    assert got.inventory == Path.home() / "fleet.yaml"


def test_the_environment_beats_the_project_invoke_yaml(project: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "invoke.yaml", "vllmfleet:\n  log_lines: 7\n  backups_keep: 4\n")
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOG_LINES", "8")
    got = settings(ctx(project))
    assert (got.log_lines, got.backups_keep) == (8, 4)


def test_the_user_file_counts_and_the_project_file_beats_it(project: Path) -> None:
    write(Path.home() / ".invoke.yaml", "vllmfleet:\n  log_lines: 5\n  backups_keep: 6\n")
    write(project / "invoke.yaml", "vllmfleet:\n  log_lines: 7\n")
    got = settings(ctx(project))
    assert (got.log_lines, got.backups_keep) == (7, 6)


def test_the_f_file_beats_environment_and_project(project: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "invoke.yaml", "vllmfleet:\n  log_lines: 7\n  backups_keep: 4\n")
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOG_LINES", "8")
    runtime = write(tmp_path / "run.yaml", "vllmfleet:\n  log_lines: 9\n")
    got = settings(ctx(project, runtime))
    assert (got.log_lines, got.backups_keep) == (9, 4)


def test_a_task_uses_the_settings(project: Path) -> None:
    """`inv render` writes to the render_dir invoke.yaml names (no --out)."""
    out = project / "rendered-here"
    write(project / "invoke.yaml", f"vllmfleet:\n  inventory: {FLEET}\n  render_dir: {out}\n")
    checks.render(ctx(project), host="motoko")
    assert any(p.is_file() for p in out.rglob("*"))


# --- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize(("yaml_value", "shown"), [
    ("inventory: 123", "vllmfleet.inventory=123"),
    ("build_dir: [a, b]", "vllmfleet.build_dir=['a', 'b']"),
    ("backups_dir: ''", "vllmfleet.backups_dir=''"),
    ("log_lines: 0", "vllmfleet.log_lines=0"),
    ("log_lines: 10001", "vllmfleet.log_lines=10001"),
    ("log_lines: 2.0", "vllmfleet.log_lines=2.0"),
    ("log_lines: true", "vllmfleet.log_lines=True"),
    ("backups_keep: 0", "vllmfleet.backups_keep=0"),
    ("lock_stale_s: 0.5", "vllmfleet.lock_stale_s=0.5"),
    ("sudo: sometimes", "vllmfleet.sudo='sometimes'"),
])
def test_a_bad_value_in_invoke_yaml_exits_naming_file_value_and_fix(
        project: Path, yaml_value: str, shown: str) -> None:
    write(project / "invoke.yaml", f"vllmfleet:\n  {yaml_value}\n")
    message = refused(project)
    assert message.startswith(f"error: {shown} (from {project / 'invoke.yaml'}) is not ")
    key = shown.split("=")[0].removeprefix("vllmfleet.")
    assert f"write e.g. `vllmfleet: {{{key}: " in message and "in that file" in message


@pytest.mark.parametrize(("key", "value", "want"), [
    ("LOG_LINES", "x", "a whole number of lines from 1 to 10000"),
    ("LOG_LINES", "2.5", "a whole number of lines from 1 to 10000"),
    ("LOG_LINES", "10001", "a whole number of lines from 1 to 10000"),
    ("BACKUPS_KEEP", "ten", "a whole number of backups per host, 1 or more"),
    ("LOCK_STALE_S", "1h", "a number of seconds from 1 to 315360000 (ten years)"),
    ("LOCK_STALE_S", "nan", "a number of seconds from 1 to 315360000 (ten years)"),
    ("INVENTORY", "", "a file path"),
])
def test_a_bad_value_in_the_environment_exits_naming_the_variable(
        project: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str,
        want: str) -> None:
    monkeypatch.setenv(f"INVOKE_VLLMFLEET_{key}", value)
    message = refused(project)
    assert (f"error: vllmfleet.{key.lower()}={value!r} (from INVOKE_VLLMFLEET_{key}) is not "
            f"{want}: set e.g. INVOKE_VLLMFLEET_{key}=") in message


def test_a_bad_value_in_the_f_file_names_it(project: Path, tmp_path: Path) -> None:
    runtime = write(tmp_path / "run.yaml", "vllmfleet:\n  backups_keep: -1\n")
    message = refused(project, runtime)
    assert f"vllmfleet.backups_keep=-1 (from -f {runtime})" in message
    assert "write e.g. `vllmfleet: {backups_keep: 10}` in that file" in message


def test_a_misspelt_setting_is_refused_with_the_right_name(project: Path) -> None:
    write(project / "invoke.yaml", "vllmfleet:\n  backup_keep: 3\n")
    message = refused(project)
    assert f"vllmfleet.backup_keep (from {project / 'invoke.yaml'}) is not a setting" in message
    assert "did you mean backups_keep?" in message


def test_a_task_with_a_bad_setting_exits_before_doing_anything(project: Path) -> None:
    write(project / "invoke.yaml", "vllmfleet:\n  inventory: 123\n")
    with pytest.raises(Exit, match=r"vllmfleet\.inventory=123"):
        checks.validate(ctx(project))


def test_settings_built_directly_are_checked_too() -> None:
    with pytest.raises(Exit, match=r"vllmfleet\.log_lines=0 is not a whole number"):
        Settings(log_lines=0)
    assert Settings(log_lines="12", sudo="yes").log_lines == 12  # type: ignore[arg-type]


# --- the per-host tasks at import (tasks.py) ---------------------------------------------------

def renamed_fleet(tmp_path: Path) -> Path:
    text = FLEET.read_text(encoding="utf-8").replace("wintermute", "neuromancer")
    return write(tmp_path / "fleet.yaml", text)


def test_the_f_file_of_the_running_inv_is_found(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = write(tmp_path / "run.yaml", f"vllmfleet:\n  inventory: {renamed_fleet(tmp_path)}\n")
    program = Program()
    program.parse_core(["inv", "-f", str(runtime), "--list"])
    monkeypatch.setitem(sys.modules, "invoke.main", SimpleNamespace(program=program))
    assert cli_runtime_path() == runtime
    assert "neuromancer" in hosts_at_import(ROOT)


def test_without_f_the_runtime_config_variable_counts(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli_runtime_path() is None
    monkeypatch.setenv("INVOKE_RUNTIME_CONFIG", str(tmp_path / "x.yaml"))
    assert cli_runtime_path() == tmp_path / "x.yaml"


def test_hosts_at_import_follow_the_user_file(tmp_path: Path) -> None:
    write(Path.home() / ".invoke.yaml", f"vllmfleet:\n  inventory: {renamed_fleet(tmp_path)}\n")
    assert hosts_at_import(ROOT) == ["neuromancer", "armitage", "motoko"]


def test_hosts_at_import_survive_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOG_LINES", "x")  # not the inventory: hosts still there
    assert "wintermute" in hosts_at_import(ROOT)
    monkeypatch.setenv("INVOKE_VLLMFLEET_INVENTORY", "")  # a bad inventory setting: no hosts
    assert hosts_at_import(ROOT) == []
