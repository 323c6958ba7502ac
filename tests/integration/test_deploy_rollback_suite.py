"""The packaged rollback suite (``pytest -m rollback``) run as a user runs it, on the local
fleet: it deploys a changed config to deployable local hosts (emulator + real LiteLLM),
rolls back, and passes only when files and behaviour equal the baseline. The checks it
applies are shown to fail on observations that differ (no fleet needed for that part)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from tests.conftest import ROOT
from vllmfleet.acceptance.rollback import Cycle, Observation

pytest_plugins = ["pytester"]


def test_the_rollback_suite_passes_on_the_local_fleet(pytester: pytest.Pytester) -> None:
    if importlib.util.find_spec("litellm") is None:  # importing it would fetch a price map
        pytest.skip("the local fleet needs `pip install -e .[proxy]`")
    shutil.copytree(ROOT / "configs", pytester.path / "configs")
    result = pytester.runpytest_subprocess("-m", "rollback", "--host", "wintermute",
                                           "--basetemp", str(pytester.path / "tmp"),
                                           timeout=400)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "vllmfleet: fleet=local, *, hosts=wintermute, packaged suites from *",
        "test_rollback.py .*",
    ])
    [record] = (pytester.path / "tmp").rglob("rollback-wintermute.json")
    cycle = json.loads(record.read_text())
    assert cycle["max_model_len"] == [16384, 12288]
    assert cycle["changed"]["served"]["wintermute"] == {"llama31-8b-wintermute": 12288}
    assert cycle["changed"]["proxy_limits"]["llama31-8b-wintermute"]["max_input_tokens"] == 10500
    assert cycle["restored"] == cycle["baseline"]
    assert cycle["baseline"]["proxy_limits"]["local/reasoner"]["max_input_tokens"] == 14000


def test_the_checks_fail_when_the_rollback_did_not_restore() -> None:
    baseline = Observation(files={"w": {"/opt/c.yaml": "a" * 64}},
                           served={"w": {"llama": 16384}}, proxy_models=("llama",),
                           proxy_limits={"llama": {"max_input_tokens": 14000}})
    changed = Observation(files={"w": {"/opt/c.yaml": "b" * 64}},
                          served={"w": {"llama": 12288}}, proxy_models=("llama",),
                          proxy_limits={"llama": {"max_input_tokens": 10500}})
    good = Cycle(host="w", served_model_name="llama", max_model_len=(16384, 12288),
                 baseline=baseline, changed=changed,
                 restored=baseline, deploys=(), rollbacks=())
    assert good.problems() == []
    stuck = Cycle(host="w", served_model_name="llama", max_model_len=(16384, 12288),
                  baseline=baseline, changed=changed,
                  restored=changed, deploys=(), rollbacks=())
    assert stuck.problems() == [
        "not restored: w:/opt/c.yaml: sha256 aaaaaaaaaaaa -> bbbbbbbbbbbb",
        "not restored: w /v1/models: {'llama': 16384} -> {'llama': 12288}",
        "not restored: proxy limits of llama: {'max_input_tokens': 14000} -> "
        "{'max_input_tokens': 10500}",
        "w does not report max_model_len 16384 again",
    ]
    no_effect = Cycle(host="w", served_model_name="llama", max_model_len=(16384, 12288),
                      baseline=baseline,
                      changed=baseline, restored=baseline, deploys=(), rollbacks=())
    assert len(no_effect.problems()) == 2
    assert "did not take effect" in no_effect.problems()[0]


def test_the_new_length_must_be_on_the_served_name() -> None:
    """A deploy that changed some other model's length did not change the served one."""
    baseline = Observation(files={"w": {"/opt/c.yaml": "a" * 64}},
                           served={"w": {"llama": 16384}}, proxy_models=("llama",),
                           proxy_limits={"llama": {"max_input_tokens": 14000}})
    elsewhere = Observation(files={"w": {"/opt/c.yaml": "b" * 64}},
                            served={"w": {"llama": 16384, "other": 12288}},
                            proxy_models=("llama",),
                            proxy_limits={"llama": {"max_input_tokens": 10500}})
    cycle = Cycle(host="w", served_model_name="llama", max_model_len=(16384, 12288),
                  baseline=baseline, changed=elsewhere, restored=baseline, deploys=(),
                  rollbacks=())
    assert any("12288" in p for p in cycle.problems()), cycle.problems()
