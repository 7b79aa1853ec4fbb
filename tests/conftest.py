"""Settings for every test, made before anything of shoal is imported."""

import os

# Every proposal a store applies from its writer's objects (as a raft leader does) is first
# checked against what the raft log would give back for it, and every stored object against
# being changed in place (shoal.store.roundtrip). Daemons the tests start inherit it.
os.environ.setdefault("SHOAL_CHECK_PROPOSALS", "1")
