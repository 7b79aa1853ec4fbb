"""What a node reports, with and without a Docker Engine."""

from shoal.agent.describe import describe_node, engine_labels, engine_plugins
from shoal.api.objects import EnginePlugin

# The parts of a real engine's /info that a node description uses (dockerd 20.10 here).
INFO = {
    "Name": "vm",
    "ServerVersion": "20.10.24+dfsg1",
    "Architecture": "x86_64",
    "OSType": "linux",
    "NCPU": 2,
    "MemTotal": 4_000_000_000,
    "Labels": ["zone=a", "disk=ssd", "zone=b", "broken"],
    "Plugins": {
        "Volume": ["local"],
        "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
        "Authorization": None,
        "Log": ["json-file", "awslogs"],
    },
}


def test_engine_plugins_as_swarm_lists_them():
    assert engine_plugins(INFO) == [
        EnginePlugin(Type="Log", Name="awslogs"),
        EnginePlugin(Type="Log", Name="json-file"),
        EnginePlugin(Type="Network", Name="bridge"),
        EnginePlugin(Type="Network", Name="host"),
        EnginePlugin(Type="Network", Name="ipvlan"),
        EnginePlugin(Type="Network", Name="macvlan"),
        EnginePlugin(Type="Network", Name="null"),
        EnginePlugin(Type="Volume", Name="local"),
    ]


def test_overlay_is_reported_where_the_node_builds_overlay_networks_and_only_there():
    # Swarm lists overlay on every node; shoal's overlay networks are its own data plane,
    # which needs rights a node may not have: the plugin says whether it runs.
    engine = {"Plugins": {"Network": ["bridge", "overlay"]}}
    without = describe_node("n", {}, ["process", "container"], engine, overlay=False)
    with_ = describe_node("n", {}, ["process", "container"], engine, overlay=True)
    networks = [(p.Type, p.Name) for p in with_.Engine.Plugins or [] if p.Type == "Network"]
    assert networks == [("Network", "bridge"), ("Network", "overlay")]
    assert ("Network", "overlay") not in [(p.Type, p.Name) for p in without.Engine.Plugins or []]
    bare = describe_node("n", {}, ["process"], None, overlay=True)
    assert [(p.Type, p.Name) for p in bare.Engine.Plugins or []] == [
        ("Network", "overlay"),
        ("Runtime", "process"),
    ]


def test_engine_labels_last_value_wins():
    assert engine_labels(INFO) == {"zone": "b", "disk": "ssd"}


def test_with_an_engine_the_node_reports_the_engines_facts():
    d = describe_node("worker1", {"disk": "nvme"}, ["process", "container"], INFO)
    assert d.Hostname == "worker1"  # its own: nodes may share one engine
    assert (d.Platform.Architecture, d.Platform.OS) == ("x86_64", "linux")
    assert (d.Resources.NanoCPUs, d.Resources.MemoryBytes) == (2_000_000_000, 4_000_000_000)
    assert d.Engine.EngineVersion == "20.10.24+dfsg1"
    assert d.Engine.Labels == {"zone": "b", "disk": "nvme"}
    assert d.Runtimes == ["process", "container"]
    assert EnginePlugin(Type="Volume", Name="local") in d.Engine.Plugins
    assert EnginePlugin(Type="Runtime", Name="container") in d.Engine.Plugins


def test_without_an_engine_no_container_runtime():
    d = describe_node("worker1", {}, ["process", "container"], None)
    assert d.Runtimes == ["process"]
    assert d.Engine.Plugins == [EnginePlugin(Type="Runtime", Name="process")]
    assert d.Resources.NanoCPUs > 0 and d.Resources.MemoryBytes > 0
    # Not asked to offer containers: none, engine or not.
    assert describe_node("w", {}, ["process"], INFO).Runtimes == ["process"]
