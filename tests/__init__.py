"""vllmfleet's own tests. Every folder is a package, so test modules may share a basename
(``tests/unit/deploy/test_plan.py`` and ``tests/unit/inventory/test_plan.py``) and import the
shared paths and helpers as ``from tests.conftest import ...``."""
