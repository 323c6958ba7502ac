"""pytest_vllmfleet: the fleet's acceptance criteria as ordinary pytest suites.

Registered through the ``pytest11`` entry point as ``vllmfleet``; the hooks and fixtures
live in :mod:`pytest_vllmfleet.plugin`, the logic in :mod:`vllmfleet`.
"""
