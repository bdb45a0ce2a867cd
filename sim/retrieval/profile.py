"""Error profiles: what `cascade measure` found, as a YAML file a person can read and a scenario can use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sim.core.atomic import write_text
from sim.core.errors import CascadeError
from sim.core.yaml_source import read_yaml_file

PROFILE_KIND = "error_profile"


def write_profile(profile: dict[str, Any], path: str | Path) -> Path:
    """Write a profile atomically (YAML, keys in a reading order)."""
    header = ("# Error profile measured by `cascade measure`. `rates` are per query and mutually exclusive (the\n"
              "# agent reads the top result): use this file from a scenario with\n"
              "#   retrievers: {NAME: {kind: measured, profile: THIS_FILE}}\n")
    write_text(path, header + yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=110))
    return Path(path)


def read_profile(path: str | Path) -> dict[str, Any]:
    """Read a profile and check that it is one (a clear error otherwise)."""
    data, _ = read_yaml_file(path)
    if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND or not isinstance(data.get("rates"), dict):
        raise CascadeError(f"{path}: not an error profile written by `cascade measure` (expected kind: "
                           f"{PROFILE_KIND} and a rates mapping)")
    for t, r in data["rates"].items():
        if not isinstance(r, int | float) or not 0.0 <= r <= 1.0:
            raise CascadeError(f"{path}: rates.{t} must be a probability in [0, 1], got {r!r}")
    return data
