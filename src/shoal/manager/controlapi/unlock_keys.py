"""The cluster's unlock keys as swarmkit's control API keeps them on every cluster update.

With autolock on, the managers' key ("manager" subsystem) is made the first time it is
needed and kept as it is until a rotation is asked for; with autolock off it is dropped, so
turning autolock on again makes a new key.
"""

import base64

from shoal.api.objects import MANAGER_SUBSYSTEM, EncryptionKey
from shoal.ca.unlock_key import new_unlock_key


def updated_unlock_keys(
    keys: list[EncryptionKey], autolock: bool, rotate: bool = False
) -> list[EncryptionKey]:
    kept = [k for k in keys if k.Subsystem != MANAGER_SUBSYSTEM or autolock]
    if not autolock:
        return kept
    manager = [k for k in kept if k.Subsystem == MANAGER_SUBSYSTEM]
    if manager and not rotate:
        return kept
    others = [k for k in kept if k.Subsystem != MANAGER_SUBSYSTEM]
    return [*others, _new_manager_key()]


def _new_manager_key() -> EncryptionKey:
    return EncryptionKey(
        Subsystem=MANAGER_SUBSYSTEM, Key=base64.b64encode(new_unlock_key()).decode()
    )
