"""Benchmarks: speed and memory goals are checked here (``make bench``), never by timed assertions in tests.

Every ``benchmarks/bench_*.py`` module defines ``run(work: Path) -> list[dict]``; each dict is one result row with keys
``benchmark``, ``metric``, ``value`` (text), ``goal`` (text, may be empty), ``met`` (True/False/None), ``notes``.
"""
