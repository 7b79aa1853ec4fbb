"""What to run to make a network sandbox what it should be, from what it has. Pure.

A sandbox is a network namespace holding the network's bridge (``br0``, the gateway
address on it) and its VXLAN device (``vxlan0``), enslaved to the bridge. The VXLAN device
is created from the node's namespace straight into the sandbox (``ip link add vxlan0
netns SANDBOX type vxlan ...``): the kernel opens a VXLAN device's UDP socket in the
namespace of the process that created it, not in the one the device lives in (found by
experiment, kernel 6.x: the port shows in ``ss -uan`` of the node's namespace, bound to
0.0.0.0 even with ``local``). That is Docker's create-then-move in one step, and no
temporary name in the node's namespace.

The plan has three steps, each one batch: what the sandbox must lose first (a VXLAN
device of the wrong VNI, port or local address; it must go before its replacement is
created), the node's namespace (creating the VXLAN device), then the sandbox (bridge,
addresses, enslaving, MTU, up). An empty step runs no process; a sandbox that is already
right plans nothing.

On the bridge, the VXLAN port does not learn (``bridge_slave learning off``): remote MACs
reach it only through the static entries ``set_peers`` writes, so the bridge forwards to the
VXLAN device exactly the peers it was given, and a removed peer's MAC (or one that moved to
a local task) is not kept in the bridge's table by a learned entry for five minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.network.overlay.model import OverlayNetwork
from shoal.network.overlay.names import BRIDGE, VXLAN
from shoal.network.overlay.observed import Link


@dataclass
class SandboxPlan:
    sandbox_first: list[str] = field(default_factory=list)
    node: list[str] = field(default_factory=list)
    sandbox: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.sandbox_first or self.node or self.sandbox)

    @property
    def commands(self) -> int:
        return len(self.sandbox_first) + len(self.node) + len(self.sandbox)


def vxlan_matches(link: Link, vni: int, port: int, local: str | None) -> bool:
    info = link.info
    return (
        link.kind == "vxlan"
        and info.get("id") == vni
        and info.get("port") == port
        and info.get("local") == local
        and info.get("learning") is False
        and info.get("proxy") is True
    )


def plan_sandbox(
    network: OverlayNetwork,
    sandbox_path: str,
    links: dict[str, Link],
    port: int,
    local: str | None,
) -> SandboxPlan:
    """``links``: the sandbox's links as observed (empty for a new namespace).
    ``port``: this node's data-path port; ``local``: its underlay address, if pinned."""
    plan = SandboxPlan()
    mtu = network.mtu
    lo = links.get("lo")
    if lo is None or not lo.up:
        plan.sandbox.append("link set lo up")

    br = links.get(BRIDGE)
    if br is not None and br.kind != "bridge":
        plan.sandbox_first.append(f"link del {BRIDGE}")
        br = None
    if br is None:
        plan.sandbox += [
            f"link add {BRIDGE} mtu {mtu} type bridge",
            f"addr add {network.gateway_cidr} dev {BRIDGE}",
            f"link set {BRIDGE} up",
        ]
    else:
        for addr in br.addresses:
            if addr != network.gateway_cidr:
                plan.sandbox.append(f"addr del {addr} dev {BRIDGE}")
        if network.gateway_cidr not in br.addresses:
            plan.sandbox.append(f"addr add {network.gateway_cidr} dev {BRIDGE}")
        if br.mtu != mtu:
            plan.sandbox.append(f"link set {BRIDGE} mtu {mtu}")
        if not br.up:
            plan.sandbox.append(f"link set {BRIDGE} up")

    vx = links.get(VXLAN)
    if vx is not None and not vxlan_matches(vx, network.vni, port, local):
        plan.sandbox_first.append(f"link del {VXLAN}")
        vx = None
    if vx is None:
        plan.node.append(
            f"link add {VXLAN} netns {sandbox_path} mtu {mtu} type vxlan id {network.vni} "
            f"dstport {port} nolearning proxy" + (f" local {local}" if local else "")
        )
        plan.sandbox += [
            f"link set {VXLAN} master {BRIDGE}",
            f"link set {VXLAN} type bridge_slave learning off",
            f"link set {VXLAN} up",
        ]
    else:
        if vx.master != BRIDGE:
            plan.sandbox.append(f"link set {VXLAN} master {BRIDGE}")
        if vx.master != BRIDGE or vx.port.get("learning") is not False:
            plan.sandbox.append(f"link set {VXLAN} type bridge_slave learning off")
        if vx.mtu != mtu:
            plan.sandbox.append(f"link set {VXLAN} mtu {mtu}")
        if not vx.up:
            plan.sandbox.append(f"link set {VXLAN} up")
    return plan
