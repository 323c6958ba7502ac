"""The bounds of the suite markers' arguments, value by value (no pytester: the options
objects themselves). A removed bound (``fraction=1.5`` accepted, ``samples`` unbounded, an
error budget that equals the burst) fails here."""

from __future__ import annotations

import pytest

from pytest_vllmfleet.markers import (
    MAX_SAMPLES,
    Burst,
    ContextLimit,
    MarkerError,
    NoArguments,
    check_item,
    parse,
    settings_of,
)


@pytest.mark.parametrize("fraction", [0, -0.1, 1.0000001, 1.5, 2, float("nan"), float("inf"),
                                      True, "0.5", None])
def test_fraction_outside_0_1_is_refused(fraction: object) -> None:
    with pytest.raises(MarkerError, match=r"fraction=.*give a number in \(0, 1\]"):
        ContextLimit(fraction=fraction)  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", [1e-9, 0.5, 1, 1.0])
def test_fraction_inside_0_1_is_kept(fraction: float) -> None:
    assert ContextLimit(fraction=fraction).fraction == fraction


@pytest.mark.parametrize("samples", [9, 0, -1, MAX_SAMPLES + 1, 10**9, True, 10.0, "10"])
def test_samples_outside_10_to_max_are_refused(samples: object) -> None:
    with pytest.raises(MarkerError, match=f"samples=.*from 10 to {MAX_SAMPLES}"):
        ContextLimit(samples=samples)  # type: ignore[arg-type]


@pytest.mark.parametrize("samples", [10, 11, MAX_SAMPLES])
def test_samples_inside_the_bounds_are_kept(samples: int) -> None:
    assert ContextLimit(samples=samples).samples == samples


@pytest.mark.parametrize(("concurrency", "max_errors"), [
    (0, 0), (1001, 1), (True, 0), (5.0, 1), (5, -1), (5, 5), (5, 6), (1, 1), (5, True)])
def test_burst_outside_its_bounds_is_refused(concurrency: object, max_errors: object) -> None:
    with pytest.raises(MarkerError):
        Burst(concurrency=concurrency, max_errors=max_errors)  # type: ignore[arg-type]


def test_an_error_budget_of_the_whole_burst_is_refused_with_the_reason() -> None:
    with pytest.raises(MarkerError, match=r"max_errors=5: give a whole number from 0 to 4 .*"
                                          r"could never fail"):
        Burst(concurrency=5, max_errors=5)


@pytest.mark.parametrize(("concurrency", "max_errors"), [(1, 0), (5, 4), (1000, 999), (2, 1)])
def test_burst_inside_its_bounds_is_kept(concurrency: int, max_errors: int) -> None:
    assert Burst(concurrency=concurrency, max_errors=max_errors).max_errors == max_errors


# --- parse, check_item, settings_of: the marker objects themselves ------------------------------

def _mark(name: str, *args: object, **kwargs: object) -> pytest.Mark:
    decorator: pytest.MarkDecorator = getattr(pytest.mark, name)
    return decorator(*args, **kwargs).mark if args or kwargs else decorator.mark


def test_parse_builds_the_options_object() -> None:
    assert parse(_mark("burst", concurrency=3, max_errors=0), Burst) == Burst(concurrency=3,
                                                                             max_errors=0)
    assert parse(_mark("context_limit"), ContextLimit) == ContextLimit()
    assert parse(_mark("rejection"), NoArguments) == NoArguments()


@pytest.mark.parametrize(("mark", "cls", "message"), [
    (_mark("burst", 5), Burst, "@pytest.mark.burst takes keyword arguments only, got (5,); "
                               "write @pytest.mark.burst(concurrency=5, max_errors=1)"),
    (_mark("burst", concurency=3), Burst, "@pytest.mark.burst: unknown argument 'concurency'; "
                                          "did you mean 'concurrency'? (accepted: "
                                          "concurrency=5, max_errors=1)"),
    (_mark("context_limit", zzz=1), ContextLimit, "@pytest.mark.context_limit: unknown argument "
                                                  "'zzz' (accepted: fraction=0.75, samples=10)"),
    (_mark("rejection", strict=True), NoArguments, "@pytest.mark.rejection: unknown argument "
                                                   "'strict' (accepted: no arguments)"),
    (_mark("context_limit", samples=3), ContextLimit, "@pytest.mark.context_limit: samples=3: "),
])
def test_parse_says_what_is_wrong_exactly(mark: pytest.Mark, cls: type[object],
                                          message: str) -> None:
    with pytest.raises(MarkerError) as caught:
        parse(mark, cls)
    assert str(caught.value).startswith(message), str(caught.value)


class _Item:
    """What check_item and settings_of read from a test item."""

    nodeid = "test_x.py::test_it"

    def __init__(self, *marks: pytest.Mark) -> None:
        self.marks = marks

    def iter_markers(self, name: str) -> list[pytest.Mark]:
        return [m for m in self.marks if m.name == name]

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next(iter(self.iter_markers(name)), None)


def test_check_item_names_the_test_and_checks_every_suite_marker() -> None:
    check_item(_Item(_mark("burst", concurrency=2, max_errors=1), _mark("rejection")))  # type: ignore[arg-type]
    for bad in (_mark("burst", max_errors=9), _mark("context_limit", fraction=2),
                _mark("rollback", x=1), _mark("rejection", 1)):
        with pytest.raises(MarkerError, match=rf"^test_x\.py::test_it: @pytest\.mark\.{bad.name}"):
            check_item(_Item(_mark("burst"), bad))  # type: ignore[arg-type]


def test_settings_of_uses_the_closest_marker_or_the_defaults() -> None:
    item = _Item(_mark("burst", concurrency=7, max_errors=2), _mark("burst", concurrency=3))
    assert settings_of(item, "burst", Burst) == Burst(concurrency=7, max_errors=2)  # type: ignore[arg-type]
    assert settings_of(_Item(), "burst", Burst) == Burst()  # type: ignore[arg-type]
    with pytest.raises(MarkerError):
        settings_of(_Item(_mark("burst", concurrency=0)), "burst", Burst)  # type: ignore[arg-type]
