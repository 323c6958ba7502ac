"""When the packaged suites join a run, and how tests get their hosts, targets and aliases.

The acceptance suites ship inside this package (``pytest_vllmfleet/suites``) so that an
installed user can run them. They join a run when the ``-m`` expression selects suite
tests and not plain ones — ``-m burst``, ``-m "burst or rejection"``, but not
``-m "not burst"`` and not a plain ``pytest`` — and the user named no paths (paths on the
command line mean "these files"). ``pytest --pyargs pytest_vllmfleet.suites`` runs them all.

A suite marker with arguments in ``-m`` (``-m "burst(concurrency=5)"``) is a usage error:
pytest would read it as "tests whose marker was given concurrency=5", which no packaged
suite is, and the run would quietly select nothing (exit 5). Marker arguments are set in a
test with ``@pytest.mark.burst(concurrency=5)``; ``-m`` only picks the suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_vllmfleet.markers import SUITES

SUITES_DIR = Path(__file__).resolve().parent / "suites"
PARAMS = ("fleet_host", "fleet_target", "fleet_alias")
# a suite name as a whole -m identifier (pytest's identifier characters) followed by "("
_SUITE_CALL = re.compile(r"(?<![\w:+\-.\[\]\\/])(" + "|".join(map(re.escape, SUITES))
                         + r")\s*\(")


def _evaluates(expression: str, marks: Iterable[str]) -> bool:
    """Whether ``-m expression`` selects a test carrying exactly ``marks``."""
    from _pytest.mark.expression import Expression  # pytest's own -m parser

    names = set(marks)

    def matcher(name: str, /, **kwargs: object) -> bool:
        return name in names and not kwargs

    return Expression.compile(expression).evaluate(matcher)


def selects_suites(expression: str) -> bool:
    """True when ``-m expression`` picks suite tests but not unmarked ones."""
    if not expression.strip():
        return False
    try:
        if _evaluates(expression, ()):
            return False
        return any(_evaluates(expression, (suite,)) for suite in SUITES)
    except (ImportError, AttributeError, TypeError):  # pytest's parser moved: be literal
        words = set(expression.replace("(", " ").replace(")", " ").split())
        return "not" not in words and bool(words & set(SUITES))


# the packaged suites whose tests use the session's ``fleet`` (rollback deploys its own)
FLEET_SUITES = tuple(suite for suite in SUITES if suite != "rollback")


def selects_fleet_suites(expression: str) -> bool:
    """True when ``-m expression`` picks a suite that uses the ``fleet`` fixture."""
    try:
        return any(_evaluates(expression, (suite,)) for suite in FLEET_SUITES)
    except (ImportError, AttributeError, TypeError):  # pytest's parser moved: be literal
        words = set(expression.replace("(", " ").replace(")", " ").split())
        return bool(words & set(FLEET_SUITES))


def check_no_marker_arguments(expression: str) -> None:
    """Refuse ``-m "burst(concurrency=5)"``: arguments belong in the test, not in ``-m``."""
    match = _SUITE_CALL.search(expression)
    if match is None:
        return
    name = match.group(1)
    raise pytest.UsageError(
        f"vllmfleet: -m {expression!r} gives the {name} marker arguments; -m only selects "
        f"tests, and no packaged suite test carries those arguments, so nothing would run. "
        f"Select the suite with -m {name} and set marker arguments with "
        f"@pytest.mark.{name}(...) in a test (see `pytest --markers`).")


def add_packaged_suites(config: pytest.Config) -> bool:
    """Add the packaged suites to the paths to collect, when the run asks for them."""
    check_no_marker_arguments(str(config.getoption("markexpr") or ""))
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return False  # the user named what to collect
    if not selects_suites(str(config.getoption("markexpr") or "")):
        return False
    for arg in config.args:
        path = Path(arg.split("::")[0])
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        if path.resolve() == SUITES_DIR or path.resolve() in SUITES_DIR.parents:
            return False  # already collected from there
    config.args.append(str(SUITES_DIR))
    return True


def pinned(metafunc: pytest.Metafunc) -> set[str]:
    """Argument names the test parametrizes itself (``@pytest.mark.parametrize``)."""
    names: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = argnames.split(",")
        names.update(n.strip() for n in argnames)
    return names
