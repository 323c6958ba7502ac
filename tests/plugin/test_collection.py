"""Per-host/target/alias parametrisation with readable ids, host fixtures, packaged suites.

Everything here is collection only: no fleet starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HOSTS_AND_TARGETS = """
    import pytest

    def test_each(fleet_host, fleet_target):
        pass

    @pytest.mark.parametrize("fleet_target", ["direct"])
    def test_direct_only(fleet_host, fleet_target):
        pass

    def test_alias(fleet_alias):
        pass
"""


def test_every_host_and_target_by_default(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_ids=HOSTS_AND_TARGETS)
    result = pytester.runpytest_subprocess("--co", "-q")
    result.stdout.fnmatch_lines([
        "test_ids.py::test_each[wintermute-direct]",
        "test_ids.py::test_each[wintermute-proxy]",
        "test_ids.py::test_each[armitage-direct]",
        "test_ids.py::test_each[armitage-proxy]",
        "test_ids.py::test_direct_only[wintermute-direct]",
        "test_ids.py::test_direct_only[armitage-direct]",
        "test_ids.py::test_alias[llama31-8b-wintermute]",
        "test_ids.py::test_alias[llama31-8b-wintermute-burst]",
        "test_ids.py::test_alias[qwen2.5-7b-armitage]",
        "9 tests collected*",
    ])


def test_host_and_target_select_and_deselect(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_ids=HOSTS_AND_TARGETS)
    result = pytester.runpytest_subprocess("--co", "-q", "--host=armitage", "--target=proxy")
    result.stdout.fnmatch_lines([
        "test_ids.py::test_each[armitage-proxy]",
        "test_ids.py::test_alias[qwen2.5-7b-armitage]",
        "2/3 tests collected (1 deselected)*",
    ])


def test_a_client_fixture_per_vllm_host(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines_random([
        "wintermute_client [[]session scope[]]*", "armitage_client [[]session scope[]]*",
        "host_client*", "proxy_client*", "prompt_builder*", "fleet [[]session scope[]]*"])
    assert "motoko_client" not in result.stdout.str()  # the proxy host runs no vLLM


def _collected(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest_subprocess("--co", "-q", *args)
    return result.stdout.str()


def test_a_suite_marker_brings_in_the_packaged_suites(pytester: pytest.Pytester,
                                                      project: Path) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    burst = _collected(pytester, "-m", "burst", "--host", "wintermute")
    assert "test_burst.py::test_concurrent_requests_complete[wintermute-direct]" in burst
    assert "test_burst.py::test_concurrent_requests_complete[wintermute-proxy]" in burst
    assert "armitage" not in burst and "test_context_limit" not in burst
    header = pytester.runpytest_subprocess("--co", "-m", "burst")
    header.stdout.fnmatch_lines(["vllmfleet: * packaged suites from */pytest_vllmfleet/suites"])
    both = _collected(pytester, "-m", "burst or rejection")
    assert "test_rejection.py::test_over_max_input_is_refused_by_the_proxy" in both


@pytest.mark.parametrize("args", [(), ("-m", "not burst"), ("-m", "burst", "test_mine.py")],
                         ids=["plain", "not-burst", "explicit-path"])
def test_the_packaged_suites_stay_out_otherwise(pytester: pytest.Pytester, project: Path,
                                                args: tuple[str, ...]) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    collected = _collected(pytester, *args)
    assert ("test_mine" in collected) == ("burst" not in args)  # -m burst deselects it
    assert "test_concurrent_requests_complete" not in collected
    assert "test_over_max_input" not in collected


@pytest.mark.parametrize("expression", ["burst(concurrency=5)", "rejection or burst (max_errors=2)",
                                        "not context_limit(samples=20)"])
def test_suite_marker_arguments_in_m_are_a_usage_error(pytester: pytest.Pytester, project: Path,
                                                       expression: str) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest_subprocess("--co", "-m", expression)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gives the * marker arguments*"])
    assert "@pytest.mark." in result.stderr.str() and "in a test" in result.stderr.str()


def test_a_plain_marker_named_like_a_suite_prefix_is_not_refused(pytester: pytest.Pytester,
                                                                project: Path) -> None:
    pytester.makepyfile(test_mine="import pytest\n\n@pytest.mark.my_burst(x=1)\n"
                                  "def test_mine():\n    pass\n")
    pytester.makeini("[pytest]\nmarkers =\n    my_burst: a marker of the user's\n")
    result = pytester.runpytest_subprocess("--co", "-q", "-m", "my_burst(x=1)")
    assert result.ret == pytest.ExitCode.OK
    assert "test_mine.py::test_mine" in result.stdout.str()


_SPY = """
import pytest_vllmfleet.fleet as fleet_mod


class _SpyStart:  # stands in for the local fleet's early start: records what happened to it
    def __init__(self, inventory, workdir, *, speed, engine="emulator"):
        self.workdir = workdir
        open("early-started", "w").close()

    def wait(self):
        raise AssertionError("no test here uses the fleet")

    def discard(self):
        open("early-discarded", "w").close()


fleet_mod.EarlyStart = _SpyStart
"""


@pytest.mark.parametrize(("expression", "started"), [("rollback", False), ("burst", True),
                                                     ("rollback or rejection", True)])
def test_the_local_fleet_starts_early_only_for_suites_that_use_it(
        pytester: pytest.Pytester, project: Path, expression: str, started: bool) -> None:
    pytester.makeconftest(_SPY)
    # a project test of the suite that does not use the fleet; -k leaves only it selected
    mark = expression.split()[-1]
    pytester.makepyfile(test_mine=f"""
        import os
        import pytest

        @pytest.mark.{mark}
        def test_mine():
            # an early start nobody uses is stopped before the first test runs
            assert os.path.exists("early-started") == os.path.exists("early-discarded")
    """)
    result = pytester.runpytest_subprocess("-m", expression, "-k", "test_mine")
    result.assert_outcomes(passed=1)
    assert (project / "early-started").exists() == started
