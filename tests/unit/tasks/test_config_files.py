"""The config files invoke would load, checked before invoke's own loader stops on them with a
traceback, and the folders the tasks create: each refusal names the file (or the setting and
where it came from) and exits 2. In-process; the bad-input corpus runs the same through `inv`."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke.exceptions import Exit

from vllmfleet.tasks.files import check_config_files, make_folder

pytestmark = pytest.mark.usefixtures("clean_invoke_env")


def refused(root: Path, runtime: Path | None = None) -> str:
    with pytest.raises(Exit) as caught:
        check_config_files(root, runtime_path=runtime)
    assert caught.value.code == 2
    return str(caught.value.message)


@pytest.mark.parametrize(("text", "says"), [
    ("vllmfleet: {inventory: [\n", "is not valid YAML (line 2: expected the node content"),
    ("- a\n- b\n", "holds list, not a mapping of settings"),
    ("42\n", "holds int, not a mapping of settings"),
    ("vllmfleet: text\n", "vllmfleet='text' (from {file}) is not a mapping of settings"),
    ("vllmfleet: [1]\n", "vllmfleet=[1] (from {file}) is not a mapping of settings"),
    ("vllmfleet: {build_dir: {a: 1}}\n", "vllmfleet.build_dir={'a': 1} (from {file}) is not a "
                                         "folder path"),
    ("vllmfleet: {log_lines: [1, 2]}\n", "vllmfleet.log_lines=[1, 2] (from {file}) is not a "
                                         "whole number of lines"),
    ("\xff", "cannot be read"),
])
def test_a_broken_project_file_is_named(tmp_path: Path, text: str, says: str) -> None:
    file = tmp_path / "invoke.yaml"
    file.write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
    assert says.replace("{file}", str(file)) in refused(tmp_path)


def test_the_user_file_and_the_f_file_are_checked_too(tmp_path: Path) -> None:
    user = Path.home() / ".invoke.yaml"
    user.write_text("vllmfleet: text\n")
    assert str(user) in refused(tmp_path)
    user.unlink()
    runtime = tmp_path / "run.yaml"
    runtime.write_text("- x\n")
    assert str(runtime) in refused(tmp_path, runtime)


def test_a_folder_named_invoke_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "invoke.yaml").mkdir()
    assert "invoke.yaml is a folder, not a file" in refused(tmp_path)


def test_json_is_checked_as_json(tmp_path: Path) -> None:
    (tmp_path / "invoke.json").write_text('{"vllmfleet": ')
    assert "invoke.json cannot be read" in refused(tmp_path)


@pytest.mark.parametrize(("text", "env", "value"), [
    ("vllmfleet: {log_lines: 5}\n", "INVOKE_VLLMFLEET_LOG_LINES", "abc"),
    ("vllmfleet: {lock_stale_s: 60.0}\n", "INVOKE_VLLMFLEET_LOCK_STALE_S", "1h"),
])
def test_an_environment_value_invoke_cannot_cast_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: str,
        value: str) -> None:
    (tmp_path / "invoke.yaml").write_text(text)
    monkeypatch.setenv(env, value)
    message = refused(tmp_path)
    assert message.startswith(f"error: {env}={value!r} is not ") and "unset it" in message


@pytest.mark.parametrize("text", ["", "vllmfleet:\n", "vllmfleet: {log_lines: 5}\n",
                                  "vllmfleet: {log_lines: '7', sudo: true}\nother: [1]\n"])
def test_good_files_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    (tmp_path / "invoke.yaml").write_text(text)
    monkeypatch.setenv("INVOKE_VLLMFLEET_LOG_LINES", "12")  # castable to the file's int
    check_config_files(tmp_path)


def test_make_folder_creates_and_returns_it(tmp_path: Path) -> None:
    assert make_folder(tmp_path / "a" / "b", named="--out a/b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize(("path", "says"), [
    ("/dev/null", "it is a device, not a folder"),
    ("/proc/x", "cannot create it"),
    ("FILE", "it is a file, not a folder"),
    ("FILE/below", "cannot create it"),
])
def test_make_folder_says_why_not(tmp_path: Path, path: str, says: str) -> None:
    (tmp_path / "FILE").write_text("x")
    target = Path(path) if path.startswith("/") else tmp_path / path
    with pytest.raises(Exit) as caught:
        make_folder(target, named="--out X")
    assert caught.value.code == 2
    assert str(caught.value.message).startswith(f"error: {target} (--out X): {says}")
    assert "choose a folder you can write" in str(caught.value.message)
