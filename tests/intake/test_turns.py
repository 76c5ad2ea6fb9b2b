"""The SQLite write turns: a waiting webhook insert goes before the worker's next decision, one writer at a time."""

from __future__ import annotations

import threading
import time

from toilless.intake.turns import WriteTurns


def _wait_for(turns: WriteTurns, waiting: tuple[int, int]) -> None:
    deadline = time.monotonic() + 10
    while turns.waiting() != waiting:
        assert time.monotonic() < deadline, f"waiting {turns.waiting()}, expected {waiting}"
        time.sleep(0.001)


def _writer(turns: WriteTurns, name: str, urgent: bool, order: list[str]) -> threading.Thread:
    def write() -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_waiting_insert_goes_before_decisions_that_waited_longer() -> None:
    turns = WriteTurns()
    order: list[str] = []
    with turns.turn(urgent=False):  # the worker's decision holds the writer
        decisions = [_writer(turns, f"decision {index}", False, order) for index in range(3)]
        _wait_for(turns, (0, 3))
        insert = _writer(turns, "insert", True, order)
        _wait_for(turns, (1, 3))
    for thread in [insert, *decisions]:
        thread.join(10)
    assert order[0] == "insert"
    assert sorted(order[1:]) == ["decision 0", "decision 1", "decision 2"]
    assert turns.waiting() == (0, 0)


def test_one_writer_at_a_time_under_contention() -> None:
    turns = WriteTurns()
    inside = 0
    most = 0
    guard = threading.Lock()

    def write(urgent: bool) -> None:
        nonlocal inside, most
        for _ in range(200):
            with turns.turn(urgent=urgent):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write, args=(index % 2 == 0,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1
    assert turns.waiting() == (0, 0)


def test_a_writer_that_raises_gives_the_turn_back() -> None:
    turns = WriteTurns()
    try:
        with turns.turn(urgent=True):
            raise RuntimeError("database is locked")
    except RuntimeError:
        pass
    order: list[str] = []
    _writer(turns, "next", False, order).join(5)
    assert order == ["next"]
