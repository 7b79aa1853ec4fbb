"""``node inspect --pretty``: Docker's human-readable node report, field for field."""

import base64

from shoal.cli.framework import out
from shoal.cli.humanize import bytes_size, pretty_print
from shoal.golang import GoTime


def _labels(lines: list[str], title: str, labels: dict | None) -> None:
    if labels:
        lines.append(f"{title}:")
        for key, value in sorted(labels.items()):
            lines.append(f" - {key}={value}" if value else f" - {key}")


def _b64(value: str | bytes | None) -> str:
    # The API carries these as base64 already; Docker decodes and re-encodes them.
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value or ""


def print_node_pretty(node: dict) -> None:
    spec = node.get("Spec") or {}
    desc = node.get("Description") or {}
    status = node.get("Status") or {}
    lines = [f"ID:\t\t\t{node['ID']}"]
    if spec.get("Name"):
        lines.append(f"Name:\t\t\t{spec['Name']}")
    _labels(lines, "Labels", spec.get("Labels"))
    created = GoTime.parse(node.get("CreatedAt", ""))
    lines.append(f"Hostname:              \t{desc.get('Hostname', '')}")
    lines.append(f"Joined at:             \t{pretty_print(created.string()) if created else ''}")
    lines.append("Status:")
    lines.append(f" State:\t\t\t{pretty_print(status.get('State', ''))}")
    if status.get("Message"):
        lines.append(f" Message:              \t{pretty_print(status['Message'])}")
    lines.append(f" Availability:         \t{pretty_print(spec.get('Availability', ''))}")
    if status.get("Addr"):
        lines.append(f" Address:\t\t{status['Addr']}")
    manager = node.get("ManagerStatus")
    if manager:
        lines.append("Manager Status:")
        lines.append(f" Address:\t\t{manager.get('Addr', '')}")
        lines.append(f" Raft Status:\t\t{pretty_print(manager.get('Reachability', ''))}")
        lines.append(f" Leader:\t\t{'Yes' if manager.get('Leader') else 'No'}")
    platform = desc.get("Platform") or {}
    lines.append("Platform:")
    lines.append(f" Operating System:\t{platform.get('OS', '')}")
    lines.append(f" Architecture:\t\t{platform.get('Architecture', '')}")
    resources = desc.get("Resources") or {}
    lines.append("Resources:")
    lines.append(f" CPUs:\t\t\t{int(resources.get('NanoCPUs') or 0) // 1_000_000_000}")
    memory = resources.get("MemoryBytes") or 0
    lines.append(f" Memory:\t\t{bytes_size(memory) if memory else ''}")
    engine = desc.get("Engine") or {}
    plugins: dict[str, list[str]] = {}
    for plugin in engine.get("Plugins") or []:
        plugins.setdefault(plugin.get("Type", ""), []).append(plugin.get("Name", ""))
    if plugins:
        lines.append("Plugins:")
        for kind, names in sorted(plugins.items()):
            joined = ", ".join(names)
            lines.append(f" {kind}:\t\t{joined}" if joined else f" {kind}:")
    lines.append(f"Engine Version:\t\t{engine.get('EngineVersion', '')}")
    _labels(lines, "Engine Labels", engine.get("Labels"))
    tls = desc.get("TLSInfo") or {}
    if tls.get("TrustRoot") or tls.get("CertIssuerSubject") or tls.get("CertIssuerPublicKey"):
        lines.append("TLS Info:")
        lines.append(" TrustRoot:")
        lines.append(tls.get("TrustRoot", ""))
        lines.append(f" Issuer Subject:\t{_b64(tls.get('CertIssuerSubject'))}")
        lines.append(f" Issuer Public Key:\t{_b64(tls.get('CertIssuerPublicKey'))}")
    out("\n".join(lines))
