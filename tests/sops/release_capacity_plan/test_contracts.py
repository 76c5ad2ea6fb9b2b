"""Kubernetes' name and quantity contracts, as the as-built's hand-written mistakes broke them."""

from __future__ import annotations

import pytest

from toilless.sops.release_capacity_plan.contracts import (
    ContractError,
    check_label,
    check_subdomain,
    cpu_millicores,
    format_cpu,
    format_memory,
    memory_bytes,
    round_up,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("512Mi", 512 * 2**20, id="binary-mi"),
        pytest.param("1Gi", 2**30, id="binary-gi"),
        pytest.param("1.5Gi", 3 * 2**29, id="fraction-of-gi"),
        pytest.param("512M", 512 * 10**6, id="decimal-m"),
        pytest.param("1e9", 10**9, id="exponent"),
        pytest.param("1000m", 1, id="millibytes-whole"),
        pytest.param("128974848", 128974848, id="plain-bytes"),
    ],
)
def test_memory_quantities_kubernetes_accepts(text: str, expected: int) -> None:
    assert memory_bytes(text, "memory") == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        pytest.param("512mb", "did you mean 512Mi?", id="512mb-from-the-seed"),
        pytest.param("1GB", "did you mean 1Gi?", id="GB"),
        pytest.param("512 Mi", "not a Kubernetes quantity", id="space"),
        pytest.param("512m", "fraction of a byte", id="millibytes"),
        pytest.param("-1Gi", "must not be negative", id="negative"),
        pytest.param("", "not a Kubernetes quantity", id="empty"),
        pytest.param("1Zi", "not a Kubernetes quantity", id="unknown-suffix"),
        pytest.param("9" * 70, "not a Kubernetes quantity", id="too-long"),
        pytest.param("2Ei", "larger than any node", id="absurd"),
    ],
)
def test_memory_quantities_kubernetes_refuses_are_refused_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(ContractError, match=hint):
        memory_bytes(text, "memory")


@pytest.mark.parametrize(
    "value", [pytest.param(None, id="none"), pytest.param(True, id="bool"), pytest.param(1.5, id="float")]
)
def test_a_quantity_must_be_a_string(value: object) -> None:
    with pytest.raises(ContractError, match="quantity string"):
        memory_bytes(value, "memory")


@pytest.mark.parametrize(
    ("text", "millicores"),
    [
        pytest.param("250m", 250, id="milli"),
        pytest.param("2", 2000, id="cores"),
        pytest.param("1.5", 1500, id="fraction"),
        pytest.param("0.0005", 1, id="below-precision-rounds-up"),
        pytest.param("312500000n", 313, id="nanocores-from-metrics-server"),
        pytest.param("250000u", 250, id="microcores"),
    ],
)
def test_cpu_quantities(text: str, millicores: int) -> None:
    assert cpu_millicores(text, "cpu") == millicores


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        pytest.param(2**30, "1Gi", id="gi"),
        pytest.param(1088 * 2**20, "1088Mi", id="mi"),
        pytest.param(1536, "1536", id="one-and-a-half-ki-in-bytes"),
        pytest.param(2048, "2Ki", id="ki"),
    ],
)
def test_memory_is_formatted_as_an_exact_quantity(amount: int, text: str) -> None:
    assert format_memory(amount) == text
    assert memory_bytes(text, "memory") == amount  # what is written reads back the same


@pytest.mark.parametrize(
    ("millicores", "text"),
    [
        pytest.param(2000, "2", id="cores"),
        pytest.param(250, "250m", id="milli"),
        pytest.param(1500, "1500m", id="mixed"),
    ],
)
def test_cpu_is_formatted_as_a_quantity(millicores: int, text: str) -> None:
    assert format_cpu(millicores) == text
    assert cpu_millicores(text, "cpu") == millicores


def test_round_up_to_a_step() -> None:
    step = 64 * 2**20
    assert round_up(870.4 * 2**20, step) == 896 * 2**20
    assert round_up(1088 * 2**20, step) == 1088 * 2**20  # already on a step: unchanged
    with pytest.raises(ContractError):
        round_up(1, 0)


@pytest.mark.parametrize(
    "name",
    [pytest.param("app", id="short"), pytest.param("order-processor", id="dash"), pytest.param("a" * 63, id="63")],
)
def test_valid_labels(name: str) -> None:
    assert check_label(name, "container name") == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        pytest.param("order_processor", "'order-processor'", id="underscore-from-the-seed"),
        pytest.param("OrderProcessor", "'orderprocessor'", id="capitals"),
        pytest.param("-app", "'app'", id="leading-dash"),
        pytest.param("a" * 64, "", id="64-chars"),
        pytest.param("app.v2", "", id="dot-in-a-label"),
    ],
)
def test_invalid_labels_are_refused_with_a_suggestion(name: str, suggestion: str) -> None:
    with pytest.raises(ContractError, match="DNS-1123 label") as caught:
        check_label(name, "container name")
    assert suggestion in str(caught.value)


def test_subdomains_allow_dots_but_not_underscores() -> None:
    assert check_subdomain("app.v2", "Deployment name") == "app.v2"
    for bad in ("app_v2", "app..v2", "a" * 254, ""):
        with pytest.raises(ContractError):
            check_subdomain(bad, "Deployment name")
