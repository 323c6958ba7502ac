"""vllmfleet: operate a small self-hosted LLM fleet (vLLM hosts behind a LiteLLM proxy).

One inventory (``configs/fleet.yaml``) drives validation, capacity planning, rendering,
the local fleet, deployment and the acceptance suites. Every behaviour lives in this
package; ``tasks.py`` and the ``pytest_vllmfleet`` plugin are thin layers over it.
"""

from __future__ import annotations

__version__ = "0.1.0"
