"""triage_alert: benchmark stub from the scaffold. The decision over a large fleet must stay far below the schedule.

Replace or extend with what can grow in this SOP (targets per run, calls per hook) once it reads a real system.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from toilless.sops.triage_alert.decide import decide

TARGETS = 100_000
GOAL_SECONDS = 1.0


def run(work: Path) -> list[dict[str, Any]]:
    started = time.perf_counter()
    acting = 0
    for index in range(TARGETS):
        acting += decide(float(index % 100), threshold=90, allow_action=True, target=f"t-{index}").act
    elapsed = time.perf_counter() - started
    return [
        {
            "benchmark": "triage_alert",
            "metric": f"decide() for {TARGETS:,} targets",
            "value": f"{elapsed:.2f} s",
            "goal": f"< {GOAL_SECONDS:g} s",
            "met": elapsed < GOAL_SECONDS,
            "notes": f"{acting:,} would act; a stub from the scaffold",
        }
    ]


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
