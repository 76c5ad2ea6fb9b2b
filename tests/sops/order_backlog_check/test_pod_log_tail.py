"""The processor's newest run is at the END of its pod log: the hook must read the end, whatever the log's length.

Kubernetes' ``limitBytes`` returns the first bytes of a log; the emulator used to return the last ones, which hid that
reading with ``limitBytes`` quoted the oldest lines of a long log.
"""

from __future__ import annotations

import io

import pytest
import requests

from sandbox.kubernetes import KubernetesEmulatorServer
from toilless.hooks.kubernetes import KubernetesDeploymentHook, tail_of_stream

NAMESPACE = "orders"
LABELS = {"app": "order-processor"}


@pytest.mark.parametrize(
    ("data", "max_bytes", "max_read", "expected"),
    [
        pytest.param(b"", 10, 100, (b"", False, True), id="empty"),
        pytest.param(b"abc\n", 10, 100, (b"abc\n", False, True), id="short"),
        pytest.param(b"0123456789abcdef", 4, 100, (b"cdef", True, True), id="keeps-the-end"),
        pytest.param(b"0123456789abcdef", 4, 8, (b"4567", True, False), id="read-bound-reached"),
        pytest.param(b"01234567", 4, 8, (b"4567", True, True), id="read-bound-exactly-at-the-end"),
    ],
)
def test_tail_of_stream(data: bytes, max_bytes: int, max_read: int, expected: tuple[bytes, bool, bool]) -> None:
    assert (
        tail_of_stream(io.BytesIO(data).read, max_bytes=max_bytes, max_read_bytes=max_read, chunk_bytes=3) == expected
    )


def test_emulator_limit_bytes_returns_the_start_like_the_real_api(
    kubernetes_emulator: KubernetesEmulatorServer,
) -> None:
    kubernetes_emulator.add_pod(NAMESPACE, "probe-1", {"app": "probe"}, lambda: "first\nsecond\nthird\n")
    url = f"{kubernetes_emulator.url}/api/v1/namespaces/{NAMESPACE}/pods/probe-1/log"

    assert requests.get(url, params={"limitBytes": "6"}, timeout=10).content == b"first\n"
    assert requests.get(url, params={"tailLines": "2"}, timeout=10).content == b"second\nthird\n"
    assert requests.get(url, params={"tailLines": "2", "limitBytes": "3"}, timeout=10).content == b"sec"


def test_long_pod_log_is_read_from_its_end(kubernetes_emulator: KubernetesEmulatorServer) -> None:
    old_runs = "".join(f"2026-01-01 00:00:{i % 60:02d} old run line {i}\n" for i in range(20_000))
    newest = "2026-01-02 00:00:00 Startup of the newest run\n2026-01-02 00:00:01 newest run processed order 42\n"
    kubernetes_emulator.add_deployment(NAMESPACE, "order-processor", LABELS)
    kubernetes_emulator.add_pod(NAMESPACE, "order-processor-1", LABELS, lambda: old_runs + newest)
    hook = KubernetesDeploymentHook(namespace=NAMESPACE, deployment="order-processor")

    lines, source = hook.read_pod_log(max_bytes=4096, max_read_bytes=16 << 20)

    assert lines[-2:] == newest.splitlines()
    assert sum(len(line) + 1 for line in lines) <= 4096
    assert not lines[0].startswith("old run line")  # the cut first line was dropped, the rest are whole lines
    assert source == f"pod {NAMESPACE}/order-processor-1"


def test_a_log_longer_than_the_read_bound_says_its_end_was_not_read(
    kubernetes_emulator: KubernetesEmulatorServer,
) -> None:
    kubernetes_emulator.add_deployment(NAMESPACE, "bounded-processor", {"app": "bounded"})
    kubernetes_emulator.add_pod(NAMESPACE, "bounded-processor-1", {"app": "bounded"}, lambda: "x" * 100_000 + "\nend\n")
    hook = KubernetesDeploymentHook(namespace=NAMESPACE, deployment="bounded-processor")

    lines, source = hook.read_pod_log(max_bytes=1000, max_read_bytes=10_000)

    assert "end" not in lines
    assert "its end was not read" in source
