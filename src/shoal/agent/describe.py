"""What a node reports about itself: hostname, platform, resources, engine, runtimes.

With a Docker Engine, the engine's own facts are reported, as a Swarm node reports them
(moby's executor Describe): its version, labels, plugins, CPUs, memory and platform. The
hostname stays the node's own, since several nodes may share one engine."""

import os
import platform
from typing import Any

import psutil

import shoal
from shoal.api.objects import (
    EngineDescription,
    EnginePlugin,
    NodeDescription,
    NodeResources,
    Platform,
)

CONTAINER = "container"


OVERLAY = EnginePlugin(Type="Network", Name="overlay")


def engine_plugins(info: dict[str, Any]) -> list[EnginePlugin]:
    """The engine's plugins as Swarm lists them: volume, network, authorization and log
    drivers, sorted by type then name. (Swarm always adds ``overlay``; shoal adds it where
    its own overlay data plane runs: see ``describe_node``.)"""
    plugins = info.get("Plugins") or {}
    found: set[tuple[str, str]] = set()
    for kind in ("Volume", "Network", "Authorization", "Log"):
        names = [n for n in plugins.get(kind) or [] if not (kind == "Network" and n == "overlay")]
        found.update((kind, name) for name in names)
    return [EnginePlugin(Type=t, Name=n) for t, n in sorted(found)]


def engine_labels(info: dict[str, Any]) -> dict[str, str]:
    labels = {}
    for item in info.get("Labels") or []:
        key, sep, value = item.partition("=")
        if sep:  # the last value of a key wins, as in Swarm
            labels[key] = value
    return labels


def describe_node(
    hostname: str,
    labels: dict[str, str],
    runtimes: list[str],
    engine_info: dict[str, Any] | None = None,
    overlay: bool = False,
) -> NodeDescription:
    """``engine_info`` is the engine's /info while it is reachable: without it the node
    does not offer the container runtime. ``overlay``: the node can build overlay networks
    (it reports the ``overlay`` network plugin, which tasks on such networks need)."""
    offered = [r for r in runtimes if r != CONTAINER or engine_info is not None]
    runtime_plugins = [EnginePlugin(Type="Runtime", Name=r) for r in offered]
    if overlay:
        runtime_plugins.insert(0, OVERLAY)
    if engine_info is None:
        return NodeDescription(
            Hostname=hostname,
            # Docker reports the kernel's names: "linux", "x86_64".
            Platform=Platform(Architecture=platform.machine(), OS=platform.system().lower()),
            Resources=NodeResources(
                NanoCPUs=(os.cpu_count() or 1) * 1_000_000_000,
                MemoryBytes=psutil.virtual_memory().total,
            ),
            Engine=EngineDescription(
                EngineVersion=shoal.__version__,
                Labels=dict(labels) or None,
                Plugins=runtime_plugins or None,
            ),
            Runtimes=offered,
        )
    merged = engine_labels(engine_info)
    merged.update(labels)  # the node's own labels win over its engine's
    return NodeDescription(
        Hostname=hostname,
        Platform=Platform(
            Architecture=engine_info.get("Architecture") or platform.machine(),
            OS=engine_info.get("OSType") or platform.system().lower(),
        ),
        Resources=NodeResources(
            NanoCPUs=int(engine_info.get("NCPU") or os.cpu_count() or 1) * 1_000_000_000,
            MemoryBytes=int(engine_info.get("MemTotal") or psutil.virtual_memory().total),
        ),
        Engine=EngineDescription(
            EngineVersion=str(engine_info.get("ServerVersion") or ""),
            Labels=merged or None,
            Plugins=sorted(
                engine_plugins(engine_info) + runtime_plugins, key=lambda p: (p.Type, p.Name)
            ),
        ),
        Runtimes=offered,
    )
