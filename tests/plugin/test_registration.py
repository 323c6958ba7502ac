"""The plugin is installed through the pytest11 entry point and shows its option group."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_is_loaded_by_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--trace-config", "--co", "-q")
    result.stdout.fnmatch_lines(["*vllmfleet*pytest_vllmfleet*plugin*"])


def test_help_shows_the_option_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["vllmfleet: run the fleet's acceptance suites:"])
