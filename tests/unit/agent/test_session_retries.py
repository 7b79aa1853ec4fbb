"""When the agent tries the managers again after a session attempt failed, on a fake clock:
a manager that knows no leader (an election is under way) is asked again only after about
an election timeout, a named leader at once, and anything else after the usual backoff."""

import asyncio

import grpc
import grpc.aio
import pytest

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.exec.sim import SimExecutor, SimSettings
from shoal.agent.reconnect import FIRST_DELAY, NO_LEADER_DELAY
from shoal.api.objects import NodeDescription
from shoal.clock import FakeClock
from shoal.manager.consensus.replica import DEFAULT_TICK
from shoal.raft.types import RaftConfig
from shoal.rpc import LEADER_METADATA, Transport

MANAGERS = ["127.0.0.1:1", "127.0.0.1:2"]
LEADER = "127.0.0.1:3"


def refused(leader: str | None) -> grpc.aio.AioRpcError:
    """The dispatcher's answer when it does not lead ("" : it knows no leader), or a failed
    call that is no refusal (``None``: the connection failed)."""
    trailing = (
        grpc.aio.Metadata() if leader is None else grpc.aio.Metadata((LEADER_METADATA, leader))
    )
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), trailing, "refused"
    )


class ScriptedManagers:
    """Stands in for the session attempts: records each (manager, time) and fails it with
    the next error of the script; once that is spent, the session stays up."""

    def __init__(self, clock: FakeClock, errors: list[grpc.aio.AioRpcError]) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.attempts: list[tuple[str, float]] = []

    async def session(self, addr: str, channel: grpc.aio.Channel) -> None:
        self.attempts.append((addr, self.clock.monotonic()))
        if self.errors:
            raise self.errors.pop(0)
        await asyncio.Event().wait()


@pytest.fixture
async def run_agents():
    clock = FakeClock()
    running: list[asyncio.Task] = []

    def run(errors: list[grpc.aio.AioRpcError]) -> ScriptedManagers:
        config = AgentConfig(
            node_id="n1",
            advertise_addr="127.0.0.1:2377",
            managers=list(MANAGERS),
            state_dir=None,
            transport=Transport(),
            description=NodeDescription,
        )
        agent = Agent(config, SimExecutor(SimSettings(), clock), clock)
        managers = ScriptedManagers(clock, errors)
        agent._session = managers.session  # type: ignore[method-assign]
        running.append(asyncio.create_task(agent.run()))
        return managers

    yield clock, run
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_refused_with_no_leader_named_the_agent_waits_an_election_timeout(run_agents):
    clock, run = run_agents
    managers = run([refused(""), refused("")])
    await turns()
    assert managers.attempts == [(MANAGERS[0], 0.0)]
    await clock.advance(NO_LEADER_DELAY - 0.01)
    assert len(managers.attempts) == 1  # the usual backoff would have tried again by now
    await clock.advance(NO_LEADER_DELAY + 0.02)  # the jitter adds at most one delay more
    assert len(managers.attempts) == 2
    addr, at = managers.attempts[1]
    assert addr == MANAGERS[1] and at >= NO_LEADER_DELAY
    # Refused again, the same: no doubling towards a leader that is being elected.
    await clock.advance(2 * NO_LEADER_DELAY)
    assert len(managers.attempts) == 3
    assert managers.attempts[2][1] - at >= NO_LEADER_DELAY


async def test_refused_with_the_leader_named_the_agent_goes_there_at_once(run_agents):
    _, run = run_agents
    managers = run([refused(LEADER)])
    await turns()
    assert managers.attempts == [(MANAGERS[0], 0.0), (LEADER, 0.0)]


async def test_other_failures_keep_the_short_backoff(run_agents):
    clock, run = run_agents
    managers = run([refused(None)])  # no connection: no manager answered
    await turns()
    await clock.advance(FIRST_DELAY)
    assert [addr for addr, _ in managers.attempts] == MANAGERS
    assert managers.attempts[1][1] <= FIRST_DELAY


async def test_nodes_refused_together_come_back_spread_out(run_agents):
    """A leader's end breaks every node's session at once: their next attempts are spread
    over a second election timeout, not all at its end."""
    clock, run = run_agents
    fleet = [run([refused("")]) for _ in range(20)]
    await turns()
    await clock.advance(2 * NO_LEADER_DELAY + 0.01)
    second = [m.attempts[1][1] for m in fleet]
    assert all(NO_LEADER_DELAY <= t <= 2 * NO_LEADER_DELAY for t in second)
    assert max(second) - min(second) >= NO_LEADER_DELAY / 4


def test_the_wait_is_the_managers_election_timeout() -> None:
    """Kept in step with raft by hand (the agent does not import the managers' settings)."""
    assert NO_LEADER_DELAY == pytest.approx(RaftConfig().election_tick * DEFAULT_TICK)
