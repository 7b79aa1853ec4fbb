from shoal.network.overlay.observed import parse_fdb, parse_links, parse_neighbours, parse_routes
from shoal.network.overlay.tools import parse_json_stream, tool_argv

# What `ip -j -d addr show` says in a sandbox (trimmed), kernel 6.x / iproute2 6.1.
SANDBOX = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536, "addr_info": []},
    {
        "ifindex": 2,
        "link_index": 2,
        "ifname": "vxlan0",
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1450,
        "master": "br0",
        "address": "3a:d5:64:ce:05:f7",
        "link_netnsid": 0,
        "linkinfo": {
            "info_kind": "vxlan",
            "info_data": {"id": 4097, "local": "198.18.0.1", "port": 4789, "learning": False,
                          "proxy": True},
            "info_slave_kind": "bridge",
            "info_slave_data": {"learning": False, "isolated": False},
        },
        "addr_info": [],
    },
    {
        "ifindex": 3,
        "ifname": "br0",
        "flags": ["BROADCAST", "MULTICAST"],
        "mtu": 1450,
        "linkinfo": {"info_kind": "bridge", "info_data": {}},
        "addr_info": [
            {"family": "inet", "local": "10.0.1.1", "prefixlen": 24},
            {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
        ],
    },
]  # fmt: skip


def test_links() -> None:
    links = parse_links(SANDBOX)
    assert set(links) == {"lo", "vxlan0", "br0"}
    vx, br = links["vxlan0"], links["br0"]
    assert vx.kind == "vxlan" and vx.up and vx.master == "br0" and vx.info["id"] == 4097
    assert vx.port["learning"] is False
    assert br.kind == "bridge" and not br.up and br.addresses == ("10.0.1.1/24",)
    assert links["lo"].kind == "" and links["lo"].up


def test_neighbours_are_the_permanent_ipv4_ones() -> None:
    doc = [
        {"dst": "10.0.1.3", "lladdr": "02:42:0A:00:01:03", "state": ["PERMANENT"]},
        {"dst": "10.0.1.4", "lladdr": "02:42:0a:00:01:04", "state": ["REACHABLE"]},
        {"dst": "fe80::1", "lladdr": "02:42:0a:00:01:05", "state": ["PERMANENT"]},
    ]
    assert parse_neighbours(doc) == {"10.0.1.3": "02:42:0a:00:01:03"}


def test_fdb_keeps_our_entries_and_the_default_port() -> None:
    doc = [
        {"mac": "02:42:0a:00:00:05", "flags": [], "master": "br0", "state": "static"},
        {"mac": "56:0b:83:1b:e0:c2", "flags": [], "master": "br0", "state": "permanent"},
        {"mac": "02:42:0a:00:00:07", "flags": [], "master": "br0", "state": ""},  # learned
        {"mac": "02:42:0a:00:00:05", "dst": "198.18.0.2", "port": 4790, "flags": ["self"],
         "state": "permanent"},
        # the kernel leaves out a port equal to the device's own
        {"mac": "02:42:0a:00:00:06", "dst": "198.18.0.3", "flags": ["self"],
         "state": "permanent"},
    ]  # fmt: skip
    fdb = parse_fdb(doc, 4789)
    assert fdb.remote == {
        "02:42:0a:00:00:05": ("198.18.0.2", 4790),
        "02:42:0a:00:00:06": ("198.18.0.3", 4789),
    }
    assert fdb.static == {"02:42:0a:00:00:05"}


def test_routes() -> None:
    doc = [
        {"dst": "default", "gateway": "172.16.0.1", "dev": "eth1", "flags": []},
        {"dst": "10.0.1.0/24", "dev": "eth0", "protocol": "kernel"},
    ]
    r = parse_routes(doc)
    assert r[0].gateway == "172.16.0.1" and r[1].gateway is None


def test_batch_json_comes_back_to_back() -> None:
    assert parse_json_stream('[{"a":1}][]\n[2]\n') == [[{"a": 1}], [], [2]]
    assert parse_json_stream("") == []


def test_tools_enter_namespaces_by_name_or_path() -> None:
    assert tool_argv("ip", None, "-batch", "-") == ["ip", "-batch", "-"]
    assert tool_argv("ip", "/run/netns/n1-abc", "link") == ["ip", "-n", "n1-abc", "link"]
    assert tool_argv("bridge", "/run/netns/x", "fdb") == ["bridge", "-n", "x", "fdb"]
    docker = "/var/run/docker/netns/1a2b"
    assert tool_argv("ip", docker, "link") == ["nsenter", f"--net={docker}", "ip", "link"]
    assert tool_argv("nft", "/run/netns/x", "-f", "-") == [
        "nsenter", "--net=/run/netns/x", "nft", "-f", "-",
    ]  # fmt: skip
