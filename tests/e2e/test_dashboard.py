"""The web dashboard (``shoal daemon --dashboard-addr``) on a cluster of three daemons, in a
real browser (headless Chromium): it shows every node and service, follows a scale and a
drain without reloading, and keeps to what it may serve.

Cost: about 35 s for the browser test (a cluster, Chromium, a scale and a drain), 30 s for the
HTTP one (a cluster and a promotion).
"""

import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import browser_missing, chromium
from tests.e2e.docker_certs import issue, new_ca
from tests.e2e.harness import LocalCluster, Node, free_port, wait_for

pytestmark = pytest.mark.e2e

# The picture in bench/results is refreshed only when asked for (SHOAL_DASHBOARD_SCREENSHOT=1):
# a test run leaves the checkout as it found it.
SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "dashboard.png"
# Generous: a loaded CI machine may take a while to run tasks; the page itself follows within
# a fraction of a second (bench/dashboard.py measures it).
FOLLOW_TIMEOUT_MS = 60_000


def dashboard_url(node: Node) -> str:
    return f"http://{node.host}:{node.dashboard_port}/"  # type: ignore[attr-defined]


def start_node(cluster: LocalCluster, name: str, wait: bool = True) -> Node:
    host = f"127.0.0.{len(cluster.nodes) + 1}"
    port = free_port(host)
    node = cluster.add(name, ["--dashboard-addr", f"{host}:{port}"], wait=wait)
    node.dashboard_port = port  # type: ignore[attr-defined]
    return node


@pytest.fixture
def swarm(short_tmp: Path) -> Iterator[LocalCluster]:
    """1 manager and 2 workers, each serving a dashboard."""
    cluster = LocalCluster(short_tmp)
    try:
        # The daemons start at once; then the manager inits and the workers join.
        names = ["manager1", "worker1", "worker2"]
        nodes = [start_node(cluster, name, wait=False) for name in names]
        for node in nodes:
            node.wait_ready()
        cluster.init("--dispatcher-heartbeat", "1s")
        for node in nodes[1:]:
            cluster.join_worker(node)
        yield cluster
    finally:
        cluster.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def sleeper(m: Node, name: str, replicas: int, *extra: str) -> None:
    m.process_service("--name", name, "--replicas", str(replicas), *extra, "sleep", "3600")


