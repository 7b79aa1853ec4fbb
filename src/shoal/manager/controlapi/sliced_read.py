"""Reads of the control API that are coroutines only so that the event loop runs while they
work through a large store (issue 15). They change nothing, so a follower answers them from its
own store as it does every other read; without the mark, a coroutine method is taken for a
write and sent to the leader (``consensus.forwarding``)."""

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def sliced_read(fn: F) -> F:
    """Mark ``fn``, a coroutine method of the control API, as a read."""
    fn.__shoal_sliced_read__ = True  # type: ignore[attr-defined]
    return fn


def is_sliced_read(fn: Callable[..., Any]) -> bool:
    return getattr(fn, "__shoal_sliced_read__", False) is True
