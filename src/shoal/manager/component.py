"""A part of the manager that runs while this manager leads."""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Component(Protocol):
    """A reconcile loop: started when this manager becomes leader, cancelled when it stops
    leading (it is built afresh each time, as it holds state)."""

    async def run(self) -> None: ...
