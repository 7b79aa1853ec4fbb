"""What a node reports about itself: hostname, platform, resources, engine, runtimes."""

import os
import platform

import psutil

import shoal
from shoal.api.objects import (
    EngineDescription,
    EnginePlugin,
    NodeDescription,
    NodeResources,
    Platform,
)


def describe_node(hostname: str, labels: dict[str, str], runtimes: list[str]) -> NodeDescription:
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
            Plugins=[EnginePlugin(Type="Runtime", Name=r) for r in runtimes] or None,
        ),
        Runtimes=list(runtimes),
    )
