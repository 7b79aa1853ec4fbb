"""Raft as a deterministic state machine, in the spirit of etcd's raft library.

No I/O, no clock, no randomness of its own: the driver calls ``tick()`` at a fixed interval,
``step(msg)`` for each message received, ``propose``/``propose_conf_change`` for new entries,
and then collects a ``Ready`` (state to persist, messages to send, entries to apply) and
calls ``advance``. Election timeouts are drawn from the ``random.Random`` it is given, so a
seeded run is exactly reproducible.

Rules, for whoever reads the code next:
- Elections: randomized timeouts in [election_tick, 2*election_tick); pre-vote (a node asks
  whether it could win before it bumps its term, so a node cut off and rejoining does not
  depose a healthy leader); check-quorum (a leader that has not heard from a quorum within an
  election timeout steps down, and followers that heard from a leader within that time ignore
  vote requests: the leader lease). TIMEOUT_NOW campaigns bypass leases.
- A new leader appends an empty entry of its term; only entries of the current term are
  committed by counting replicas (§5.4.2); earlier ones are committed with them.
- Configuration (single-server changes): a change takes effect on a node when it applies the
  entry, and the leader proposes no new change until the previous one is applied, counting
  from the last entry of its log when it took office, so that its own no-op commits first (the
  fix for the single-server change bug Ongaro described in 2015). New members join as
  learners, receive the log without voting, and are promoted once caught up.
- Leadership transfer: the leader stops taking proposals, brings the target up to date and
  sends it TIMEOUT_NOW; a leader that applies its own removal steps down and does the same.
- Linearizable reads (ReadIndex): the leader records its commit index, confirms with a
  heartbeat round that a quorum still follows it, and then the read may be served by any node
  that has applied that index.
"""

import random
from dataclasses import dataclass, field

from shoal.raft import codec
from shoal.raft.log import RaftLog
from shoal.raft.progress import Progress
from shoal.raft.types import (
    CAMPAIGN_TRANSFER,
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    NotLeader,
    PersistentState,
    ProgressState,
    ProposalDropped,
    RaftConfig,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SoftState,
    Status,
)

MT = MessageType
_NO_LIMIT = 1 << 62


@dataclass(slots=True)
class _ReadRequest:
    seq: int  # heartbeats carrying a context >= seq confirm this read
    requester: int
    context: int
    index: int
    acks: set[int] = field(default_factory=set)


