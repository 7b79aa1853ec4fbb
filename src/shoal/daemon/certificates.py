"""This node's certificate, key and trusted roots: kept on disk (mode 0600), served through
the node's transport, and renewed in time.

A node renews its certificate at a random point between 50% and 80% of its life, when its
role changes (a promoted worker needs a manager certificate before it may take part in raft),
and during a root CA rotation (to move to a certificate from the new root). It asks any
manager, over mutual TLS with its current certificate: the manager names it by that
certificate, never by anything in the request. A new key is made for every certificate, and
no key ever leaves the node.
"""

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable

import grpc

from shoal.api.objects import TLSInfo
from shoal.api.types import NodeRole
from shoal.ca.certificates import (
    certificate_identity,
    issued_at,
    issuing_root,
    load_chain,
    new_node_key,
    not_after,
    tls_info,
)
from shoal.ca.renewal import renewal_time
from shoal.clock import Clock, sleep_unless
from shoal.daemon.swarm_state import SwarmDir
from shoal.rpc import TLSMaterial, Transport, from_rpc_error, pb, pb_grpc

log = logging.getLogger(__name__)

RENEW_TIMEOUT = 10.0
RETRY_MIN = 0.5
RETRY_MAX = 30.0


class NodeCertificates:
    def __init__(
        self,
        swarm_dir: SwarmDir,
        transport: Transport,
        clock: Clock,
        managers: Callable[[], list[str]],
        rng: random.Random | None = None,
    ) -> None:
        self._dir = swarm_dir
        self.transport = transport
        self._clock = clock
        self._managers = managers
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        # Called after each new certificate or trust bundle (the node's TLSInfo changes).
        self.on_changed: Callable[[], None] = lambda: None
        # The key-encryption key the node key is kept sealed under on disk (autolock, on a
        # manager); None: kept plain.
        self.kek: bytes | None = None

    # --- what the node holds ----------------------------------------------------------------

    @property
    def material(self) -> TLSMaterial:
        assert self.transport.tls is not None
        return self.transport.tls

    def load(self) -> None:
        """Serve the certificates saved on disk (a sealed key opened with ``kek``); raises
        FileNotFoundError without them, sealed_key.KeySealed or WrongKEK when the key does
        not open."""
        saved = self._dir.load_certificates(self.kek)
        if saved is None:
            raise FileNotFoundError(f"no node certificate in {self._dir.certificates}")
        key, cert, ca = saved
        self.transport.update(TLSMaterial(cert=cert, key=key, ca=ca))

    def install(self, key: bytes, cert: bytes, roots: bytes) -> None:
        self._dir.save_certificates(key, cert, roots, self.kek)
        self.transport.update(TLSMaterial(cert=cert, key=key, ca=roots))
        self.on_changed()

    def reseal(self, kek: bytes | None) -> None:
        """Keep the node key on disk sealed under ``kek`` from now on (None: plain)."""
        self.kek = kek
        self._dir.save_node_key(self.material.key, kek)

    @property
    def role(self) -> NodeRole | None:
        return certificate_identity(self.material.cert).role

    def tls_info(self) -> TLSInfo:
        """Docker's TLSInfo for this node: the roots it trusts, and the subject and key of
        the root that issued its certificate."""
        root = issuing_root(self.material.cert, self.material.ca)
        info = tls_info(root) if root is not None else TLSInfo()
        info.TrustRoot = self.material.ca.decode()
        return info

    def needs_new_certificate(self) -> bool:
        """Whether the certificate is not from the root that signs now (the first trusted
        one), or still carries a rotation's cross-signed root after the rotation ended."""
        roots = load_chain(self.material.ca)
        chain = load_chain(self.material.cert)
        try:
            chain[0].verify_directly_issued_by(roots[0])
        except Exception:
            return True
        return len(roots) == 1 and len(chain) > 1

    # --- changes from the managers ----------------------------------------------------------

    def trust(self, roots: bytes) -> None:
        """The managers' current trust bundle (from the session). A new root means a
        rotation began or ended: trust what they trust, and renew if the certificate is not
        from the signing root."""
        if not roots or roots == self.material.ca:
            return
        log.info("trusted root CAs changed (%d now)", len(load_chain(roots)))
        self.install(self.material.key, self.material.cert, roots)
        if self.needs_new_certificate():
            self.wake()

    def wake(self) -> None:
        """Renew now (the role changed, or a new root signs)."""
        self._wake.set()

    # --- renewal ----------------------------------------------------------------------------

    async def renew(self) -> NodeRole | None:
        """Ask a manager for a new certificate; returns the role it names. Raises the
        managers' error (shoal.errors) or OSError when none answers."""
        async with self._lock:
            key = await asyncio.to_thread(new_node_key)
            last: Exception = OSError("no manager to ask for a certificate")
            for addr in self._managers():
                channel = self.transport.channel(addr)
                try:
                    resp = await pb_grpc.NodeCAStub(channel).IssueNodeCertificate(
                        pb.IssueNodeCertificateRequest(csr=key.csr_pem), timeout=RENEW_TIMEOUT
                    )
                except grpc.aio.AioRpcError as err:
                    last = from_rpc_error(err)
                    continue
                finally:
                    await channel.close()
                self.install(key.key_pem, resp.certificate, resp.root_ca or self.material.ca)
                log.info("new node certificate: role %s", resp.role)
                return self.role
            raise last

    def next_renewal(self) -> dt.datetime:
        cert = self.material.cert
        return renewal_time(issued_at(cert), not_after(cert), self._rng)

    async def run(self) -> None:
        """Renew when it is time or when woken; on failure try again, backing off."""
        retry = RETRY_MIN
        due = self.next_renewal()
        while True:
            wait = (due - self._clock.now()).total_seconds()
            if wait > 0 and not self._wake.is_set():
                await sleep_unless(self._clock, wait, self._wake)
                if not self._wake.is_set() and self._clock.now() < due:
                    continue
            self._wake.clear()
            try:
                await self.renew()
            except Exception as err:  # the managers may be unreachable for a while
                log.warning("could not renew the node certificate: %s", err)
                await self._clock.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
                self._wake.set()  # try again at once after the pause
                continue
            retry = RETRY_MIN
            due = self.next_renewal()
