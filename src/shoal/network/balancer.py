"""Which backend a new connection tries first, and which next if that one fails.

Round robin over the backends, as Swarm's IPVS does with its default scheduler, so that
successive connections land on successive tasks. A backend that just refused a connection
goes to the back of the line for a while rather than out of it: if every backend has
refused, the old ones are still worth a try. Pure logic: the caller passes the time in.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.network.routing import Backend

# How long a refusal counts against a backend. Long enough that a burst of connections
# does not each pay a failed connect to a dead task; short enough that a task that was
# restarting is back in rotation well before the manager would have removed it.
REFUSAL_PENALTY = 2.0


class Balancer:
    def __init__(self, backends: Iterable[Backend] = (), penalty: float = REFUSAL_PENALTY) -> None:
        self._backends: tuple[Backend, ...] = ()
        self._next = 0
        self._refused: dict[Backend, float] = {}
        self._penalty = penalty
        self.set_backends(backends)

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self._backends

    def set_backends(self, backends: Iterable[Backend]) -> None:
        """Replace the rotation. The round-robin position carries over so that a change of
        backends does not send the next connections all to the first one."""
        new = tuple(sorted(set(backends)))
        if new == self._backends:
            return
        self._backends = new
        self._refused = {b: t for b, t in self._refused.items() if b in new}
        self._next = self._next % len(new) if new else 0

    def candidates(self, now: float) -> list[Backend]:
        """The backends in the order one new connection should try them; advances the
        rotation by one. Backends that refused within the penalty come last, the most recent
        refusal last of all."""
        n = len(self._backends)
        if n == 0:
            return []
        start = self._next
        self._next = (start + 1) % n
        order = [self._backends[(start + i) % n] for i in range(n)]
        if not self._refused:
            return order
        fresh = [b for b in order if not self._in_penalty(b, now)]
        if len(fresh) == n:
            return order
        penalised = sorted(
            (b for b in order if self._in_penalty(b, now)), key=lambda b: self._refused[b]
        )
        return fresh + penalised

    def pick(self, now: float) -> Backend | None:
        order = self.candidates(now)
        return order[0] if order else None

    def mark_refused(self, backend: Backend, now: float) -> None:
        if backend in self._backends:
            self._refused[backend] = now

    def mark_ok(self, backend: Backend) -> None:
        self._refused.pop(backend, None)

    def _in_penalty(self, backend: Backend, now: float) -> bool:
        t = self._refused.get(backend)
        if t is None:
            return False
        if now - t >= self._penalty:
            del self._refused[backend]
            return False
        return True
