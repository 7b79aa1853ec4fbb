"""The API's own event loop, in a thread of its own.

A manager's event loop is busy while the cluster changes: at 1,000 nodes it runs raft, the
dispatcher's streams and the orchestrators' writes in turns of 0.1-0.3 s (issue 15), and a
request served there waits for several such turns. So the API's listeners, the front that
reads each request and the answers to the reads (``engineapi.read_lane``) run here, where a
request waits only for the interpreter lock (handed over every few milliseconds); whatever
changes the cluster is still passed, as bytes, to the application on the node's own loop.
"""

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

# How long a thread that wants the interpreter lock waits before the thread holding it is
# asked to let go (Python's default: 5 ms). The API's thread wants it back after every turn
# of its loop (it lets go while it polls), and while the node's loop is busy each turn then
# waited 5 ms: a `node ls` of 1,000 nodes passes through a dozen turns (front, socket pair,
# application and back). Set for the daemon's process by ``use_switch_interval``.
SWITCH_INTERVAL = 0.001


def use_switch_interval() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)


T = TypeVar("T")


class ApiThread:
    """An event loop running in a daemon thread until ``stop()``."""

    def __init__(self, name: str = "shoal-api") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(started.set)
            try:
                self.loop.run_forever()
            finally:
                self.loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        started.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``, run on this thread's loop, awaited from another loop."""
        return await asyncio.wrap_future(self.submit(coro))

    async def stop(self) -> None:
        """Stop the loop once what it is running has had a turn to end, and wait for the
        thread (from another loop)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return

        async def cancel_the_rest() -> None:
            mine = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not mine]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            await self.run(cancel_the_rest())
        except RuntimeError:
            pass  # the loop had stopped already
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(thread.join)
