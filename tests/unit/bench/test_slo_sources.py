"""Where a sweep's SLO comes from: the command line, else the alias's ``slo:`` in the
inventory, else the defaults; a bad ``slo:`` is an inventory error with its line."""

from __future__ import annotations

import pytest

from tests.conftest import REFERENCE
from vllmfleet.bench import alias_of
from vllmfleet.bench.slo import merged
from vllmfleet.errors import InventoryError
from vllmfleet.inventory import Inventory, parse

TEXT = REFERENCE.read_text(encoding="utf-8")
ANCHOR = "    queue_depth: 4\n  llama31-8b-wintermute-burst:"


def with_slo(slo: str) -> str:
    assert ANCHOR in TEXT
    return TEXT.replace(ANCHOR, f"    queue_depth: 4\n    slo: {slo}\n"
                                "  llama31-8b-wintermute-burst:", 1)


def test_the_alias_slo_fills_what_the_command_line_leaves_out() -> None:
    inv = parse(with_slo("{ttft_s: 1.5, e2e_s: 20, percentile: 95}"))
    alias = alias_of(inv, kind="direct", name="wintermute")  # the host's main alias
    assert alias is not None and alias.slo is not None
    slo = merged({"itl_s": 0.05}, alias.slo)
    assert (slo.ttft_s, slo.itl_s, slo.e2e_s, slo.percentile) == (1.5, 0.05, 20.0, 0.95)
    # the command line beats the inventory; 0 turns an objective off
    assert merged({"ttft_s": 3.0, "e2e_s": 0}, alias.slo).as_dict()["e2e_s"] is None
    assert merged({"ttft_s": 3.0}, alias.slo).ttft_s == 3.0
    # through the proxy, by another of the alias's names
    assert alias_of(inv, kind="proxy", name="local/reasoner") is alias


def test_without_an_slo_anywhere_the_defaults_hold(reference: Inventory) -> None:
    slo = merged({}, None)
    assert (slo.ttft_s, slo.itl_s, slo.e2e_s, slo.percentile) == (2.0, 0.2, None, 0.9)
    assert alias_of(reference, kind="direct", name="motoko") is None
    with pytest.raises(ValueError, match=r"percentile=0\.0"):
        merged({"percentile": 0}, None)


@pytest.mark.parametrize(("slo", "message"), [
    ("{ttft_s: -1}", "ttft_s is -1"),
    ("{percentile: 99.9}", "percentile is 99.9"),
    ("{ttft: 2}", "unknown key 'ttft' in slo"),
])
def test_a_bad_alias_slo_is_an_inventory_error_at_its_line(slo: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse(with_slo(slo), file="fleet.yaml")
    (problem,) = caught.value.problems
    assert message in problem.message and problem.path.startswith(
        "aliases.llama31-8b-wintermute.slo")
    assert problem.line == TEXT[:TEXT.index(ANCHOR)].count("\n") + 2
