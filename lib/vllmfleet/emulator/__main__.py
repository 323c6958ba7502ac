"""``python -m vllmfleet.emulator [serve] [MODEL] [vLLM flags] [--emulator-… flags]``."""

from vllmfleet.emulator.app import main

raise SystemExit(main())