def test_dashboard_follows_the_cluster_in_a_browser(swarm: LocalCluster, tmp_path: Path) -> None:
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    m = swarm.manager
    sleeper(m, "web", 3)
    sleeper(m, "api", 2, "--label", "com.docker.stack.namespace=shop")
    wait_for(lambda: len(swarm.running_tasks("web")) == 3, what="web running")

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        navigations: list[str] = []
        page.on(
            "framenavigated",
            lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
        )
        page.goto(dashboard_url(m))
        page.wait_for_selector("body[data-connection=live]")

        # Every node and service.
        page.wait_for_function(
            "() => document.querySelectorAll('#nodes tr[data-id]').length === 3"
            " && document.querySelectorAll('#services tr[data-id]').length === 2",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        hostnames = page.eval_on_selector_all(
            "#nodes tr[data-id]", "rows => rows.map(r => r.dataset.hostname)"
        )
        assert sorted(hostnames) == ["manager1", "worker1", "worker2"]
        assert page.get_attribute("#nodes tr[data-hostname=manager1]", "data-leader") == "true"
        names = page.eval_on_selector_all(
            "#services tr[data-id]", "rows => rows.map(r => r.dataset.name)"
        )
        assert sorted(names) == ["api", "web"]
        assert page.inner_text("#stacks tr[data-name=shop]").startswith("shop")
        assert "ingress" in page.inner_text("#networks")
        loaded_at = page.evaluate("window.shoal.loadedAt")
        navigations.clear()

        # A scale from the CLI: the page follows without reloading.
        m.cli("service", "scale", "-d", "web=5")
        page.wait_for_selector(
            "#services tr[data-name=web][data-running='5'][data-desired='5']",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        assert page.inner_text("#services tr[data-name=web] .replicas") == "5/5"
        assert page.evaluate("window.shoal.loadedAt") == loaded_at
        assert navigations == []
        events = page.inner_text("#events")
        assert "service update web" in events and "replicas 3 → 5" in events

        # Its tasks, then a drain: they move off the drained node, which keeps their history.
        page.click("#services tr[data-name=web]")
        page.wait_for_function(
            "() => document.querySelectorAll('#tasks tr[data-state=running][data-desired=running]')"
            ".length === 5",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        on_worker1 = page.eval_on_selector_all(
            "#tasks tr[data-node=worker1][data-desired=running]", "rows => rows.length"
        )
        assert on_worker1 > 0, "the spread put none of web's tasks on worker1"
        m.cli("node", "update", "--availability", "drain", "worker1")
        page.wait_for_selector(
            "#nodes tr[data-hostname=worker1][data-availability=drain]",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        page.wait_for_function(
            """() => {
                const rows = [...document.querySelectorAll('#tasks tr[data-id]')];
                const live = rows.filter(r => r.dataset.desired === 'running');
                return live.length === 5
                    && live.every(r => r.dataset.state === 'running' && r.dataset.node !== 'worker1')
                    && rows.some(r => r.dataset.node === 'worker1' && r.dataset.desired === 'shutdown');
            }""",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        assert page.inner_text("#nodes tr[data-hostname=worker1] .tasks-running") == "0"
        # The drained node's own list: only the history of what ran there.
        page.click("#nodes tr[data-hostname=worker1]")
        page.wait_for_selector("#tasks-title:has-text('Tasks on node worker1')")
        page.wait_for_function(
            """() => {
                const rows = [...document.querySelectorAll('#tasks tr[data-id]')];
                return rows.length > 0 && rows.every(r => r.dataset.desired === 'shutdown');
            }""",
            timeout=FOLLOW_TIMEOUT_MS,
        )
        page.click("#services tr[data-name=web]")
        page.wait_for_selector("#tasks-title:has-text('Tasks of service web')")
        assert page.evaluate("window.shoal.loadedAt") == loaded_at
        assert navigations == []

        shot = SCREENSHOT if os.environ.get("SHOAL_DASHBOARD_SCREENSHOT") else tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0


def test_dashboard_is_read_only_and_a_promoted_worker_serves_its_own_store(
    swarm: LocalCluster,
) -> None:
    m, worker = swarm.manager, swarm.nodes[1]
    url = dashboard_url(m)
    sleeper(m, "web", 2)
    state = get_json(url + "api/state")
    assert state["manager"] is True and len(state["nodes"]) == 3
    # Nothing it serves changes anything.
    request = urllib.request.Request(url + "api/state", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    # Another site's page may not read it, through a websocket or a name of its own.
    port = m.dashboard_port  # type: ignore[attr-defined]
    for headers in ({"Origin": "http://evil.example"}, {"Host": f"evil.example:{port}"}):
        request = urllib.request.Request(url + "api/state", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as forbidden:
            urllib.request.urlopen(request, timeout=10)
        assert forbidden.value.code == 403
    # The static files come from the package, and the page loads nothing from elsewhere.
    with urllib.request.urlopen(url, timeout=10) as resp:
        page = resp.read().decode()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "http://" not in page and "https://" not in page

    # A worker's dashboard has no view of the cluster; promoted, it serves its own store.
    state = get_json(dashboard_url(worker) + "api/state")
    assert state["manager"] is False and state["services"] == []
    m.cli("node", "promote", worker.name)

    def follower_sees_web() -> dict | None:
        state = get_json(dashboard_url(worker) + "api/state")
        names = [s["name"] for s in state["services"]]
        return state if state["manager"] and names == ["web"] else None

    state = wait_for(follower_sees_web, what="the promoted node's dashboard shows web")
    assert state["servedBy"] == swarm.node_id(worker)
    leaders = {n["hostname"] for n in state["nodes"] if n["leader"]}
    assert leaders == {"manager1"}  # served by a follower, from its own store
    # A change made through the leader reaches the follower's page.
    m.cli("service", "scale", "-d", "web=4")
    wait_for(
        lambda: (
            [s["desired"] for s in get_json(dashboard_url(worker) + "api/state")["services"]] == [4]
        ),
        what="the follower's dashboard follows the scale",
    )


def test_with_the_apis_tls_flags_a_browser_needs_a_client_certificate(short_tmp: Path) -> None:
    ca = new_ca("shoal-test-ca")
    server = issue(ca, short_tmp / "server", "shoal-manager", server_ip="127.0.0.1")
    client = issue(ca, short_tmp / "client", "browser")
    stranger = issue(new_ca("another-ca"), short_tmp / "stranger", "browser")
    port = free_port("127.0.0.1")
    cluster = LocalCluster(short_tmp / "nodes")
    try:
        cluster.add(
            "manager1",
            [
                "--tlsverify",
                "--tlscacert",
                str(server / "ca.pem"),
                "--tlscert",
                str(server / "cert.pem"),
                "--tlskey",
                str(server / "key.pem"),
                "--dashboard-addr",
                f"127.0.0.1:{port}",
            ],
        )
        url = f"https://127.0.0.1:{port}/api/state"

        def context(certs: Path | None) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(server / "ca.pem"))
            if certs is not None:
                ctx.load_cert_chain(certs / "cert.pem", certs / "key.pem")
            return ctx

        with urllib.request.urlopen(url, timeout=10, context=context(client)) as resp:
            assert json.load(resp)["manager"] is False  # not in a swarm: nothing to show
        for refused in (None, stranger):
            with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
                urllib.request.urlopen(url, timeout=10, context=context(refused)).read()
    finally:
        cluster.close()
