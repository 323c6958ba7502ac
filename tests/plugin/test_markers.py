"""Suite markers: registered with signatures; arguments validated, typos are errors."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_markers_are_registered_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines_random([
        "@pytest.mark.context_limit(fraction=0.75, samples=10): acceptance criterion 1*",
        "@pytest.mark.burst(concurrency=5, max_errors=1): acceptance criterion 2*",
        "@pytest.mark.rejection: acceptance criterion 3*",
        "@pytest.mark.rollback: acceptance criterion 4*",
        "@pytest.mark.capacity(ttft_s=2.0, itl_s=0.2, e2e_s=None, *): capacity sweep*",
    ])


def test_marker_arguments_reach_the_settings_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        pytestmark = pytest.mark.burst(concurrency=3)

        def test_module_level(burst_settings):
            assert (burst_settings.concurrency, burst_settings.max_errors) == (3, 1)

        @pytest.mark.burst(concurrency=8, max_errors=0)
        def test_closest_wins(burst_settings):
            assert (burst_settings.concurrency, burst_settings.max_errors) == (8, 0)

        @pytest.mark.context_limit(samples=20)
        def test_context(context_limit_settings):
            assert (context_limit_settings.fraction, context_limit_settings.samples) == (0.75, 20)

        @pytest.mark.capacity(ttft_s=0.5, itl_s=None, max_concurrency=4)
        def test_capacity(capacity_settings):
            slo = capacity_settings.slo()
            assert (slo.ttft_s, slo.itl_s, capacity_settings.max_concurrency) == (0.5, None, 4)
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=4)


@pytest.mark.parametrize(("marker", "message"), [
    ("burst(concurency=3)", "@pytest.mark.burst: unknown argument 'concurency'; did you mean "
                            "'concurrency'? (accepted: concurrency=5, max_errors=1)"),
    ("burst(5)", "@pytest.mark.burst takes keyword arguments only, got (5,); write "
                 "@pytest.mark.burst(concurrency=5, max_errors=1)"),
    ("context_limit(samples=3)", "@pytest.mark.context_limit: samples=3: give a whole number from "
                                 "10 to 1000; a P90 needs 10 samples*"),
    ("rejection(strict=True)", "@pytest.mark.rejection: unknown argument 'strict' (accepted: "
                               "no arguments)"),
    ("capacity(ttft=1)", "@pytest.mark.capacity: unknown argument 'ttft'; did you mean "
                         "'ttft_s'?*"),
    ("capacity(ttft_s=0)", "@pytest.mark.capacity: ttft_s=0: give a positive number of seconds*"),
    ("capacity(max_concurrency=0)", "@pytest.mark.capacity: max_concurrency=0: give a whole "
                                    "number of at least 1"),
])
def test_bad_marker_arguments_stop_the_run_and_name_the_test(
        pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(test_typo=f"""
        import pytest

        @pytest.mark.{marker}
        def test_it():
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*vllmfleet: test_typo.py::test_it: {message}"])
