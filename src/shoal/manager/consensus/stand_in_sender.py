"""The thread that sends a leader's heartbeats while its event loop is held up: the I/O half
of ``shoal.raft.stand_in`` (which decides what to send, and when to stop).

Why a thread with gRPC's blocking API rather than a second event loop: all it does is start,
once per heartbeat interval, at most one small call per follower, never waiting for one; the
blocking API's ``future`` does exactly that without a loop of its own, and gRPC's core does
the network I/O outside the interpreter lock. The calls are the ones the raft transport makes
(``Raft.Send``, one message in one chunk), over channels built with the same credentials
(``Transport.blocking_channel``: this node's certificate, a peer that proves it is a
manager), so a follower receives them exactly as it receives the driver's. At most one call
per follower is in flight: a follower that is down or slow costs nothing more.

Addresses are read from ``RaftPeers`` (a dictionary the event loop updates; reading one from
another thread is safe, and a stale address only means a beat lost).
"""

import logging
import threading
from collections.abc import Callable

import grpc

from shoal.manager.consensus.peers import CHANNEL_OPTIONS, chunks
from shoal.raft import codec
from shoal.raft.stand_in import Mode, StandInHeartbeats
from shoal.raft.types import Message
from shoal.rpc import Transport, pb_grpc

log = logging.getLogger(__name__)

CALL_TIMEOUT = 1.0  # seconds for one heartbeat; meanwhile that follower is skipped
LOG_HELD_FROM = 1.0  # seconds: a loop held up this long is worth a line in the log


class StandInSender:
    def __init__(
        self,
        beats: StandInHeartbeats,
        transport: Transport,
        address_of: Callable[[int], str | None],
    ) -> None:
        self.beats = beats
        self.transport = transport
        self.address_of = address_of
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # raft id -> (address, transport generation, channel), as RaftPeers keeps its own
        self._channels: dict[int, tuple[str, int, grpc.Channel]] = {}
        self._calls: dict[int, grpc.Future] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="raft-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending at once; returns once the thread is gone (blocking: briefly)."""
        self._stop.set()
        self.beats.stop()  # wakes the thread
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        mode = Mode.IDLE
        held = 0.0  # the longest silence of the driver seen while standing in
        sent = 0
        try:
            while True:
                self.beats.wait()
                if self._stop.is_set():
                    break
                now_mode = self.beats.mode()
                if now_mode is not Mode.IDLE:
                    held = max(held, self.beats.silence())
                if now_mode is not mode:
                    if now_mode is Mode.STANDING_IN and mode is Mode.IDLE:
                        sent = self.beats.sent
                    _log_change(now_mode, self.beats, held, self.beats.sent - sent)
                    mode = now_mode
                    if mode is Mode.IDLE:
                        held = 0.0
                for m in self.beats.due():
                    self._send(m)
        except Exception:
            log.exception("raft: the stand-in heartbeat thread failed; it sends no more")
        finally:
            self.beats.stop()
            for _, _, channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _send(self, m: Message) -> None:
        addr = self.address_of(m.to)
        if not addr:
            return
        pending = self._calls.get(m.to)
        if pending is not None and not pending.done():
            return
        stub = pb_grpc.RaftStub(self._channel(m.to, addr))
        self._calls[m.to] = stub.Send.future(
            iter(chunks([codec.encode_message(m)])),
            timeout=CALL_TIMEOUT,
            metadata=self.transport.metadata(),
        )

    def _channel(self, raft_id: int, addr: str) -> grpc.Channel:
        generation = self.transport.generation
        current = self._channels.get(raft_id)
        if current is not None and current[:2] == (addr, generation):
            return current[2]
        if current is not None:
            current[2].close()
        channel = self.transport.blocking_channel(addr, CHANNEL_OPTIONS)
        self._channels[raft_id] = (addr, generation, channel)
        return channel


def _log_change(new: Mode, beats: StandInHeartbeats, held: float, sent: int) -> None:
    """Say what an operator wants to know: a loop held up for long enough to have cost an
    election without the stand-in, and a leader let go."""
    if new is Mode.STANDING_IN:
        log.debug("raft: the event loop is late; a thread sends this leader's heartbeats")
    elif new is Mode.GAVE_UP:
        log.error(
            "raft: the event loop has been held up for over %.0f s; this leader's heartbeats "
            "stop, for the other managers to elect another",
            beats.give_up_after,
        )
    elif held >= LOG_HELD_FROM:
        log.warning(
            "raft: the event loop was held up for %.1f s; a thread sent %d heartbeats for "
            "this leader meanwhile",
            held,
            sent,
        )
