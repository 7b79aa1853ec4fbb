"""What ``shoal secret`` and ``shoal config`` share, as Docker's CLI does it: reading the data
(a file or stdin, with its errors), labels, the list's rows, the ``--pretty`` reports, and
inspect and rm over several names with Docker's per-item errors."""

import base64
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from shoal import golang
from shoal.cli.framework import CLIError, GoValue, out
from shoal.cli.humanize import human_duration, natural_key, pretty_print
from shoal.cli.listing import print_inspect, print_list
from shoal.client import APIError, Client
from shoal.golang import GoTime

# Docker's CLI reads at most twice swarmkit's limit; the daemon refuses what is too large.
MAX_SECRET_READ = 2 * 500 * 1024
MAX_CONFIG_READ = 2 * 1000 * 1024

_WHITESPACE = " \t"


def parse_label(value: str) -> str:
    """opts.ValidateLabel: key[=value], the key neither empty nor holding whitespace."""
    key = value.partition("=")[0].lstrip(_WHITESPACE)
    if not key:
        raise golang.GoError(f"invalid label '{value}': empty name")
    if any(c in key for c in _WHITESPACE):
        raise golang.GoError(f"label '{key}' contains whitespaces")
    return value


LABEL = GoValue("list", parse_label)


def labels_map(items: tuple[str, ...]) -> dict[str, str]:
    """opts.ConvertKVStringsToMap."""
    result: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        result[key] = value
    return result


def _go_os_error(op: str, path: str, err: OSError) -> str:
    """An *os.PathError's text: "open f: no such file or directory"."""
    reason = (err.strerror or str(err)).lower()
    return f"{op} {path}: {reason}"


def read_data(kind: str, file_name: str, limit: int) -> bytes:
    """The content of ``file_name`` ("-": stdin), read as Docker's CLI reads a secret's or
    config's data, with its errors."""
    if file_name == "-":
        data = sys.stdin.buffer.read(limit)
        if not data:
            raise CLIError("error reading from STDIN: data is empty")
        return data
    if not file_name:
        raise CLIError(f"{kind} file is required")
    try:
        with open(file_name, "rb") as f:
            data = f.read(limit)
    except IsADirectoryError as err:
        # Go opens a directory and fails reading it.
        raise CLIError(
            f"error reading from {file_name}: {_go_os_error('read', file_name, err)}"
        ) from None
    except OSError as err:
        raise CLIError(
            f"error reading from {file_name}: {_go_os_error('open', file_name, err)}"
        ) from None
    if not data:
        raise CLIError(f"error reading from {file_name}: data is empty")
    return data


def encode(data: bytes) -> str:
    """[]byte as Go writes it in JSON."""
    return base64.b64encode(data).decode()


# --- ls --------------------------------------------------------------------------------------

HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "CreatedAt": "CREATED",
    "UpdatedAt": "UPDATED",
    "Labels": "LABELS",
}


def _ago(timestamp: str, now_ns: int) -> str:
    t = GoTime.parse(timestamp)
    return human_duration(now_ns - t.ns) + " ago" if t is not None else ""


def row(obj: dict[str, Any], with_driver: bool, now_ns: int) -> dict[str, str]:
    """A list row: what ``--format`` may name, in the order Go's JSON of it shows."""
    spec = obj.get("Spec") or {}
    labels = spec.get("Labels") or {}
    fields = {
        "CreatedAt": _ago(obj.get("CreatedAt", ""), now_ns),
        "Driver": ((spec.get("Driver") or {}).get("Name") or ""),
        "ID": obj["ID"],
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Name": spec.get("Name", ""),
        "UpdatedAt": _ago(obj.get("UpdatedAt", ""), now_ns),
    }
    if not with_driver:
        del fields["Driver"]
    return fields


def print_rows(
    objects: list[dict[str, Any]], fmt: str | None, quiet: bool, table: str, with_driver: bool
) -> None:
    now = time.time_ns()
    objects = sorted(objects, key=lambda o: natural_key((o.get("Spec") or {}).get("Name", "")))
    rows = [row(o, with_driver, now) for o in objects]
    # -q shows IDs unless a format of the user's own says otherwise.
    print_list(rows, fmt, table, HEADERS, quiet=quiet and (not fmt or fmt == "table"))


# --- inspect ---------------------------------------------------------------------------------


def _when(timestamp: str) -> str:
    """formatter.PrettyPrint of a time: Go's time.String() with only its first letter in
    upper case (so "+0000 utc")."""
    t = GoTime.parse(timestamp)
    return pretty_print(t.string()) if t is not None else ""


def _labels_lines(spec: dict[str, Any]) -> list[str]:
    labels = spec.get("Labels") or {}
    if not labels:
        return []
    return ["Labels:"] + [f" - {k}={v}" if v else f" - {k}" for k, v in sorted(labels.items())]


def secret_pretty(secret: dict[str, Any]) -> str:
    spec = secret.get("Spec") or {}
    return "\n".join(
        [
            f"ID:              {secret['ID']}",
            f"Name:              {spec.get('Name', '')}",
            *_labels_lines(spec),
            f"Driver:            {(spec.get('Driver') or {}).get('Name') or ''}",
            f"Created at:        {_when(secret.get('CreatedAt', ''))}",
            f"Updated at:        {_when(secret.get('UpdatedAt', ''))}",
        ]
    )


def config_pretty(config: dict[str, Any]) -> str:
    spec = config.get("Spec") or {}
    data = base64.b64decode(spec.get("Data") or "").decode("utf-8", errors="replace")
    return "\n".join(
        [
            f"ID:\t\t\t{config['ID']}",
            f"Name:\t\t\t{spec.get('Name', '')}",
            *_labels_lines(spec),
            f"Created at:            \t{_when(config.get('CreatedAt', ''))}",
            f"Updated at:            \t{_when(config.get('UpdatedAt', ''))}",
            "Data:",
            data,
        ]
    )


def _path(kind: str, ref: str) -> str:
    return f"/{kind}s/{quote(ref, safe='')}"


async def inspect(
    client: Client,
    kind: str,
    refs: tuple[str, ...],
    fmt: str | None,
    pretty: bool,
    report: Callable[[dict[str, Any]], str],
) -> None:
    """``inspect``: a JSON array (or a template per item) of those found, then every error;
    ``--pretty`` stops at the first error, having printed nothing, as Docker's CLI does."""
    if pretty:
        fmt = "pretty"
    if fmt and fmt.startswith("pretty") and fmt != "pretty":
        raise CLIError("cannot supply extra formatting options to the pretty template")
    if fmt == "pretty":
        reports = []
        for ref in refs:
            try:
                reports.append(report(await client.get(_path(kind, ref))))
            except APIError as error:
                raise CLIError(str(error)) from None
        out("".join(r + "\n" for r in reports), end="")
        return
    found = []
    errors = []
    for ref in refs:
        try:
            found.append(await client.get(_path(kind, ref)))
        except APIError as error:
            errors.append(str(error))
    print_inspect(found, fmt)
    if errors:
        raise CLIError("\n".join(errors))


async def remove(client: Client, kind: str, refs: tuple[str, ...]) -> None:
    """``rm``: each removed as typed, on stdout; then every error, exit status 1."""
    errors = []
    for ref in refs:
        try:
            await client.delete(_path(kind, ref))
            out(ref)
        except APIError as error:
            errors.append(str(error))
    if errors:
        raise CLIError("\n".join(errors))
