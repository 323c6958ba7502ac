"""The fleet's acceptance criteria as pytest suites, shipped with the plugin.

Run them by marker from a project with an inventory (``configs/fleet.yaml``):
``pytest -m context_limit``, ``pytest -m burst --host=wintermute``, ``pytest -m rejection``;
or all of them with ``pytest --pyargs pytest_vllmfleet.suites``. They use only the
plugin's fixtures (``fleet``, ``fleet_host``, ``fleet_target``, ``fleet_alias``,
``fleet_report`` …), so a project can write its own tests the same way.
"""
