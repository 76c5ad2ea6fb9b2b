"""release_capacity_plan on 50 Deployments: the plan (pure) and rendering + offline schema validation of every manifest.

Offline validation loads the Kubernetes JSON schema from the kubernetes-validate package for each object (the
library builds a fresh registry per call), so it dominates; both must stay far below a person's patience in a
release window. The Deployments are the seed's app (1Gi, 500m, one container) with the seed's figures.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from sandbox.release_capacity_plan_data import deployment_body
from toilless.sops.release_capacity_plan import manifests
from toilless.sops.release_capacity_plan.plan import Figures, plan_capacity
from toilless.sops.release_capacity_plan.reading import deployment_from_manifest

DEPLOYMENTS = 50
REPEATS = 5
VERSION = "1.33"
PLAN_GOAL_MS = 100.0
RENDER_GOAL_S = 10.0
FIGURES = Figures(1300, 2600, 500, memory_utilisation_pct=85, memory_growth_per_user_pct=25, max_replicas=50)


def run(work: Path) -> list[dict[str, Any]]:
    read = [manifests.clean_manifest(deployment_body("shop", f"app-{index}")) for index in range(DEPLOYMENTS)]
    plan_times, render_times = [], []
    validated = 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        plan = plan_capacity([deployment_from_manifest(m) for m in read], FIGURES).as_dict()
        plan_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        documents = []
        for manifest, planned in zip(read, plan["deployments"], strict=True):
            after = manifests.apply_patch(manifest, manifests.deployment_patch(planned))
            manifests.validate_manifest(after, VERSION)
            hpa = manifests.hpa_manifest(planned, max_factor=1.25, target_cpu_utilisation_pct=70, max_replicas=50)
            assert hpa is not None
            manifests.validate_manifest(hpa, VERSION)
            documents += [after, hpa]
        manifests.render_yaml(documents)
        render_times.append(time.perf_counter() - started)
        validated = len(documents)
    plan_ms = statistics.median(plan_times) * 1000
    render_s = statistics.median(render_times)
    return [
        {
            "benchmark": "release_capacity_plan",
            "metric": f"plan_capacity for {DEPLOYMENTS} Deployments (median of {REPEATS})",
            "value": f"{plan_ms:.1f} ms",
            "goal": f"< {PLAN_GOAL_MS:g} ms",
            "met": plan_ms < PLAN_GOAL_MS,
            "notes": "parse each Deployment read from the API (names, quantities checked), plan replicas/memory/CPU",
        },
        {
            "benchmark": "release_capacity_plan",
            "metric": f"render + validate {validated} manifests ({DEPLOYMENTS} Deployments + HPAs, median of {REPEATS})",
            "value": f"{render_s:.2f} s",
            "goal": f"< {RENDER_GOAL_S:g} s",
            "met": render_s < RENDER_GOAL_S,
            "notes": f"strict Kubernetes {VERSION} schema, offline (kubernetes-validate 1.37.0), plus name/quantity "
            f"contracts; {render_s / validated * 1000:.0f} ms per object",
        },
    ]


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
