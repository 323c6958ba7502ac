"""How a user discovers the plugin: ``pytest --fixtures``, ``--markers`` and ``--help`` list
its fixtures, markers and options (and never stop with an INTERNALERROR)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def _clean(result: pytest.RunResult) -> str:
    out = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in out and "Traceback (most recent" not in out, out
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED or result.ret == 0, out
    return out


def test_fixtures_lists_the_plugin_fixtures_and_one_per_host(pytester: pytest.Pytester,
                                                             project: Path) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    _clean(result)
    result.stdout.fnmatch_lines_random([
        "wintermute_client [[]session scope[]] -- *pytest_vllmfleet*plugin.py:*",
        "    The direct client of vLLM host wintermute (from the inventory).",
        "armitage_client [[]session scope[]] -- *pytest_vllmfleet*plugin.py:*",
        "    The direct client of vLLM host armitage (from the inventory).",
        "host_client -- *plugin.py:*",
        "proxy_client -- *plugin.py:*",
    ])


def test_fixtures_with_a_suite_selected_lists_the_suites_fixtures(
        pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-m", "rollback or burst")
    _clean(result)
    result.stdout.fnmatch_lines(["*rollback_target [[]module scope[]]*"])


def test_fixtures_per_test_works(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_uses="""
        def test_it(wintermute_client, armitage_client):
            pass
    """)
    result = pytester.runpytest_subprocess("--fixtures-per-test")
    _clean(result)
    result.stdout.fnmatch_lines_random(["wintermute_client -- *plugin.py:*",
                                        "armitage_client -- *plugin.py:*"])


def test_markers_lists_the_four_suites(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    _clean(result)
    result.stdout.fnmatch_lines_random([
        "@pytest.mark.context_limit(fraction=0.75, samples=10): *",
        "@pytest.mark.burst(concurrency=5, max_errors=1): *",
        "@pytest.mark.rejection: *", "@pytest.mark.rollback: *"])


def test_help_lists_every_option_with_its_ini_twin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    _clean(result)
    result.stdout.fnmatch_lines_random([
        "vllmfleet: run the fleet's acceptance suites:", "*--fleet=local|inventory*",
        "*--fleet-config=PATH*", "*--fleet-speed=X*", "*--target=direct|proxy|both*",
        "*--artifacts-dir=DIR*", "*--host=NAME*"])
