"""`shoal local up` gives its managers a web dashboard each, on a port apart from the swarm's."""

from pathlib import Path

from shoal.local.cluster import plan


def test_managers_serve_a_dashboard_and_workers_none(tmp_path: Path):
    nodes = plan(tmp_path, managers=2, workers=2)
    managers, workers = nodes[:2], nodes[2:]
    ports = {n.dashboard_port for n in managers}
    assert len(ports) == 1 and None not in ports
    assert managers[0].dashboard_port != managers[0].port
    assert managers[0].dashboard_url == f"http://127.0.0.1:{managers[0].dashboard_port}/"
    assert all(n.dashboard_port is None and n.dashboard_url is None for n in workers)
