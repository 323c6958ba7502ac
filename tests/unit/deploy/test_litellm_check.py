"""The proxy config is checked with the LiteLLM that will run it, before the swap."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import TEMPLATES
from vllmfleet import render
from vllmfleet.deploy import litellm_check
from vllmfleet.deploy.plan import Desired
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Inventory
from vllmfleet.remote import LocalAdapter

LITELLM = f"{shlex.quote(sys.executable)} -m litellm.proxy.proxy_cli"


def _bundle(reference: Inventory, *, break_config: bool = False) -> list[Desired]:
    files = render.render_proxy(reference, templates=TEMPLATES)
    out = []
    for f in files:
        text = f.content + ("\nbad: [\n" if break_config and f.kind == "litellm-config" else "")
        out.append(Desired(remote_path=f.remote_path, content=text.encode(), mode=f.mode,
                           service="proxy", kind=f.kind))
    return out


@pytest.fixture
def adapter(tmp_path: Path) -> LocalAdapter:
    return LocalAdapter(host="motoko", root=tmp_path / "host")


def test_a_config_the_host_litellm_loads_passes_and_leaves_nothing(
        reference: Inventory, adapter: LocalAdapter) -> None:
    note = litellm_check.validate_on_host(adapter, cli=LITELLM, bundle=_bundle(reference),
                                          config_path=reference.proxy.config_path)
    assert note is None
    assert not list((adapter.root / "tmp").glob("vllmfleet-validate-*"))


def test_a_config_the_host_litellm_cannot_load_is_refused(reference: Inventory,
                                                          adapter: LocalAdapter) -> None:
    with pytest.raises(DeployError) as caught:
        litellm_check.validate_on_host(adapter, cli=LITELLM,
                                       bundle=_bundle(reference, break_config=True),
                                       config_path=reference.proxy.config_path)
    assert "cannot load the new proxy config (exit 1)" in str(caught.value)
    assert "nothing was swapped" in str(caught.value)
    assert not list((adapter.root / "tmp").glob("vllmfleet-validate-*"))


def test_a_litellm_without_the_flag_falls_back_with_a_note(reference: Inventory,
                                                           adapter: LocalAdapter) -> None:
    old = "echo 'Error: No such option: --validate_config' >&2; exit 2; :"
    note = litellm_check.validate_on_host(adapter, cli=old, bundle=_bundle(reference),
                                          config_path=reference.proxy.config_path)
    assert note is not None and "no --validate_config" in note


@pytest.mark.parametrize(("printed", "warned"), [
    ("LiteLLM: Current Version = 1.108.7", False),
    ("LiteLLM: Current Version = 1.108.12", False),
    ("LiteLLM: Current Version = 1.106.0", True),
    ("LiteLLM: Current Version = 1.1080.0", True),
    ("command not found", True),
])
def test_the_host_litellm_version_outside_the_tested_line_is_a_warning(
        adapter: LocalAdapter, printed: str, warned: bool) -> None:
    warning = litellm_check.version_warning(adapter, f"echo {shlex.quote(printed)}; :")
    assert (warning is not None) == warned
    if warned:
        assert "1.108" in str(warning)


def test_local_validation_with_the_installed_litellm(reference: Inventory) -> None:
    files = render.render_proxy(reference, templates=TEMPLATES)
    pairs = [(Path(f.relpath).name, f.content) for f in files]
    config = Path(files[0].relpath).name
    assert litellm_check.validate_locally(pairs, config_name=config) == []
    broken = [(n, t + "\nbad: [\n" if n == config else t) for n, t in pairs]
    problems = litellm_check.validate_locally(broken, config_name=config)
    assert len(problems) == 1 and "cannot load the rendered proxy config" in problems[0]
