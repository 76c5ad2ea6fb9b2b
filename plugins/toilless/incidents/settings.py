"""The incident record's settings (include/config/incidents.yaml + Variable ``toilless_incidents``) and rotation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.incidents.rotation import Rotation, load_rotation


def load_settings() -> dict[str, Any]:
    """Call inside a task or a request: reads a Variable."""
    from toilless.common.config import load_config

    return load_config("incidents")


def rotation_of(settings: Mapping[str, Any]) -> Rotation:
    """The rotation file named by ``rotation_file`` (relative to include/); a gap or overlap is a RotationError."""
    from toilless.common.config import include_path

    return load_rotation(include_path(str(settings.get("rotation_file") or "oncall_rotation.yaml")))
