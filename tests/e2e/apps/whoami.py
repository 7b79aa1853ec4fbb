"""A tiny HTTP service for tests: answers every request with who it is (the task's slot and
host, from the environment) so a test can tell replicas apart. Binds $HOST:$PORT as the
process runtime asks."""

import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{os.environ.get('WHOAMI', '?')} pid={os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write("request " + (fmt % args) + "\n")
        sys.stdout.flush()


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    print(f"listening on {host}:{port}", flush=True)
    http.server.ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
