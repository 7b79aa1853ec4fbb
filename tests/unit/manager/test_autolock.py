"""A manager follows the cluster's autolock setting: it seals its keys under the unlock key
when autolock is turned on or the key rotates, and unseals them when it is turned off."""

import asyncio
from collections.abc import Callable
from typing import Any

from shoal.api.ids import new_id
from shoal.api.objects import Cluster
from shoal.clock import FakeClock
from shoal.manager.autolock import RECHECK, AutolockFollower, needs_reseal, same_key
from shoal.manager.controlapi.unlock_keys import updated_unlock_keys
from shoal.store import MemoryStore, Tx


def test_when_to_reseal() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert not needs_reseal(None, None)
    assert not needs_reseal(a, b"a" * 32)
    assert needs_reseal(None, a)  # autolock turned on
    assert needs_reseal(a, None)  # turned off
    assert needs_reseal(a, b)  # the key rotated
    assert same_key(None, None) and same_key(a, b"a" * 32)
    assert not same_key(a, None) and not same_key(None, a) and not same_key(a, b)


class Sealer:
    def __init__(self, fail: int = 0) -> None:
        self.sealed_under: list[bytes | None] = []
        self.fail = fail
        self.attempts = 0

    async def __call__(self, kek: bytes | None) -> None:
        self.attempts += 1
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.sealed_under.append(kek)


async def set_autolock(store: MemoryStore, on: bool, rotate: bool = False) -> bytes | None:
    def fn(tx: Tx) -> None:
        cluster = tx.cluster()
        assert cluster is not None
        cluster = cluster.clone()
        cluster.Spec.EncryptionConfig.AutoLockManagers = on
        cluster.UnlockKeys = updated_unlock_keys(cluster.UnlockKeys, on, rotate)
        tx.update(cluster)

    await store.update(fn)
    cluster = store.view().cluster()
    assert cluster is not None
    return cluster.manager_unlock_key()


async def settle(condition: Callable[[], Any]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_follows_autolock_on_rotation_and_off(
    store: MemoryStore, clock: FakeClock, background: Callable[[Any], Any]
) -> None:
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    seal = Sealer()
    follower = background(AutolockFollower(store, clock, None, seal))
    await asyncio.sleep(0)
    assert seal.sealed_under == []  # autolock off, keys plain: nothing to do

    key = await set_autolock(store, True)
    await settle(lambda: seal.sealed_under == [key])
    assert follower.kek == key

    await set_autolock(store, True)  # the same key: no new seal
    rotated = await set_autolock(store, True, rotate=True)
    await settle(lambda: seal.sealed_under == [key, rotated])

    await set_autolock(store, False)
    await settle(lambda: seal.sealed_under == [key, rotated, None])
    assert follower.kek is None


async def test_a_manager_locked_under_an_old_key_moves_to_the_current_one(
    store: MemoryStore, clock: FakeClock, background: Callable[[Any], Any]
) -> None:
    """A manager down while the key rotated was unlocked with the key it had: it seals
    under the cluster's key as soon as it reads the cluster."""
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    current = await set_autolock(store, True)
    seal = Sealer()
    background(AutolockFollower(store, clock, b"old key".ljust(32), seal))
    await settle(lambda: seal.sealed_under == [current])


async def test_a_failed_reseal_is_tried_again(
    store: MemoryStore, clock: FakeClock, background: Callable[[Any], Any]
) -> None:
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    seal = Sealer(fail=1)
    follower = background(AutolockFollower(store, clock, None, seal))
    key = await set_autolock(store, True)
    await settle(lambda: seal.attempts == 1 and clock.sleepers > 0)
    assert seal.sealed_under == [] and follower.kek is None  # failed: still plain
    await clock.advance(RECHECK)
    await settle(lambda: seal.sealed_under == [key])
    assert follower.kek == key


async def test_keys_left_under_different_keys_are_sealed_again(
    store: MemoryStore, clock: FakeClock, background: Callable[[Any], Any]
) -> None:
    """A manager stopped while it moved its keys (its node key and raft keys under different
    KEKs) seals all of them again, even under the key it already has for one."""
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    key = await set_autolock(store, True)
    seal = Sealer()
    follower = background(AutolockFollower(store, clock, key, seal, settled=False))
    await settle(lambda: seal.sealed_under == [key])
    assert follower.settled
    await clock.advance(RECHECK)
    assert seal.sealed_under == [key]  # once


async def test_quiet_spells_do_not_stop_the_follower(
    store: MemoryStore, clock: FakeClock, background: Callable[[Any], Any]
) -> None:
    """With no change for a while it looks again every RECHECK seconds, and follows the
    next change (a store replaced by a snapshot sends no event: only the look finds it)."""
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    seal = Sealer()
    background(AutolockFollower(store, clock, None, seal))
    for _ in range(3):
        await settle(lambda: clock.sleepers > 0)
        await clock.advance(RECHECK)
    key = await set_autolock(store, True)
    await settle(lambda: seal.sealed_under == [key])
