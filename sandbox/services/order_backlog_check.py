"""Order-processor backlog demo (order_backlog_check): an orders database, a stuck processor, its Kubernetes.

* ``orders.sqlite`` under the sandbox home: 540 orders, 40 of them outstanding (the oldest 3 h old).
* ``orders/logs/order_processing.log``: the processor's log showing the stuck pattern (the same
  ``Error Processing Order. Error #12`` on order 11, again and again), rewritten at each start.
* A Kubernetes API emulator (kmock) holding the processor's Deployment and pod; a stand-in processor writes a new
  run to the log and processes a few orders whenever the DAG restarts the Deployment, so the verification step
  sees recovery.

Connections: ``orders_db`` (sqlite) and ``orders_kubernetes``; the Variable ``toilless_order_backlog_check``
points the DAG at them and at the demo log.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.order_backlog_check_data import ProcessorStandIn, processor_log, seed_sqlite, write_log
from sandbox.service import SandboxContext, Service

NAMESPACE = "orders"
DEPLOYMENT = "order-processor"
LABELS = {"app": "order-processor"}


class OrdersService(Service):
    name = "orders"
    order = 50
    description = "Orders database, stuck order processor and its Kubernetes (order_backlog_check)"

    def __init__(self) -> None:
        self.k8s: KubernetesEmulatorServer | None = None
        self.processor: ProcessorStandIn | None = None
        self.database: Path | None = None
        self.log_path: Path | None = None

    def start(self, ctx: SandboxContext) -> None:
        home = ctx.home / "orders"
        self.database = home / "orders.sqlite"
        self.log_path = home / "logs" / "order_processing.log"
        now = datetime.now(UTC)
        # Refilled at every start: idempotent, and the demo's ages stay relative to now.
        seed_sqlite(self.database, outstanding=40, now=now)
        write_log(self.log_path, processor_log("stuck", now=now))

        self.k8s = KubernetesEmulatorServer(port=ctx.port(5057)).start()
        self.k8s.add_deployment(NAMESPACE, DEPLOYMENT, LABELS)
        log_path = self.log_path
        self.k8s.add_pod(NAMESPACE, f"{DEPLOYMENT}-7d9f", LABELS, lambda: log_path.read_text(encoding="utf-8"))
        database = self.database
        self.processor = ProcessorStandIn(
            self.k8s,
            namespace=NAMESPACE,
            deployment=DEPLOYMENT,
            log_path=self.log_path,
            process_orders=lambda count: _process_sqlite_orders(database, count),
            poll_seconds=1.0,
        ).start()
        ctx.published["orders"] = {
            "database": str(self.database),
            "log": str(self.log_path),
            "kubernetes": self.k8s.url,
        }

    def stop(self) -> None:
        if self.processor is not None:
            self.processor.stop()
        if self.k8s is not None:
            self.k8s.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        assert self.k8s is not None
        assert self.database is not None
        return {
            "orders_db": {"conn_type": "sqlite", "host": str(self.database)},
            "orders_kubernetes": self.k8s.connection(),
        }

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        assert self.log_path is not None
        override = {
            "log": {"source": "file", "path": str(self.log_path), "allowed_roots": [str(self.log_path.parent)]},
            "kubernetes": {"conn_id": "orders_kubernetes", "namespace": NAMESPACE, "deployment": DEPLOYMENT},
            "verify": {"timeout_minutes": 10, "poll_seconds": 10},
        }
        return {"toilless_order_backlog_check": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        return (
            f"Orders DB {self.database} (40 outstanding) and a processor stuck on order 11 (log {self.log_path}); "
            f"its Deployment in a Kubernetes emulator on {self.k8s.url if self.k8s else '?'}: "
            "trigger order_backlog_check (it restarts only inside business hours, Europe/Berlin)"
        )


def _process_sqlite_orders(database: Path, count: int) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE orders SET status = 'processed', processed_at = ? WHERE id IN "
            "(SELECT id FROM orders WHERE status IN ('new', 'processing') ORDER BY created_at LIMIT ?)",
            (datetime.now(UTC).isoformat(), count),
        )
    connection.close()
