"""Msk cpu headroom demo (msk_cpu_headroom): what the SOP judges, for `make run`.

The scaffold's service only points the SOP's stand-in measurement at a value over the threshold (Variable
``toilless_msk_cpu_headroom``), so a manual run shows the whole path: decision, gate, report. Replace it with what the SOP
really needs locally (a seeded moto server, an emulator, a demo database) and its Connections.
"""

from __future__ import annotations

import json

from sandbox.service import SandboxContext, Service

#: The Variable override the sandbox sets: a target over the threshold, acting regardless of the maintenance window.
OVERRIDE = {"stand_in": {"target": "demo-target", "value": 95}, "respect_maintenance_window": False}


class MskCpuHeadroomService(Service):
    name = "msk_cpu_headroom"
    order = 50
    description = "Msk cpu headroom demo: a target over the threshold (msk_cpu_headroom)"

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_msk_cpu_headroom": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        return f"{self.description}: trigger msk_cpu_headroom"
