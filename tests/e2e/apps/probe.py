"""Run inside a task (nsenter into its namespaces) to see the network as the task sees it:

probe.py resolve NAME            -> {"addresses": [...]} (empty when it does not resolve)
probe.py get NAME PORT COUNT     -> {"answers": [...], "failures": [...]}, each request
                                    on a new connection
probe.py connect ADDR PORT       -> {"ok": bool, "error": str}
"""

import json
import socket
import sys
import urllib.request


def resolve(name: str) -> dict:
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        return {"addresses": [], "error": str(e)}
    return {"addresses": sorted({i[4][0] for i in infos})}


def get(name: str, port: int, count: int) -> dict:
    answers, failures = [], []
    for _ in range(count):
        try:
            with urllib.request.urlopen(f"http://{name}:{port}/", timeout=3) as r:
                answers.append(r.read().decode().split()[0])
        except OSError as e:
            failures.append(str(e))
    return {"answers": answers, "failures": failures}


def connect(addr: str, port: int) -> dict:
    try:
        with socket.create_connection((addr, port), timeout=2):
            return {"ok": True, "error": ""}
    except OSError as e:
        return {"ok": False, "error": str(e)}


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "resolve":
        out = resolve(args[0])
    elif cmd == "get":
        out = get(args[0], int(args[1]), int(args[2]))
    else:
        out = connect(args[0], int(args[1]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
