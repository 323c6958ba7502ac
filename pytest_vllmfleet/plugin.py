"""pytest hooks of vllmfleet: one option group; markers and fixtures come with the suites.

Thin by design: everything this plugin does is implemented in :mod:`vllmfleet`.
"""

from __future__ import annotations

import pytest

GROUP = "vllmfleet"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Create the plugin's option group (its options arrive with the acceptance suites)."""
    parser.getgroup(GROUP, "vllmfleet: run the fleet's acceptance suites")
