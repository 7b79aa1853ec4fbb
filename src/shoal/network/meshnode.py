"""A routing-mesh node on its own, for tests, benchmarks and trying things by hand.

    python -m shoal.network.meshnode --data-path nftables --address 198.18.0.3

reads routing tables as JSON lines on standard input (the format of
``RoutingTable.to_json``), applies each, and answers each with one JSON line on standard
output: {"applied": n, "data_path": ..., "errors": {...}}. Stops, removing everything, at
end of input or on SIGTERM/SIGINT. Run it under ``ip netns exec`` to make a node of a
network namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from shoal.network.datapath import MeshConfig
from shoal.network.routing import RoutingTable
from shoal.network.select import choose_data_path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m shoal.network.meshnode")
    p.add_argument("--data-path", choices=["auto", "nftables", "userspace"], default="auto")
    p.add_argument("--address", action="append", dest="addresses", default=None)
    p.add_argument("--nft-table", default="shoal")
    p.add_argument("--udp-idle-timeout", type=float, default=30.0)
    p.add_argument("--uvloop", action="store_true", help="run on uvloop if it is installed")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> int:
    config = MeshConfig(
        data_path=args.data_path,
        addresses=args.addresses,
        nft_table=args.nft_table,
        udp_idle_timeout=args.udp_idle_timeout,
    )
    dp = await choose_data_path(config)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    await dp.start()
    say({"started": True, "data_path": dp.name, "reason": dp.reason})
    try:
        while not done.is_set():
            line_task = asyncio.ensure_future(reader.readline())
            stop_task = asyncio.ensure_future(done.wait())
            await asyncio.wait({line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            if not line_task.done():
                line_task.cancel()
                break
            line = line_task.result()
            if not line:
                break
            table = RoutingTable.from_json(json.loads(line))
            try:
                await dp.apply(table)
                say({"applied": len(table), "data_path": dp.name, "errors": dp.errors})
            except Exception as e:
                say({"error": str(e)})
    finally:
        await dp.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]  # optional: not a dependency

            return uvloop.run(_serve(args))
        except ImportError:
            pass
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
