"""One drain transaction's reads, made once per batch instead of once per alert.

Deciding an alert needs its ledger row, its target's lock row, the state of the run holding the target and whether
its own run exists: four queries per alert when read one by one, most of a storm's drain time besides
``create_dagrun``. :meth:`BatchView.load` reads them for every alert of the batch (up to 500 on PostgreSQL) in three
queries; the batch's own writes keep the view current, so a later alert of the batch sees what an earlier one
decided (the repeat of an alert in the next delivery is a duplicate; a target just taken is busy).

Writes of other workers are not in the view. They need none: every decision is still guarded by the ledger's and the
lock's primary keys and by compare-and-swap updates, which fail, roll the whole batch back and have its deliveries
decided alert by alert without a view (:meth:`toilless.intake.drain.Drain._drain_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from toilless.intake import store

if TYPE_CHECKING:
    from toilless.intake.plans import Plan


def state_name(state: Any) -> str | None:
    """A DagRunState (or its string) as a plain string; None stays None."""
    return str(state.value if hasattr(state, "value") else state) if state is not None else None


@dataclass
class BatchView:
    #: alert key -> its ledger row (None: no decision yet)
    ledger: dict[str, Any] = field(default_factory=dict)
    #: (dag_id, target) -> its lock row (None: nobody holds it)
    locks: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: (dag_id, run_id) -> the run's state (None: no such run)
    runs: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: dag_id -> Airflow's DagModel row, not stale (None: none); read once per batch
    live_models: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Any, plans: list[Plan]) -> BatchView:
        keys = sorted({plan.key for plan in plans if plan.key})
        targets = sorted({(plan.dag_id, plan.target) for plan in plans if plan.route is not None})
        ledger: dict[str, Any] = dict.fromkeys(keys)
        ledger.update(store.ledger_rows(session, keys))
        locks: dict[tuple[str, str], Any] = dict.fromkeys(targets)
        locks.update(store.lock_rows(session, targets))
        runs_wanted = {(plan.dag_id, plan.run_id) for plan in plans if plan.run_id}
        runs_wanted |= {(row.dag_id, row.run_id) for row in locks.values() if row is not None}
        runs_wanted |= {(row.dag_id, row.run_id) for row in ledger.values() if row is not None and row.run_id}
        states = store.run_states(session, sorted(runs_wanted))
        runs = {run: state_name(states.get(run)) for run in runs_wanted}
        return cls(ledger=ledger, locks=locks, runs=runs)

    # -- reads: ``...`` (Ellipsis) means "not in the view": the caller reads the DB ----------------------------------
    def ledger_row(self, key: str) -> Any:
        return self.ledger.get(key, ...)

    def lock_row(self, dag_id: str, target: str) -> Any:
        return self.locks.get((dag_id, target), ...)

    def run_state(self, dag_id: str, run_id: str) -> Any:
        return self.runs.get((dag_id, run_id), ...)

    # -- the batch's own writes -----------------------------------------------------------------------------------
    def decided(self, key: str, **row: Any) -> None:
        """A ledger row written (or changed) by this batch; ``row`` holds its columns the decisions read."""
        previous = self.ledger.get(key)
        values = {"decision": None, "run_id": None, "resolved_at": None, "dag_id": ""}
        if previous is not None:
            values.update({name: getattr(previous, name) for name in values})
        values.update(row)
        self.ledger[key] = SimpleNamespace(alert_key=key, **values)

    def forgot(self, key: str) -> None:
        self.ledger[key] = None

    def locked(self, dag_id: str, target: str, run_id: str) -> None:
        self.locks[(dag_id, target)] = SimpleNamespace(dag_id=dag_id, target=target, run_id=run_id)

    def created(self, dag_id: str, run_id: str) -> None:
        self.runs[(dag_id, run_id)] = "queued"
