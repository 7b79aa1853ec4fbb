"""Named network namespaces (``ip netns``): create or adopt, list, delete.

Kernel facts this relies on, found by experiment (kernel 6.x, iproute2 6.1):
- A named namespace is a bind mount of the namespace on ``/run/netns/<name>``. A file
  there that is not one (a crash between ``ip netns add``'s create and mount, or a
  namespace made by a process in another mount namespace, below) is stale: it is
  replaced.
- ``ip netns del`` only unmounts: the namespace lives on while anything holds it (a
  process in it, an open socket made in it, e.g. a DNS listener). So deleting one of ours
  first deletes its links, which takes a sandbox's VXLAN device (and its VNI on the
  node's data-path port) and every veth pair through it at once; otherwise re-creating
  the network would fail ("A VXLAN device with the specified VNI already exists") for as
  long as the holder lives.
- A process started with ``ip netns exec`` runs in a mount namespace of its own (``/``
  slave): namespaces it names are mounted there only, and everything outside sees an
  empty file in ``/run/netns``. A node in a network namespace of its own must be entered
  with ``nsenter --net=...`` (network namespace only), not ``ip netns exec``.
"""

from __future__ import annotations

import os

from shoal.network.overlay import tools
from shoal.network.overlay.names import NETNS_DIR
from shoal.network.overlay.observed import parse_links


def is_namespace(path: str) -> bool:
    """Whether ``path`` is a network namespace file (nsfs), not a plain or missing file."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


async def ensure_named(name: str) -> tuple[str, bool]:
    """The path of namespace ``name``, creating it (loopback up) if needed; and whether it
    was created."""
    path = f"{NETNS_DIR}/{name}"
    if is_namespace(path):
        return path, False
    if os.path.lexists(path):
        await tools.run(["ip", "netns", "del", name])
    await tools.run(["ip", "netns", "add", name])
    await tools.batch("ip", path, ["link set lo up"])
    return path, True


def list_named(prefix: str) -> list[str]:
    """Names of the namespaces in /run/netns that start with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


async def delete_named(name: str) -> None:
    """Deletes namespace ``name`` and, first, every link in it; nothing if it is gone."""
    path = f"{NETNS_DIR}/{name}"
    if is_namespace(path):
        [doc] = await tools.show("ip", path, ["link show"])
        links = [n for n in parse_links(doc) if n != "lo"]
        await tools.batch("ip", path, [f"link del {n}" for n in links])
    if os.path.lexists(path):
        await tools.run(["ip", "netns", "del", name])
