"""The fleet's acceptance checks, shared by the demo (``inv fleet.demo``), ``inv health`` and the
pytest suites, and their reports.

=========  ========================================================================================
smoke      the demo's checks of a running fleet, direct and through the proxy
limits     "refused, naming the limit": the one check of a limit's refusal
reports    CSV / JSON / terminal reports of the suites
rollback   the rollback cycle (acceptance criterion 4): baseline, deploy a step down, roll back
=========  ========================================================================================
"""
