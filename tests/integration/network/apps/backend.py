"""A task stand-in for routing-mesh tests and benchmarks, run inside a network namespace.

    backend.py --name b1 --host 198.18.0.1 --port 9001 [--mode name|http]

TCP, mode ``name``: says its name on a line, then echoes. Mode ``http``: answers every
HTTP/1.1 request on a keep-alive connection with its name as the body, and closes the
connection after answering a request that says ``Connection: close``. UDP on the same
port: answers each datagram with ``name:datagram``. Prints "ready" once listening; runs
until killed.
"""

import argparse
import asyncio
import sys


class NameThenEcho(asyncio.Protocol):
    def __init__(self, name: bytes) -> None:
        self.name = name

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.name + b"\n")

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False


class Http(asyncio.Protocol):
    def __init__(self, name: bytes) -> None:
        body = name + b"\n"
        self.response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        self.buf = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        n = buf.count(b"\r\n\r\n")
        if n:
            self.transport.write(self.response * n)
            if b"\r\nconnection: close\r\n" in buf.lower():  # a new connection per request
                self.transport.close()
            buf = buf[buf.rfind(b"\r\n\r\n") + 4 :]
        self.buf = buf


class UdpName(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(self.name + b":" + data, addr)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["name", "http"], default="name")
    args = p.parse_args()
    name = args.name.encode()
    loop = asyncio.get_running_loop()
    proto = NameThenEcho if args.mode == "name" else Http
    server = await loop.create_server(
        lambda: proto(name), args.host, args.port, reuse_address=True, backlog=4096
    )
    await loop.create_datagram_endpoint(lambda: UdpName(name), local_addr=(args.host, args.port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
