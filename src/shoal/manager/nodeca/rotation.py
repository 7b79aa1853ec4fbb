"""The leader's root CA rotation (``swarm ca --rotate``), without downtime.

1. ``Spec.CAConfig.ForceRotate`` moves: a new root CA is made, and its key cross-signed by the
   old root. From then on managers sign node certificates with the new root and hand out the
   cross-signed root with them, so a peer that still trusts only the old root accepts them;
   every node is told (in its session) to trust both roots, and renews.
2. Once every node that is not down reports (its description's TLSInfo) a certificate from
   the new root, the new root becomes the only one: the old root and its key are dropped,
   the join tokens are made anew (they pin the root's digest), and nodes are told to trust
   only the new root.

The decisions are pure functions of the cluster and its nodes (``begin_rotation``,
``rotation_done``, ``finish_rotation``); ``RootRotator`` applies them.
"""

import asyncio
import logging

from shoal.api.objects import Cluster, JoinTokens, Node, RootCA, RootRotation
from shoal.api.types import NodeState
from shoal.ca import tokens
from shoal.ca.certificates import root_tls_info
from shoal.ca.rootca import RootCAMaterial, create_root_ca, cross_sign
from shoal.clock import Clock
from shoal.store import MemoryStore, Tx

log = logging.getLogger(__name__)

INTERVAL = 1.0


def rotation_requested(cluster: Cluster) -> bool:
    forced = cluster.Spec.CAConfig.ForceRotate or 0
    return cluster.RootCA.RootRotation is None and forced != cluster.RootCA.LastForcedRotation


def begin_rotation(cluster: Cluster, new_root: RootCAMaterial) -> Cluster:
    old = cluster.RootCA
    changed = cluster.clone()
    changed.RootCA.RootRotation = RootRotation(
        CACert=new_root.cert_pem.decode(),
        CAKey=new_root.key_pem.decode(),
        CrossSignedCACert=cross_sign(
            new_root.cert_pem, old.CACert.encode(), old.CAKey.encode()
        ).decode(),
    )
    changed.RootCA.LastForcedRotation = cluster.Spec.CAConfig.ForceRotate or 0
    # The cluster's TLSInfo stays the current root until the rotation ends, as in Swarm.
    changed.RootRotationInProgress = True
    return changed


def rotation_done(cluster: Cluster, nodes: list[Node]) -> bool:
    """Whether every node that is up holds a certificate from the new root."""
    if cluster.RootCA.RootRotation is None:
        return False
    want = root_tls_info(cluster.RootCA.RootRotation.CACert.encode()).CertIssuerPublicKey
    for node in nodes:
        if node.Status.State == NodeState.DOWN:
            continue  # a node that comes back later renews through the cross-signed root
        info = node.Description.TLSInfo if node.Description else None
        if info is None or info.CertIssuerPublicKey != want:
            return False
    return True


def finish_rotation(cluster: Cluster) -> Cluster:
    rotation = cluster.RootCA.RootRotation
    assert rotation is not None
    ca = rotation.CACert.encode()
    changed = cluster.clone()
    changed.RootCA = RootCA(
        CACert=rotation.CACert,
        CAKey=rotation.CAKey,
        CACertHash=tokens.ca_digest(ca),
        JoinTokens=JoinTokens(Worker=tokens.generate(ca), Manager=tokens.generate(ca)),
        LastForcedRotation=cluster.RootCA.LastForcedRotation,
    )
    changed.RootRotationInProgress = False
    changed.TLSInfo = root_tls_info(ca)
    return changed


class RootRotator:
    """Runs while this manager leads."""

    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def run(self) -> None:
        with self.store.watch(kinds={"cluster", "node"}) as sub:
            while True:
                await self.reconcile()
                await sub.settle(INTERVAL)

    async def reconcile(self) -> None:
        view = self.store.view()
        cluster = view.cluster()
        if cluster is None:
            return
        if rotation_requested(cluster):
            new_root = await asyncio.to_thread(create_root_ca, self.clock.now())

            def start(tx: Tx) -> None:
                current = tx.cluster()
                if current is not None and rotation_requested(current):
                    tx.update(begin_rotation(current, new_root))

            await self.store.update(start)
            log.info("root CA rotation started")
        elif rotation_done(cluster, view.nodes()):

            def finish(tx: Tx) -> None:
                current = tx.cluster()
                if current is not None and rotation_done(current, tx.nodes()):
                    tx.update(finish_rotation(current))

            await self.store.update(finish)
            log.info("root CA rotation finished: the new root is the only one trusted")
