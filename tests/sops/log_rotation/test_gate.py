"""log_rotation at the shared action gate, on real files: the gate decides under the log set's lock at the moment of
acting (maintenance window, once per incident, cool-down, circuit breaker), a held log set changes nothing, and the
history is written before the files change so a crash never lets a second run act for the same incident."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from toilless.common.gate import GatePolicy
from toilless.common.policies import window_from_config
from toilless.sops.log_rotation import engine, gating, report, rotate

from .test_engine import lines, make_log_set, snapshot

# Any day: the windows below are built around this moment.
NOW = datetime.now(UTC).replace(microsecond=0)


def _due(root: Path, name: str = "app.log", count: int = 200) -> Path:
    live = root / name
    with open(live, "ab") as handle:
        handle.write(lines(count))
    return live


def _setup(tmp_path: Path) -> tuple[Path, Path, object]:
    root = tmp_path / "logs"
    root.mkdir()
    state = tmp_path / "state"
    _due(root)
    return root, state, make_log_set(root)


def _request(run_id: str = "run-1", incident: str | None = None, **policy: object) -> gating.GateRequest:
    return gating.GateRequest(policy=GatePolicy(**policy), run_id=run_id, incident=incident)  # type: ignore[arg-type]


def _window_around(moment: datetime) -> object:
    """A weekly maintenance window containing ``moment`` (whatever day and hour the test runs)."""
    start = moment - timedelta(minutes=30)
    end = moment + timedelta(minutes=30)
    if start.date() != end.date():  # around midnight: a window that does not cross it
        start, end = moment.replace(hour=0, minute=0), moment.replace(hour=23, minute=59)
    return window_from_config(
        {
            "days": [moment.strftime("%A").lower()],
            "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"),
            "timezone": "UTC",
        }
    )


def test_inside_the_maintenance_window_at_the_moment_of_acting_nothing_changes(tmp_path: Path) -> None:
    root, state, log_set = _setup(tmp_path)
    before = snapshot(root)

    result = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW, gate=_request(maintenance_window=_window_around(NOW))
    )

    assert snapshot(root) == before
    assert result["dry_run"] is True
    assert "inside the maintenance window" in result["held"]
    assert result["gate"]["check"] == "time_policy"
    assert result["gate"]["allowed"] is False
    assert [item["live"] for item in result["rotated"]] == [str(root / "app.log")]  # what would have been done
    assert not gating.history_file(state, "web").exists()  # a refusal is not an action


def test_a_second_run_for_the_same_incident_changes_nothing_but_a_retry_of_the_first_finishes(tmp_path: Path) -> None:
    root, state, log_set = _setup(tmp_path)

    first = engine.rotate_log_set(log_set, state_dir=state, now=NOW, gate=_request("run-1", "incident-a"))
    assert first["gate"]["allowed"] is True
    assert len(first["rotated"]) == 1

    _due(root)  # the alert keeps firing; the file filled again
    before = snapshot(root)
    second = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=1), gate=_request("run-2", "incident-a")
    )
    assert second["gate"]["check"] == "once_per_incident"
    assert "run run-1" in second["held"]
    assert snapshot(root) == before

    retry = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=2), gate=_request("run-1", "incident-a")
    )
    assert retry["gate"]["allowed"] is True
    assert len(retry["rotated"]) == 1
    # A different incident is a new reason to act.
    _due(root)
    other = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=3), gate=_request("run-3", "incident-b")
    )
    assert other["gate"]["allowed"] is True
    recorded = json.loads(gating.history_file(state, "web").read_text())["actions"]
    assert [(entry["run_id"], entry["incident"]) for entry in recorded] == [
        ("run-1", "incident-a"),
        ("run-3", "incident-b"),
    ]


def test_the_circuit_breaker_holds_the_third_run_in_its_window(tmp_path: Path) -> None:
    root, state, log_set = _setup(tmp_path)
    policy = {"breaker_max_actions": 2, "breaker_window": timedelta(hours=24)}
    verdicts = []
    for minute in range(3):
        _due(root)
        result = engine.rotate_log_set(
            log_set, state_dir=state, now=NOW + timedelta(minutes=minute), gate=_request(f"run-{minute}", **policy)
        )
        verdicts.append(result["gate"]["check"])
    assert verdicts == ["allowed", "allowed", "circuit_breaker"]
    assert result["held"].startswith("circuit breaker open")
    # Once the oldest action leaves the window, one more is allowed.
    later = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(hours=24, minutes=1), gate=_request("run-9", **policy)
    )
    assert later["gate"]["allowed"] is True


def test_the_cool_down_holds_another_run_until_it_has_passed(tmp_path: Path) -> None:
    root, state, log_set = _setup(tmp_path)
    cooldown = {"cooldown": timedelta(minutes=10)}
    engine.rotate_log_set(log_set, state_dir=state, now=NOW, gate=_request("run-1", **cooldown))
    _due(root)

    held = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=5), gate=_request("run-2", **cooldown)
    )
    allowed = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=11), gate=_request("run-3", **cooldown)
    )

    assert held["gate"]["check"] == "cooldown"
    assert held["rotated"]
    assert held["dry_run"] is True
    assert allowed["gate"]["allowed"] is True
    assert not allowed.get("held")


def test_retention_held_by_the_gate_deletes_nothing(tmp_path: Path) -> None:
    root, state, _ = _setup(tmp_path)
    log_set = make_log_set(root, retention={"max_archives": 1})
    for day in range(3):
        engine.rotate_log_set(log_set, state_dir=state, now=NOW + timedelta(days=day), gate=_request(f"r{day}"))
        _due(root)
    before = snapshot(root)

    held = engine.apply_retention(
        log_set,
        state_dir=state,
        now=NOW + timedelta(days=3),
        gate=_request("r9", maintenance_window=_window_around(NOW + timedelta(days=3))),
    )
    assert snapshot(root) == before
    assert held["dry_run"] is True
    assert len(held["deleted"]) == 2
    assert "maintenance window" in held["held"]

    done = engine.apply_retention(log_set, state_dir=state, now=NOW + timedelta(days=3), gate=_request("r9"))
    assert len(done["deleted"]) == 2
    assert done["gate"]["allowed"] is True
    assert not any(Path(item["path"]).exists() for item in done["deleted"])


def test_the_history_is_written_before_the_files_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash right after the verdict (the worker killed mid-rotation) still counts: the next run for the incident
    is held, not a second action."""
    _root, state, log_set = _setup(tmp_path)

    def crash(*_: object) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(rotate, "rotate_rename", crash)
    with pytest.raises(SystemExit):
        engine.rotate_log_set(log_set, state_dir=state, now=NOW, gate=_request("run-1", "incident-a"))
    monkeypatch.undo()

    again = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW + timedelta(minutes=1), gate=_request("run-2", "incident-a")
    )
    assert again["gate"]["check"] == "once_per_incident"


