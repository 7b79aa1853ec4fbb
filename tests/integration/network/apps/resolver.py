"""The overlay resolver as a node serves it, for tests inside a network namespace.

    resolver.py --listen 198.18.0.1 --client 198.18.0.2

Serves DnsServer on LISTEN port 53 (UDP and TCP), a fixed table of records (records.py), to
the task at CLIENT (anyone else is refused). Forwards other names to a fake upstream on
this namespace's 127.0.0.1, which knows example.com. Prints "ready" once serving; runs
until killed.
"""

import argparse
import asyncio
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from shoal.network.dns.server import DnsServer  # noqa: E402
from tests.integration.network.fake_dns import FakeUpstream  # noqa: E402
from tests.integration.network.records import FRONT  # noqa: E402


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--client", required=True)
    args = p.parse_args()
    upstream = await FakeUpstream("127.0.0.1", {"example.com": ["192.0.2.10"]}).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((args.listen, 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.listen, 53))
    tables = {args.client: [FRONT]}
    server = DnsServer(tables.get, [udp, tcp], [upstream.address])
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
