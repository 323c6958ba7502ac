"""Deploy settings from invoke config (invoke.yaml, INVOKE_VLLMFLEET_*): a bad value is an
exit 2 that names the key, the value and an example — never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_inv
from vllmfleet.inventory import Inventory


@pytest.mark.parametrize(("key", "value"), [("backups_keep", "ten"), ("lock_stale_s", "1h"),
                                            ("log_lines", "x"), ("backups_keep", "0"),
                                            ("log_lines", "2.5"), ("lock_stale_s", "-5")])
def test_a_bad_setting_from_the_environment_is_exit_2(key: str, value: str,
                                                      tmp_path: Path) -> None:
    result = run_inv("deploy.wintermute", "--dry-run",
                 env={f"INVOKE_VLLMFLEET_{key.upper()}": value,
                      "INVOKE_VLLMFLEET_BACKUPS_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"vllmfleet.{key}={value!r}" in result.stderr
    assert f"INVOKE_VLLMFLEET_{key.upper()}=" in result.stderr  # an example of a good value


def test_a_bad_setting_in_invoke_yaml_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "invoke.yaml").write_text("vllmfleet:\n  log_lines: true\n")
    result = run_inv("-f", str(tmp_path / "invoke.yaml"), "deploy.wintermute", "--dry-run",
                 env={"INVOKE_VLLMFLEET_BACKUPS_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "vllmfleet.log_lines=True" in result.stderr and "Traceback" not in result.stderr


def test_good_settings_from_the_environment_are_used(tmp_path: Path) -> None:
    result = run_inv("deploy.wintermute", "--dry-run",
                 env={"INVOKE_VLLMFLEET_BACKUPS_KEEP": "3", "INVOKE_VLLMFLEET_LOG_LINES": "12",
                      "INVOKE_VLLMFLEET_LOCK_STALE_S": "90.5",
                      "INVOKE_VLLMFLEET_BACKUPS_DIR": str(tmp_path)})
    assert "INVOKE_VLLMFLEET_" not in result.stderr and "Traceback" not in result.stderr
    assert "HOST" in result.stdout and "wintermute" in result.stdout  # it got to the deploy


def test_a_deploy_without_the_backend_key_is_refused_unless_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLMFLEET_BACKEND_KEY", raising=False)
    env = {"INVOKE_VLLMFLEET_BACKUPS_DIR": str(tmp_path)}
    for task in ("deploy.wintermute", "deploy.proxy", "deploy.all"):
        refused = run_inv(task, env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "VLLMFLEET_BACKEND_KEY is not set" in refused.stderr
        assert "--no-backend-key" in refused.stderr and "token_urlsafe" in refused.stderr
        assert "Traceback" not in refused.stderr and "HOST" not in refused.stdout
    planned = run_inv("deploy.wintermute", "--dry-run", env=env)
    assert "warning: VLLMFLEET_BACKEND_KEY is not set" in planned.stderr
    assert "wintermute" in planned.stdout  # a dry run goes on (and warns)
    bad = run_inv("deploy.wintermute", "--dry-run", env={**env, "VLLMFLEET_BACKEND_KEY": "x y"})
    assert "VLLMFLEET_BACKEND_KEY: the backend key must be" in bad.stdout + bad.stderr


def test_the_backend_key_check_refuses_warns_or_passes(
        reference: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke.exceptions import Exit

    from vllmfleet.tasks.deploy import backend_key_check

    monkeypatch.delenv("VLLMFLEET_BACKEND_KEY", raising=False)
    with pytest.raises(Exit) as caught:
        backend_key_check(reference, ["wintermute"], dry_run=False, no_backend_key=False)
    assert caught.value.code == 2 and "open to anyone on the LAN" in str(caught.value.message)
    for dry_run, no_key in ((True, False), (False, True)):
        warning = backend_key_check(reference, ["wintermute"], dry_run=dry_run,
                                    no_backend_key=no_key)
        assert warning.startswith("warning: VLLMFLEET_BACKEND_KEY is not set")
    monkeypatch.setenv("VLLMFLEET_BACKEND_KEY", "x" * 32)
    assert backend_key_check(reference, ["wintermute"], dry_run=False, no_backend_key=False) == ""


def test_options_never_show_the_keys() -> None:
    from vllmfleet.deploy.apply import Options

    text = repr(Options(master_key="sk-master-secret", backend_key="backend-secret-123456"))
    assert "secret" not in text