def test_two_runs_at_once_for_one_incident_act_once(tmp_path: Path) -> None:
    root, state, log_set = _setup(tmp_path)
    results: dict[str, dict[str, object]] = {}

    def run(run_id: str) -> None:
        results[run_id] = engine.rotate_log_set(log_set, state_dir=state, now=NOW, gate=_request(run_id, "incident-a"))

    threads = [threading.Thread(target=run, args=(f"run-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The lock serialises them: the second finds the work done (nothing due: no verdict asked) or, had the file
    # filled again meanwhile, the incident's marker. Never two allowed verdicts, never two rotations.
    checks = sorted(str(result.get("gate", {}).get("check", "nothing to do")) for result in results.values())  # type: ignore[attr-defined]
    assert checks[0] == "allowed"
    assert checks[1] in ("nothing to do", "once_per_incident")
    assert len(list(root.glob("app.log.*"))) == 1


def test_nothing_to_change_asks_nothing_and_records_nothing(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(b"")
    state = tmp_path / "state"

    result = engine.rotate_log_set(make_log_set(root, min_size=1024), state_dir=state, now=NOW, gate=_request())

    assert "gate" not in result
    assert not result.get("held")
    assert not gating.history_file(state, "web").exists()


def test_an_unreadable_or_tampered_history_is_not_trusted(tmp_path: Path) -> None:
    _root, state, log_set = _setup(tmp_path)
    state.mkdir()
    gating.history_file(state, "web").write_text("{not json")
    assert engine.rotate_log_set(log_set, state_dir=state, now=NOW, gate=_request())["gate"]["allowed"] is True

    # An entry dated in the future (an edited file, a broken clock) would hold a cool-down forever: ignored.
    future = (NOW + timedelta(days=30)).isoformat()
    gating.history_file(state, "web").write_text(
        json.dumps({"actions": [{"action": gating.ROTATE, "run_id": "x", "incident": None, "at": future}, 7]})
    )
    assert gating.read_entries(state, "web", now=NOW) == []


def test_the_report_says_what_was_held_and_why(tmp_path: Path) -> None:
    _root, state, log_set = _setup(tmp_path)
    held = engine.rotate_log_set(
        log_set, state_dir=state, now=NOW, gate=_request(maintenance_window=_window_around(NOW))
    )
    text = "\n".join(report.log_set_lines({"rotation": held, "retention": {"deleted": [], "retention": "30 days"}}))

    assert "would be rotated" in text
    assert "rotation not done, held by the action gate: inside the maintenance window" in text
    assert "freed" not in text
