"""A compose project: the files as given, and what they declare once loaded and merged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ComposeFile:
    """One file as given: its name (``-`` for stdin) and its text."""

    filename: str
    text: str


@dataclass
class Project:
    """What the files declare, in long form: keys as in a compose file."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level x-... keys
    warnings: list[str] = field(default_factory=list)
