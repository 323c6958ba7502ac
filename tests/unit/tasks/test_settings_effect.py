"""Each setting reaches what it controls (asserted by its effect, not by "no error"): the
deploy options and host access a task builds, the folders the tasks use. A task that ignored
a setting and used the default would fail here (every value differs from its default)."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke.context import MockContext

from tests.conftest import REFERENCE, ROOT
from vllmfleet.inventory import Inventory
from vllmfleet.tasks import checks
from vllmfleet.tasks.deploy import access, options
from vllmfleet.tasks.settings import DEFAULTS, project_config

pytestmark = pytest.mark.usefixtures("clean_invoke_env")


def _ctx(monkeypatch: pytest.MonkeyPatch, **values: str) -> MockContext:
    for key, value in values.items():
        assert DEFAULTS[key] != value, f"{key}: pick a value other than the default"
        monkeypatch.setenv(f"INVOKE_VLLMFLEET_{key.upper()}", value)
    return MockContext(config=project_config(ROOT))


def test_deploy_options_carry_every_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            reference: Inventory) -> None:
    store = tmp_path / "store"
    c = _ctx(monkeypatch, backups_dir=str(store), backups_keep="3", lock_stale_s="90.5",
             log_lines="12")
    opts = options(c, reference)
    assert (opts.store, opts.keep, opts.stale_after_s, opts.log_lines) == (store, 3, 90.5, 12)


@pytest.mark.parametrize(("word", "sudo"), [("all", "all"), ("none", "none"), ("yes", "all")])
def test_host_access_carries_sudo_and_known_hosts(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, reference: Inventory,
                                                  word: str, sudo: str) -> None:
    known = tmp_path / "known_hosts"
    c = _ctx(monkeypatch, sudo=word, known_hosts=str(known))
    acc = access(c, reference)
    assert (acc.sudo, acc.known_hosts) == (sudo, known)


def test_render_writes_to_render_dir_else_under_build_dir(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    build = tmp_path / "build"
    c = _ctx(monkeypatch, build_dir=str(build), inventory=str(REFERENCE))
    checks.render(c, host="motoko")
    assert sorted(p.name for p in (build / "rendered").rglob("*") if p.is_file())
    out = tmp_path / "out"
    monkeypatch.setenv("INVOKE_VLLMFLEET_RENDER_DIR", str(out))
    checks.render(MockContext(config=project_config(ROOT)), host="motoko")
    assert any(p.is_file() for p in out.rglob("*"))