class Core:
    def __init__(
        self,
        node_id: int,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        state: PersistentState | None = None,
    ) -> None:
        if node_id == NONE:
            raise ValueError("node id must be non-zero")
        state = state or PersistentState()
        self.id = node_id
        self.cfg = config or RaftConfig()
        self.rng = rng or random.Random(node_id)
        self.log = RaftLog(state)
        self.term = state.hard_state.term
        self.vote = state.hard_state.vote
        self.conf = state.snapshot.conf if state.snapshot else ConfState()
        self.removed = False
        self.role = Role.FOLLOWER
        self.lead = NONE
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self.cfg.election_tick
        self.lead_transferee = NONE
        # A pre-vote request ignored within the leader lease, to answer when it ends.
        self._deferred_pre_vote: Message | None = None
        # Why this node last stopped leading, when it was its own decision or a later term's
        # message (for the log: a step-down under load is otherwise silent).
        self.stepped_down = ""
        self._quorum_misses = 0  # election timeouts in a row a leader heard from no quorum
        self._timeout_now_term = 0
        self.pending_conf_index = 0
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.reads: list[_ReadRequest] = []
        self.reads_before_commit: list[tuple[int, int]] = []
        self.read_seq = 0
        self._prev_hard = state.hard_state
        self._prev_soft = SoftState(NONE, Role.FOLLOWER)
        self._outstanding: Ready | None = None
        self._become_follower(self.term, NONE)

    # --- queries ------------------------------------------------------------------------------

    @property
    def leader(self) -> int:
        return self.lead

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def promotable(self) -> bool:
        return self.id in self.conf.voters and not self.removed

    def quorum(self) -> int:
        return len(self.conf.voters) // 2 + 1

    def committed_in_term(self) -> bool:
        """Has this leader committed an entry of its own term (so its commit index is as high
        as any earlier leader's)?"""
        return self.log.term(self.log.committed) == self.term

    def status(self) -> Status:
        progress = {}
        if self.role is Role.LEADER:
            progress = {i: pr.status() for i, pr in self.prs.items()}
        return Status(
            id=self.id,
            term=self.term,
            vote=self.vote,
            role=self.role,
            leader=self.lead,
            commit=self.log.committed,
            applied=self.log.applied,
            last_index=self.log.last_index(),
            conf=self.conf,
            removed=self.removed,
            lead_transferee=self.lead_transferee,
            progress=progress,
        )

    def reachable(self, node_id: int) -> bool | None:
        """The leader's opinion of a member: heard from within an election timeout. None when
        this node is not the leader (it has no opinion; ask the transport)."""
        if self.role is not Role.LEADER or node_id not in self.prs:
            return None
        return node_id == self.id or self.prs[node_id].ticks_since_heard < self.cfg.election_tick

    def best_transferee(self) -> int:
        """The voter, other than this leader, best placed to take over: recently heard from,
        with the most of the log. NONE if there is none."""
        best, best_key = NONE, (-1, -1)
        for i in sorted(self.conf.voters):
            pr = self.prs.get(i)
            if i == self.id or pr is None:
                continue
            key = (int(pr.ticks_since_heard < self.cfg.election_tick), pr.match)
            if key > best_key:
                best, best_key = i, key
        return best

    # --- inputs -------------------------------------------------------------------------------

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (as an election timeout would)."""
        self._hup(transfer=False)

    def propose(self, data: bytes) -> int:
        """Append ``data`` to the log; return its index. The entry is committed once it shows
        up in ``committed_entries`` with this index and the current term."""
        self._check_can_propose()
        return self._append_and_broadcast(EntryType.NORMAL, data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        self._check_can_propose()
        if self.pending_conf_index > self.log.applied:
            raise ProposalDropped("raft: a configuration change is already in progress")
        problem = self.conf.problem_with(cc)
        if problem:
            raise ProposalDropped(f"raft: {problem}")
        index = self._append_and_broadcast(EntryType.CONF_CHANGE, codec.encode_conf_change(cc))
        self.pending_conf_index = index
        return index

    def transfer_leadership(self, to: int) -> None:
        """Hand leadership to voter ``to``. Proposals are refused until it takes over or the
        transfer times out (after an election timeout)."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if to == self.id:
            return
        if to not in self.conf.voters:
            raise ProposalDropped(f"raft: cannot transfer leadership to {to}: not a voter")
        if self.lead_transferee == to:
            return
        self.lead_transferee = to
        self.election_elapsed = 0
        pr = self.prs[to]
        if pr.match == self.log.last_index():
            self._send(MT.TIMEOUT_NOW, to)
        else:
            self._send_append(to)

    def read_index(self, context: int) -> None:
        """Ask for a linearizable read point; a ``ReadState(context, index)`` follows in a
        later Ready unless leadership changes (the driver times out and retries). ``context``
        must be unique among this node's outstanding reads."""
        if self.role is Role.LEADER:
            self._leader_read(self.id, context)
        elif self.lead != NONE:
            self._send(MT.READ_INDEX, self.lead, context=context)
        else:
            raise NotLeader(NONE)

    def report_unreachable(self, node_id: int) -> None:
        """The transport failed to deliver a message to ``node_id``."""
        pr = self.prs.get(node_id) if self.role is Role.LEADER else None
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        """The transport finished (or failed) sending a snapshot to ``node_id``."""
        pr = self.prs.get(node_id) if self.role is Role.LEADER else None
        if pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        # Wait for the follower's answer (or a heartbeat's) before probing.
        pr.probe_sent = True

    def step(self, m: Message) -> None:
        if m.term > self.term:
            was_leader = self.role is Role.LEADER
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                forced = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.cfg.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.cfg.election_tick
                )
                if in_lease and not forced:
                    if m.type is MT.PRE_VOTE:
                        # Answered when the lease ends, if it still stands (``_tick_election``).
                        self._deferred_pre_vote = m
                    return
            if m.type is MT.PRE_VOTE or (m.type is MT.PRE_VOTE_RESP and not m.reject):
                pass  # about a term that may never start; ours stays
            elif m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                self._become_follower(m.term, m.from_)
            else:
                # Not from a leader: our election timer keeps running (the Raft paper's rule;
                # etcd restarts it). Otherwise candidates whose logs are too stale to win keep
                # restarting the timers of those that could, and no leader emerges.
                elapsed = self.election_elapsed
                self._become_follower(m.term, NONE)
                self.election_elapsed = elapsed
            if was_leader and self.role is not Role.LEADER:
                self.stepped_down = f"a message of a later term ({m.term}) from {m.from_:x}"
        elif m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
                # A deposed leader that cannot hear the new one would otherwise keep its
                # followers' leases alive; tell it our term so it steps down.
                self._send(MT.APP_RESP, m.from_)
            elif m.type is MT.PRE_VOTE:
                self._send(MT.PRE_VOTE_RESP, m.from_, reject=True)
            return

        if m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    # --- Ready ----------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        if self._outstanding is not None:
            return False
        return bool(
            self.msgs
            or self.read_states
            or self.log.pending_snapshot is not None
            or self.log.unstable_entries()
            or self.log.committed > self.log.applied
            or self._hard_state() != self._prev_hard
            or self._soft_state() != self._prev_soft
        )

    def ready(self) -> Ready:
        if self._outstanding is not None:
            raise RuntimeError("advance() the previous Ready first")
        hs = self._hard_state()
        soft = self._soft_state()
        rd = Ready(
            hard_state=hs if hs != self._prev_hard else None,
            entries=self.log.unstable_entries(),
            snapshot=self.log.pending_snapshot,
            committed_entries=self.log.committed_to_apply(_NO_LIMIT),
            messages=self.msgs,
            read_states=self.read_states,
            soft_state=soft if soft != self._prev_soft else None,
        )
        self.msgs = []
        self.read_states = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver has persisted, sent and applied everything in ``rd``."""
        if rd is not self._outstanding:
            raise RuntimeError("advance() takes the Ready last returned by ready()")
        self._outstanding = None
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.snapshot is not None and self.log.pending_snapshot is rd.snapshot:
            self.log.pending_snapshot = None
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        for e in rd.committed_entries:
            if e.index != self.log.applied + 1:
                continue  # the log was replaced by a snapshot meanwhile
            if e.type is EntryType.CONF_CHANGE:
                self._apply_conf_change(codec.decode_conf_change(e.data))
            self.log.applied = e.index
        if (
            self._timeout_now_term == self.term
            and self.role is Role.FOLLOWER
            and not self._unapplied_conf_change()
        ):
            self._timeout_now_term = 0
            self._hup(transfer=True)

    def take_heartbeats(self, durable_term: int) -> list[Message]:
        """Take the heartbeats and heartbeat answers queued since the last Ready, for the
        driver to send before the next Ready (while it applies a long one, issue 15): a
        leader silent for an election timeout is replaced, and one that hears no answers
        steps down (check_quorum). Neither message claims anything about this node's log, so
        neither waits for a write to disk; both speak for the term, so they are taken only
        while the term is the one on disk (``durable_term``). The rest stay, in order."""
        if self.term != durable_term:
            return []
        beats = (MT.HEARTBEAT, MT.HEARTBEAT_RESP)
        taken = [m for m in self.msgs if m.type in beats and m.term == self.term]
        if taken:
            self.msgs = [m for m in self.msgs if not (m.type in beats and m.term == self.term)]
        return taken

    # --- snapshots --------------------------------------------------------------------------

    def create_snapshot(self, data: bytes) -> Snapshot:
        """Record the application's state ``data``, taken after applying everything up to the
        applied index, as the snapshot to send to followers too far behind."""
        index = self.log.applied
        term = self.log.term(index)
        if term is None:
            raise ValueError(f"no term for applied index {index}")
        snap = Snapshot(index=index, term=term, conf=self.conf, data=data)
        self.log.snapshot = snap
        return snap

    def compact(self, index: int) -> tuple[int, int]:
        """Drop entries up to ``index`` from memory; returns the new log offset (index, term)
        for storage to do the same."""
        self.log.compact(index)
        return self.log.offset, self.log.offset_term

    # --- elections ---------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        deferred = self._deferred_pre_vote
        if deferred is not None and self.election_elapsed >= self.cfg.election_tick:
            # The lease this node ignored a pre-vote under is over: answer it now rather than
            # leave its sender waiting for its next election timeout, 1-2 s on. After a leader
            # was killed under a 1,000-node fleet, the survivors timed out 0.3 s apart and
            # the one that could win had been ignored by the other: two of four elections
            # took 0.9 and 1.3 s longer than they needed (issue 15). Answered once, as it
            # would have been on arrival; a request now stale is refused as any other is.
            self._deferred_pre_vote = None
            self.step(deferred)
        if self.promotable() and self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            self._hup(transfer=False)

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        last = self.log.last_index()
        for i, pr in self.prs.items():
            if i == self.id:
                continue
            pr.ticks_since_heard += 1
            if pr.state is ProgressState.SNAPSHOT:
                pr.ticks_in_state += 1
                if pr.ticks_in_state >= self.cfg.snapshot_timeout_ticks:
                    pr.become_probe()
            elif pr.state is ProgressState.REPLICATE:
                if pr.match >= last:
                    pr.ticks_in_state = 0
                    continue
                pr.ticks_in_state += 1
                if pr.ticks_in_state >= self.cfg.stall_ticks:
                    # An append was lost: nothing fills the follower's gap until we go back.
                    pr.become_probe()
                    self._send_append(i)
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                active = sum(
                    1
                    for v in self.conf.voters
                    if v == self.id or (v in self.prs and self.prs[v].recent_active)
                )
                self._quorum_misses = self._quorum_misses + 1 if active < self.quorum() else 0
                if self._quorum_misses >= self.cfg.check_quorum_misses:
                    self.stepped_down = (
                        f"heard from {active - 1} of {len(self.conf.voters) - 1} other members "
                        f"in {self._quorum_misses} election timeouts (check quorum)"
                    )
                    self._become_follower(self.term, NONE)
                    return
                for i, pr in self.prs.items():
                    if i != self.id:
                        pr.recent_active = False
            if self.lead_transferee != NONE:
                self.lead_transferee = NONE  # the transfer timed out
        if self.role is Role.LEADER and self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat(self.reads[-1].seq if self.reads else 0)

    def _hup(self, transfer: bool) -> None:
        if self.role is Role.LEADER or not self.promotable():
            return
        # A committed but unapplied configuration change may remove us or change the quorum.
        if self._unapplied_conf_change():
            return
        if self.cfg.pre_vote and not transfer:
            self._campaign(pre=True, transfer=False)
        else:
            self._campaign(pre=False, transfer=transfer)

    def _unapplied_conf_change(self) -> bool:
        return any(e.type is EntryType.CONF_CHANGE for e in self.log.committed_to_apply(_NO_LIMIT))

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_pre_candidate()
            term, kind = self.term + 1, MT.PRE_VOTE
        else:
            self._become_candidate()
            term, kind = self.term, MT.VOTE
        self.votes[self.id] = True
        if self._tally() == "won":
            if pre:
                self._campaign(pre=False, transfer=False)
            else:
                self._become_leader()
            return
        for v in sorted(self.conf.voters):
            if v != self.id:
                self._send(
                    kind,
                    v,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=CAMPAIGN_TRANSFER if transfer else 0,
                )

    def _tally(self) -> str:
        granted = sum(1 for v, ok in self.votes.items() if ok and v in self.conf.voters)
        rejected = sum(1 for v, ok in self.votes.items() if not ok and v in self.conf.voters)
        if granted >= self.quorum():
            return "won"
        if rejected >= self.quorum():
            return "lost"
        return "pending"

    def _handle_vote_request(self, m: Message) -> None:
        resp = MT.VOTE_RESP if m.type is MT.VOTE else MT.PRE_VOTE_RESP
        can_vote = (
            self.vote == m.from_
            or (self.vote == NONE and self.lead == NONE)
            or (m.type is MT.PRE_VOTE and m.term > self.term)
        )
        if m.type is MT.PRE_VOTE and self._rival_pre_candidate(m):
            self._send(resp, m.from_, reject=True)
            return
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # Granting a pre-vote answers at the future term the candidate asked about.
            self._send(resp, m.from_, term=m.term)
            if m.type is MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.from_
        else:
            self._send(resp, m.from_, reject=True)

    def _rival_pre_candidate(self, m: Message) -> bool:
        """Whether ``m`` is a pre-vote from a rival this pre-candidate wins a tie against:
        a node of a lower ID with the same log, in the first election timeout of this node's
        own round.

        Two pre-candidates that each grant the other's pre-vote before hearing of their own
        both become candidates of one term, each votes for itself, and the vote is split: the
        next round comes an election timeout (1-2 s) later. When messages wait 0.1-0.3 s for a
        busy manager's loop (a 1,000-node fleet, issue 15), the survivors of a killed leader
        often time out within that of each other: 27% of simulated failovers of three
        managers took more than one round, 1.8% with the tie broken (bench/election_rounds.py).
        Only a pre-vote is refused, which promises nothing (safety is untouched), and only for
        one election timeout of the round: a rival left waiting is granted after that, should
        this node fail to win (it cannot reach the others, say)."""
        return (
            self.role is Role.PRE_CANDIDATE
            and m.from_ < self.id
            and m.index == self.log.last_index()
            and m.log_term == self.log.last_term()
            and self.election_elapsed < self.cfg.election_tick
        )

    def _step_candidate(self, m: Message) -> None:
        wanted = MT.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MT.VOTE_RESP
        if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
            self._become_follower(m.term, m.from_)
            self._step_follower(m)
        elif m.type is wanted:
            self.votes.setdefault(m.from_, not m.reject)
            outcome = self._tally()
            if outcome == "won":
                if self.role is Role.PRE_CANDIDATE:
                    self._campaign(pre=False, transfer=False)
                else:
                    self._become_leader()
            elif outcome == "lost":
                self._become_follower(self.term, NONE)

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._quorum_misses = 0
        self.randomized_timeout = self.cfg.election_tick + self.rng.randrange(
            self.cfg.election_tick
        )
        self.votes = {}
        self.lead_transferee = NONE
        self._deferred_pre_vote = None  # a new term or leader: whatever it asked is moot
        self._timeout_now_term = 0
        self.pending_conf_index = 0
        self.prs = {}
        self.reads = []
        self.reads_before_commit = []

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # Neither term nor vote change: a pre-candidate has promised nothing. Its round's
        # clock starts (as after an election timeout, when asked to campaign at once too).
        self.votes = {}
        self.election_elapsed = 0
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        last = self.log.last_index()
        for i in self.conf.members:
            self.prs[i] = Progress(match=0, next=last + 1, learner=i in self.conf.learners)
        if self.id not in self.prs:
            self.prs[self.id] = Progress(next=last + 1)
        self.prs[self.id].match = last
        # No configuration change until everything in our log is applied, including our no-op:
        # a change from an earlier term may still be in flight until then.
        self.pending_conf_index = self._append_and_broadcast(EntryType.NORMAL, b"")

    # --- replication --------------------------------------------------------------------------

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee != NONE:
            raise ProposalDropped("raft: leadership transfer in progress")

    def _append_and_broadcast(self, kind: EntryType, data: bytes) -> int:
        index = self.log.last_index() + 1
        self.log.append([Entry(index=index, term=self.term, type=kind, data=data)])
        me = self.prs.get(self.id)
        if me is not None:
            me.maybe_update(index)
        self._maybe_commit()
        self._broadcast_append()
        return index

    def _maybe_commit(self) -> bool:
        matches = sorted(
            (self.prs[v].match for v in self.conf.voters if v in self.prs), reverse=True
        )
        if len(matches) < self.quorum():
            return False
        index = matches[self.quorum() - 1]
        if index > self.log.committed and self.log.term(index) == self.term:
            was_committed_in_term = self.committed_in_term()
            self.log.commit_to(index)
            if not was_committed_in_term:
                self._release_reads_waiting_commit()
            return True
        return False

    def _broadcast_append(self) -> None:
        for i in sorted(self.prs):
            if i != self.id:
                self._send_append(i)

    def _send_append(self, to: int, send_if_empty: bool = True) -> bool:
        pr = self.prs[to]
        if pr.paused(self.cfg.max_inflight):
            return False
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None or pr.next <= self.log.offset:
            return self._send_snapshot(to, pr)
        entries = self.log.slice(pr.next, self.log.last_index() + 1, self.cfg.max_size_per_msg)
        if not entries and not send_if_empty:
            return False
        self._send(
            MT.APP,
            to,
            index=prev,
            log_term=prev_term,
            entries=entries,
            commit=self.log.committed,
        )
        pr.sent(entries[-1].index if entries else None)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        snap = self.log.snapshot
        if snap is None:
            raise AssertionError("log compacted without a snapshot")
        pr.become_snapshot(snap.index)
        self._send(MT.SNAP, to, snapshot=snap)
        return True

    def heartbeat_commits(self) -> tuple[tuple[int, int], ...]:
        """For each follower (this leader's progress), the commit index its heartbeat tells
        it: no further than its match, the entries it is known to hold."""
        return tuple(
            (i, min(self.prs[i].match, self.log.committed))
            for i in sorted(self.prs)
            if i != self.id
        )

    def _broadcast_heartbeat(self, context: int) -> None:
        for i, commit in self.heartbeat_commits():
            self._send(MT.HEARTBEAT, i, commit=commit, context=context)

    def _step_leader(self, m: Message) -> None:
        if m.type is MT.READ_INDEX:
            self._leader_read(m.from_, m.context)
            return
        pr = self.prs.get(m.from_)
        if pr is None:
            return
        if m.type is MT.APP_RESP:
            pr.recent_active = True
            pr.ticks_since_heard = 0
            self._handle_append_response(m, pr)
        elif m.type is MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.ticks_since_heard = 0
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight:
                pr.inflight.popleft()
            if pr.match < self.log.last_index():
                self._send_append(m.from_)
            if m.context:
                self._ack_reads(m.from_, m.context)

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                hint, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decrease_to(m.index, hint):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.from_)
            return
        was_paused = pr.paused(self.cfg.max_inflight)
        if not pr.maybe_update(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_replicate()
        elif pr.state is ProgressState.REPLICATE:
            pr.free_inflight(m.index)
        if self._maybe_commit():
            self._broadcast_append()
        elif was_paused:
            self._send_append(m.from_)
        while self._send_append(m.from_, send_if_empty=False):
            pass
        if m.from_ == self.lead_transferee and pr.match == self.log.last_index():
            self._send(MT.TIMEOUT_NOW, m.from_)

    def _step_follower(self, m: Message) -> None:
        if m.type is MT.APP:
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_append(m)
        elif m.type is MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.from_
            self.log.commit_to(m.commit)
            self._send(MT.HEARTBEAT_RESP, m.from_, context=m.context)
        elif m.type is MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_snapshot(m)
        elif m.type is MT.TIMEOUT_NOW:
            if self._unapplied_conf_change():
                # Typically the very change that removed the old leader, committed but not
                # yet applied here: campaign once it is.
                self._timeout_now_term = self.term
            else:
                self._hup(transfer=True)
        elif m.type is MT.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.context, m.index))

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(MT.APP_RESP, m.from_, index=self.log.committed)
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(MT.APP_RESP, m.from_, index=last_new)
            return
        hint, hint_term = self.log.find_conflict_by_term(
            min(m.index, self.log.last_index()), m.log_term
        )
        self._send(
            MT.APP_RESP, m.from_, index=m.index, reject=True, reject_hint=hint, log_term=hint_term
        )

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        assert snap is not None
        if snap.index <= self.log.committed:
            pass  # nothing new
        elif self.log.match_term(snap.index, snap.term):
            # We have the entries already; they are just committed now.
            self.log.commit_to(snap.index)
        else:
            self.log.restore(snap)
            self.conf = snap.conf
            self._send(MT.APP_RESP, m.from_, index=self.log.last_index())
            return
        # Only what is committed is known to match the leader: entries past it may be a
        # deposed leader's, and must not be counted as replicated.
        self._send(MT.APP_RESP, m.from_, index=self.log.committed)

    # --- reads --------------------------------------------------------------------------------

    def _leader_read(self, requester: int, context: int) -> None:
        if len(self.conf.voters) == 1 and self.id in self.conf.voters:
            self._answer_read(requester, context, self.log.committed)
        elif not self.committed_in_term():
            # Until our no-op commits, our commit index may lag an earlier leader's.
            self.reads_before_commit.append((requester, context))
        else:
            self.read_seq += 1
            req = _ReadRequest(self.read_seq, requester, context, self.log.committed, {self.id})
            self.reads.append(req)
            self._broadcast_heartbeat(req.seq)

    def _release_reads_waiting_commit(self) -> None:
        waiting, self.reads_before_commit = self.reads_before_commit, []
        for requester, context in waiting:
            self._leader_read(requester, context)

    def _ack_reads(self, voter: int, context: int) -> None:
        if voter not in self.conf.voters:
            return
        for req in self.reads:
            if req.seq <= context:
                req.acks.add(voter)
        while self.reads:
            req = self.reads[0]
            if sum(1 for v in req.acks if v in self.conf.voters) < self.quorum():
                break
            self.reads.pop(0)
            self._answer_read(req.requester, req.context, req.index)

    def _answer_read(self, requester: int, context: int, index: int) -> None:
        if requester == self.id:
            self.read_states.append(ReadState(context, index))
        else:
            self._send(MT.READ_INDEX_RESP, requester, index=index, context=context)

    # --- configuration --------------------------------------------------------------------------

    def _apply_conf_change(self, cc: ConfChange) -> None:
        if self.conf.problem_with(cc):
            return  # refused deterministically on every node
        self.conf = self.conf.after(cc)
        if cc.node_id == self.id and cc.type is ConfChangeType.REMOVE:
            self.removed = True
        if self.role is not Role.LEADER:
            return
        if cc.type is ConfChangeType.REMOVE:
            self.prs.pop(cc.node_id, None)
            if self.lead_transferee == cc.node_id:
                self.lead_transferee = NONE
        else:
            pr = self.prs.get(cc.node_id)
            if pr is None:
                pr = self.prs[cc.node_id] = Progress(next=self.log.last_index() + 1)
                self._send_append(cc.node_id)
            pr.learner = cc.node_id in self.conf.learners
        if self.id not in self.conf.voters:
            # Removed (or never a voter): hand over to whoever is most up to date, at once
            # rather than after an election timeout.
            target = self.best_transferee()
            self._become_follower(self.term, NONE)
            if target != NONE:
                self._send(MT.TIMEOUT_NOW, target)
            return
        if self._maybe_commit():
            self._broadcast_append()

    # --- plumbing -----------------------------------------------------------------------------

    def _send(self, kind: MessageType, to: int, term: int | None = None, **fields: object) -> None:
        msg = Message(type=kind, to=to, from_=self.id, term=self.term if term is None else term)
        for k, v in fields.items():
            setattr(msg, k, v)
        self.msgs.append(msg)

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)


def bootstrap(voters: dict[int, bytes]) -> PersistentState:
    """The initial state of every founding member of a new cluster: one committed entry per
    voter adding it (with its context). Every founder must start from the same state."""
    entries = [
        Entry(
            index=i,
            term=1,
            type=EntryType.CONF_CHANGE,
            data=codec.encode_conf_change(ConfChange(ConfChangeType.ADD_VOTER, node_id, ctx)),
        )
        for i, (node_id, ctx) in enumerate(sorted(voters.items()), start=1)
    ]
    return PersistentState(hard_state=HardState(term=1, commit=len(entries)), entries=entries)


def conf_at_end(state: PersistentState) -> ConfState:
    """The configuration after applying every entry of a persisted log, committed or not."""
    conf = state.snapshot.conf if state.snapshot else ConfState()
    snap_index = state.snapshot.index if state.snapshot else 0
    for e in state.entries:
        if e.index > snap_index and e.type is EntryType.CONF_CHANGE:
            conf = conf.after(codec.decode_conf_change(e.data))
    return conf


def force_new_cluster(state: PersistentState, node_id: int) -> PersistentState:
    """Recover a cluster that lost quorum from one survivor (``swarm init
    --force-new-cluster``): keep its whole log, consider it committed, and append entries that
    remove every other member, in a new term, so it alone is the quorum."""
    conf = conf_at_end(state)
    last = state.offset + len(state.entries)
    term = state.hard_state.term + 1
    entries = list(state.entries)
    changes = [] if node_id in conf.voters else [ConfChange(ConfChangeType.ADD_VOTER, node_id)]
    changes += [ConfChange(ConfChangeType.REMOVE, o) for o in sorted(conf.members - {node_id})]
    for cc in changes:
        last += 1
        entries.append(Entry(last, term, EntryType.CONF_CHANGE, codec.encode_conf_change(cc)))
    return PersistentState(
        hard_state=HardState(term=term, vote=NONE, commit=last),
        snapshot=state.snapshot,
        offset=state.offset,
        offset_term=state.offset_term,
        entries=entries,
    )
