"""Choosing the addresses a node listens on and advertises, as Docker's daemon does: an IP,
an interface name, or ``host:port``; when nothing is said, the system's one address."""

import ipaddress
import socket

import psutil

from shoal.errors import InvalidArgument

ERR_NO_SUCH_INTERFACE = "no such interface"
ERR_NO_IP = "could not find the system's IP address"
ERR_BAD_LISTEN = (
    "listen address must be an IP address or network interface (with optional port number)"
)
ERR_BAD_ADVERTISE = (
    "advertise address must be a non-zero IP address or network interface "
    "(with optional port number)"
)


class _NoSuchInterface(Exception):
    pass


class _BadIdentifier(Exception):
    pass


def split_host_port(addr: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort: "h:p", "[v6]:p"; None when there is no port."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or not addr[end + 1 :].startswith(":"):
            return None
        return addr[1:end], addr[end + 2 :]
    if addr.count(":") != 1:
        return None
    host, port = addr.split(":")
    return host, port


def join_host_port(host: str, port: str | int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _interface_addr(name: str) -> str:
    addrs = psutil.net_if_addrs().get(name)
    if addrs is None:
        raise _NoSuchInterface()
    v4 = [a.address for a in addrs if a.family == socket.AF_INET]
    v6 = [a.address.split("%")[0] for a in addrs if a.family == socket.AF_INET6]
    if len(v4) > 1:
        raise InvalidArgument(
            f"interface {name} has more than one IPv4 address ({v4[0]} and {v4[1]})"
        )
    if len(v6) > 1:
        raise InvalidArgument(
            f"interface {name} has more than one IPv6 address ({v6[0]} and {v6[1]})"
        )
    if v4:
        return v4[0]
    if v6:
        return v6[0]
    raise InvalidArgument(f"interface {name} has no usable IPv4 or IPv6 address")


def _resolve_ip(value: str, unspecified_ok: bool) -> str:
    try:
        return _interface_addr(value)
    except _NoSuchInterface:
        pass
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise _BadIdentifier() from None
    if ip.is_unspecified and not unspecified_ok:
        raise _BadIdentifier()
    return str(ip)


def resolve_listen_addr(addr: str) -> tuple[str, str]:
    parts = split_host_port(addr)
    if parts is None:
        raise InvalidArgument(f"could not parse listen address {addr}")
    host, port = parts
    try:
        return _resolve_ip(host, unspecified_ok=True), port
    except _BadIdentifier:
        raise InvalidArgument(ERR_BAD_LISTEN) from None


def _is_global_unicast(value: str) -> bool:
    """Go's IP.IsGlobalUnicast: private ranges count; loopback, link-local and multicast
    do not."""
    ip = ipaddress.ip_address(value)
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def _system_addr() -> str:
    """The machine's one global unicast address, else Docker's error naming the choices."""
    found: tuple[str, str] | None = None
    stats = psutil.net_if_stats()
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        if st is None or not st.isup or name == "lo" or name.startswith(("docker", "veth", "br-")):
            continue
        for family in (socket.AF_INET, socket.AF_INET6):
            ips = [
                ip
                for a in addrs
                if a.family == family and _is_global_unicast(ip := a.address.split("%")[0])
            ]
            if not ips:
                continue
            if len(ips) > 1:
                raise InvalidArgument(
                    "could not choose an IP address to advertise since this system has multiple "
                    f"addresses on interface {name} ({ips[0]} and {ips[1]})"
                )
            if found is not None:
                raise InvalidArgument(
                    "could not choose an IP address to advertise since this system has multiple "
                    f"addresses on different interfaces ({found[1]} on {found[0]} and "
                    f"{ips[0]} on {name})"
                )
            found = (name, ips[0])
            break
    if found is None:
        raise InvalidArgument(ERR_NO_IP)
    return found[1]


def resolve_advertise_addr(advertise: str, listen_host: str, listen_port: str) -> tuple[str, str]:
    """The host and port other nodes use to reach this one."""
    if advertise:
        parts = split_host_port(advertise)
        host, port = parts if parts is not None else (advertise, listen_port)
        try:
            return _resolve_ip(host, unspecified_ok=False), port
        except _BadIdentifier:
            raise InvalidArgument(ERR_BAD_ADVERTISE) from None
    if listen_host and not ipaddress.ip_address(listen_host).is_unspecified:
        return listen_host, listen_port
    return _system_addr(), listen_port
