"""The cyclic collector's mode for one pass of a bench that measures what it costs."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from shoal.store.gc_tuning import tune_gc

GC_MODES = ("default", "tuned", "off")


@contextmanager
def gc_mode(mode: str) -> Iterator[None]:
    """Run the block with the collector as ``mode`` says: ``default``, Python's settings;
    ``tuned``, as the daemon sets it (``shoal.store.gc_tuning``); ``off``, disabled. A full
    collection first, so that no pass pays for the garbage of the one before; the settings
    from before back afterwards."""
    if mode not in GC_MODES:
        raise ValueError(f"gc mode {mode!r}: one of {', '.join(GC_MODES)}")
    settings = gc.get_threshold()
    if mode == "tuned":
        tune_gc()
    gc.collect()
    if mode == "off":
        gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.set_threshold(*settings)
