"""The managers' unlock key in the Cluster object, as swarmkit's UpdateCluster keeps it."""

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, EncryptionKey
from shoal.ca.unlock_key import KEY_SIZE
from shoal.clock import FakeClock
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.controlapi.unlock_keys import updated_unlock_keys
from shoal.store import MemoryStore


@pytest.fixture
async def control() -> ControlAPI:
    store = MemoryStore(clock=FakeClock())
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    return ControlAPI(store, store.clock)


async def set_autolock(control: ControlAPI, on: bool, rotate: bool = False) -> bytes | None:
    cluster = control.get_cluster()
    spec = cluster.Spec.model_dump()
    spec["EncryptionConfig"]["AutoLockManagers"] = on
    await control.update_cluster(cluster.Version.Index, spec, rotate_manager_unlock_key=rotate)
    return control.get_unlock_key()


async def test_autolock_makes_a_key_that_stays_until_rotated(control: ControlAPI) -> None:
    assert control.get_unlock_key() is None
    key = await set_autolock(control, True)
    assert key is not None and len(key) == KEY_SIZE
    # Updating anything else (autolock still on) keeps the key.
    assert await set_autolock(control, True) == key
    rotated = await set_autolock(control, True, rotate=True)
    assert rotated is not None and rotated != key and len(rotated) == KEY_SIZE


async def test_autolock_off_drops_the_key_and_on_again_makes_a_new_one(
    control: ControlAPI,
) -> None:
    key = await set_autolock(control, True)
    assert await set_autolock(control, False) is None
    assert control.get_cluster().UnlockKeys == []
    # Rotating with autolock off does nothing (Docker's CLI refuses before asking).
    assert await set_autolock(control, False, rotate=True) is None
    again = await set_autolock(control, True)
    assert again is not None and again != key


async def test_the_key_is_never_shown_by_the_swarm_api(control: ControlAPI) -> None:
    await set_autolock(control, True)
    cluster = control.get_cluster()
    assert cluster.UnlockKeys and "UnlockKeys" not in cluster.to_api()
    assert cluster.to_api()["Spec"]["EncryptionConfig"] == {"AutoLockManagers": True}


def test_other_subsystems_keys_are_kept() -> None:
    other = EncryptionKey(Subsystem="networking", Key="AAAA")
    keys = updated_unlock_keys([other], autolock=True)
    assert keys[0] == other and keys[1].Subsystem == "manager"
    assert updated_unlock_keys(keys, autolock=False) == [other]
