"""Invoke task modules; the root ``tasks.py`` assembles them into one Collection.

Each module is one topic. Tasks are thin: they read arguments and configuration
(``c.config.vllmfleet``), call the library, and turn :class:`vllmfleet.errors.FleetError`
into :class:`invoke.Exit` with a readable message (see :mod:`vllmfleet.tasks._common`).
"""
