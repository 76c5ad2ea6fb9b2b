"""Import one DAG file the way the dag-processor does, in this fresh process, and report what parsing cost.

Network and database connections are blocked while the file is imported: a DAG file that reaches for either at parse
time fails here. Prints one JSON object: seconds, heavy modules newly imported, DAG ids, the error if any.

    python scripts/parse_probe.py dags/log_rotation.py
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import resource
import socket
import sqlite3
import sys
import time
from pathlib import Path

#: Modules a DAG file must not import at parse time (import them inside tasks or hook methods).
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "kubernetes",
    "kubernetes_asyncio",
    "pandas",
    "numpy",
    "matplotlib",
    "psycopg2",
    "psycopg",
    "github",
    "moto",
    "slack_sdk",
)


class ParseTimeIOError(RuntimeError):
    """A DAG file tried to use the network or a database while being parsed."""


def _blocked(what: str):
    def refuse(*args: object, **kwargs: object) -> None:
        raise ParseTimeIOError(f"{what} at DAG-parse time: {args[1:] if len(args) > 1 else args}")

    return refuse


def block_io() -> None:
    socket.socket.connect = _blocked("network connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _blocked("network connect")  # type: ignore[method-assign]
    socket.create_connection = _blocked("network connect")  # type: ignore[assignment]
    socket.getaddrinfo = _blocked("DNS lookup")  # type: ignore[assignment]
    sqlite3.connect = _blocked("database connect")  # type: ignore[assignment]


def peak_rss_kb() -> int:
    """This process's own peak resident memory. ru_maxrss is not: it keeps the parent's peak across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def probe(path: Path) -> dict[str, object]:
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "plugins"))
    # Airflow itself is imported first, outside the measurement: every DAG file pays it once per parser process.
    import airflow.sdk  # noqa: F401 - imported for its cost, outside the measurement
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    before = set(sys.modules)
    block_io()
    started = time.perf_counter()
    error = None
    module = None
    try:
        loader = importlib.machinery.SourceFileLoader(f"probe_{path.stem.replace('.', '_')}", str(path))
        spec = importlib.util.spec_from_loader(loader.name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        # As the dag-processor does: DAGs created while this module runs register themselves against it.
        sys.modules[loader.name] = module
        DagContext.current_autoregister_module_name = loader.name
        loader.exec_module(module)
    except BaseException as err:  # report, don't crash: the caller decides
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - started
    new_modules = set(sys.modules) - before
    heavy = sorted({name.split(".")[0] for name in new_modules if name.split(".")[0] in HEAVY_MODULES})
    # DAGs register themselves when created (DagBag relies on it), whether assigned to a global or not.
    dag_ids = sorted({dag.dag_id for dag, registered_in in DagContext.autoregistered_dags if registered_in is module})
    return {
        "file": str(path),
        "seconds": round(seconds, 4),
        "heavy_modules": heavy,
        "dag_ids": dag_ids,
        "error": error,
        "max_rss_kb": peak_rss_kb(),
    }


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]).resolve())))
