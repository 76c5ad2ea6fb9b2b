"""The sandbox's Redis services (what `make run` gives redis_memory and redis_connections): their Connection and
Variables lead each DAG's own steps to a real problem on the sandbox Redis, and a restart reseeds the same state."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.service import SandboxContext
from sandbox.services.redis import RedisService
from sandbox.services.redis_connections import RedisConnectionsService
from sandbox.services.redis_memory import RedisMemoryService

pytestmark = pytest.mark.integration


def _settings(module: Any, dag_id: str, override: str) -> dict[str, Any]:
    from toilless.common.config import deep_merge, read_defaults

    return module.resolve(deep_merge(read_defaults(dag_id), json.loads(override)), {})


def test_sandbox_redis_has_a_memory_and_a_connection_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.sops.redis_connections import settings as connections_settings
    from toilless.sops.redis_connections import steps as connections_steps
    from toilless.sops.redis_memory import settings as memory_settings
    from toilless.sops.redis_memory import steps as memory_steps

    store: dict[str, Any] = {}
    for module in (memory_steps, connections_steps):
        monkeypatch.setattr(module, "read_state", lambda key: copy.deepcopy(store.get(key, {})))
        monkeypatch.setattr(module, "write_state", lambda key, value: store.__setitem__(key, copy.deepcopy(value)))
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    server = RedisService()
    server.start(ctx)
    services = [RedisConnectionsService(), RedisMemoryService()]
    try:
        for service in services:
            service.start(ctx)
        for conn_id, connection in server.connections(ctx).items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        variables = {key: value for service in services for key, value in service.variables(ctx).items()}

        memory = _settings(memory_settings, "redis_memory", variables["toilless_redis_memory"])
        memory["eviction_sample_seconds"] = 0.1
        diagnosis = memory_steps.diagnose_memory(memory)
        assert diagnosis["assessment"]["level"] == "warning", diagnosis["figures"]
        assert diagnosis["sample"]["biggest_keys"][0]["key"] == "report:2026:full"
        outcome = memory_steps.clean_idle_keys(memory, diagnosis, {"run_id": "sandbox"})
        assert outcome["acted"] == 1000  # max_keys_per_run: the abandoned sessions get a TTL, 1,000 a run

        connections = _settings(connections_settings, "redis_connections", variables["toilless_redis_connections"])
        connections["sample_seconds"] = 0.1
        found = connections_steps.diagnose_connections(connections)
        assert found["assessment"]["level"] == "warning"
        assert any(line.startswith("billing-worker: 45 connections") for line in found["assessment"]["advice"])

        # A second start on the same server reseeds the same memory problem.
        again = RedisMemoryService()
        again.start(ctx)
        assert again.seeded["keys"] == services[1].seeded["keys"]
    finally:
        for service in services:
            service.stop()
        server.stop()
