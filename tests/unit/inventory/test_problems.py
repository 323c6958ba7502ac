"""The `inv validate` report: errors before warnings, each located and with its fix."""

from __future__ import annotations

import pytest

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory import parse
from vllmfleet.inventory.problems import format_problems, summary

SHIPPED = REFERENCE.read_text()


def problem(severity: str, line: int | None, path: str, message: str, fix: str = "",
            file: str = "fleet.yaml") -> Problem:
    return Problem(severity=severity, path=path, message=message, fix=fix,  # type: ignore[arg-type]
                   file=file, line=line)


def test_errors_come_first_in_line_order_then_warnings() -> None:
    text = format_problems([
        problem("warning", 70, "aliases.a.max_input_tokens", "61% of max_model_len",
                "use 13926-14745"),
        problem("error", 30, "hosts.b.vllm.port", "port is 0", "set port to 1-65535"),
        problem("error", 12, "hosts.a.gpu.vram_gib", "vram_gib is nan"),
    ])
    assert text == (
        "errors:\n"
        "  fleet.yaml:12: hosts.a.gpu.vram_gib\n"
        "    vram_gib is nan\n"
        "  fleet.yaml:30: hosts.b.vllm.port\n"
        "    port is 0\n"
        "    fix: set port to 1-65535\n"
        "warnings:\n"
        "  fleet.yaml:70: aliases.a.max_input_tokens\n"
        "    61% of max_model_len\n"
        "    fix: use 13926-14745\n"
        "\n"
        "2 errors, 1 warning\n")


def test_problems_without_a_line_or_path_or_file() -> None:
    text = format_problems([problem("error", None, "", "not valid YAML: x\ny", "fix it",
                                    file="")])
    assert text == ("errors:\n  <inventory>\n    not valid YAML: x\n    y\n    fix: fix it\n\n"
                    "1 error, 0 warnings\n")


@pytest.mark.parametrize(("severities", "line"), [
    ([], "0 errors, 0 warnings"),
    (["error"], "1 error, 0 warnings"),
    (["warning", "warning"], "0 errors, 2 warnings"),
    (["error", "error", "warning"], "2 errors, 1 warning"),
])
def test_the_closing_count(severities: list[str], line: str) -> None:
    problems = [problem(s, 1, "p", "m") for s in severities]
    assert summary(problems) == line
    assert format_problems(problems).splitlines()[-1] == line


def test_color_only_when_asked() -> None:
    problems = [problem("error", 1, "p", "m", "f"), problem("warning", 2, "q", "n", "g")]
    plain = format_problems(problems)
    colored = format_problems(problems, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[31m" in colored and "\x1b[33m" in colored
    assert colored.replace("\x1b[0m", "").replace("\x1b[1m", "").replace(
        "\x1b[31m", "").replace("\x1b[33m", "") == plain


def test_a_broken_inventory_reads_as_a_report() -> None:
    text = SHIPPED.replace("max_input_tokens: 7000", "max_input_tokens: 7600").replace(
        "tpm: 140000", "tpm: 100000")
    with pytest.raises(InventoryError) as info:
        parse(text, file="configs/fleet.yaml")
    report = format_problems(info.value.problems)
    line = text[:text.index("max_input_tokens: 7600")].count("\n") + 1
    assert f"  configs/fleet.yaml:{line}: aliases.qwen2.5-7b-armitage.max_input_tokens\n" \
           in report
    assert "    fix: lower max_input_tokens to at most 7424" in report
    assert report.index("errors:") < report.index("warnings:")
    assert "weaker than its base" in report.split("warnings:")[1]
    assert report.endswith("\n1 error, 1 warning\n")
