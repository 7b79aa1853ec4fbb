"""``shoal daemon``: run a node."""

import asyncio
import logging
import os
import signal
from pathlib import Path

import click

from shoal import golang, paths
from shoal.daemon.config import DaemonConfig
from shoal.engineapi.listeners import TLSSettings, default_cert_dir
from shoal.network.datapath import DataPathChoice

log = logging.getLogger("shoal.daemon")


async def run_daemon(config: DaemonConfig) -> None:
    from aiohttp import web

    from shoal.daemon.metrics import serve_metrics
    from shoal.daemon.node import NodeDaemon
    from shoal.daemon.old_generation import collect_old_generation
    from shoal.engineapi.api_thread import use_switch_interval
    from shoal.engineapi.listeners import serve
    from shoal.engineapi.server import build_app, build_read_app
    from shoal.metrics.gc_pauses import record_gc_pauses
    from shoal.metrics.loop_lag import probe_loop_lag
    from shoal.store.gc_tuning import tune_gc

    tune_gc()  # a manager holds the whole cluster in memory: see gc_tuning
    use_switch_interval()  # the API's own thread waits less for the interpreter lock
    stop_recording_gc = record_gc_pauses()
    # How late the loop runs things (raft's heartbeats among them): logged when it lags.
    lag_probe = asyncio.create_task(probe_loop_lag(), name="loop-lag-probe")
    daemon = NodeDaemon(config)
    full_collections = asyncio.create_task(
        collect_old_generation(daemon.clock, daemon.pause_costs_leadership),
        name="full-garbage-collections",
    )
    await daemon.start()
    metrics: web.AppRunner | None = None
    dashboard = None
    try:
        if config.metrics_addr:
            metrics = await serve_metrics(daemon, config.metrics_addr)
        app = build_app(daemon)
        # The listeners, and the answers to the reads of the swarm's state, on a thread of
        # their own: this loop is busy while the cluster changes (engineapi.api_thread).
        runner = await serve(
            app, config.api_listeners(), config.api_tls, read_app=build_read_app(app)
        )
        if config.dashboard_addr:
            from shoal.daemon.dashboard import start_dashboard

            try:
                dashboard = await start_dashboard(daemon, config.dashboard_addr, config.api_tls)
            except BaseException:
                await runner.cleanup()
                raise
    except BaseException:
        if metrics is not None:
            await metrics.cleanup()
        await daemon.stop()
        lag_probe.cancel()
        full_collections.cancel()
        stop_recording_gc()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if dashboard is not None:
            await dashboard.stop()
        await runner.cleanup()
        if metrics is not None:
            await metrics.cleanup()
        await daemon.stop()
        lag_probe.cancel()
        full_collections.cancel()
        stop_recording_gc()


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        ns = golang.parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if ns < 0:
        raise click.BadParameter("duration must not be negative")
    return ns / 1e9


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


@click.command("daemon")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Root directory of persistent state (default {paths.default_state_dir()})",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Unix socket for the API (default {paths.default_socket()})",
)
@click.option(
    "-H",
    "--host",
    "hosts",
    multiple=True,
    help="Daemon socket(s) to listen on, as dockerd's: unix:///path or tcp://host:port "
    "(repeatable; default: the --socket)",
)
@click.option(
    "--tls", "use_tls", is_flag=True, help="Use TLS on TCP sockets; implied by --tlsverify"
)
@click.option(
    "--tlsverify",
    is_flag=True,
    default=lambda: bool(os.environ.get("DOCKER_TLS_VERIFY")),
    help="Use TLS on TCP sockets and require a client certificate signed by --tlscacert",
)
@click.option(
    "--tlscacert",
    type=click.Path(path_type=Path),
    default=None,
    help="Trust client certificates signed by this CA only (default ~/.docker/ca.pem)",
)
@click.option(
    "--tlscert",
    type=click.Path(path_type=Path),
    default=None,
    help="Path to the TLS certificate file (default ~/.docker/cert.pem)",
)
@click.option(
    "--tlskey",
    type=click.Path(path_type=Path),
    default=None,
    help="Path to the TLS key file (default ~/.docker/key.pem)",
)
@click.option(
    "--listen-addr",
    default=f"0.0.0.0:{paths.DEFAULT_PORT}",
    show_default=True,
    help="Default listen address for swarm init/join; a specific IP is also the default "
    "advertise address",
)
@click.option("--hostname", default=None, help="Name this node reports (default: the host's)")
@click.option("--label", "labels", multiple=True, help="Engine label key=value (repeatable)")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    help="Runtimes to offer: process, container (default: both; container only while a "
    "Docker Engine answers)",
)
@click.option(
    "--engine-host",
    default=None,
    help="Docker Engine for container tasks, e.g. unix:///var/run/docker.sock "
    "(default: $DOCKER_HOST, else Docker's socket); 'none' for no engine",
)
@click.option(
    "--mesh-data-path",
    type=click.Choice(["auto", "nftables", "userspace"]),
    default="auto",
    show_default=True,
    help="Routing mesh data path: nftables in the kernel where possible, or userspace",
)
@click.option(
    "--mesh-addr",
    "mesh_addresses",
    multiple=True,
    help="Address published ports answer on (repeatable; default: a specific --listen-addr's "
    "IP, else every address)",
)
@click.option(
    "--overlay/--no-overlay",
    default=True,
    show_default=True,
    help="Build overlay networks on this node (needs root, iproute2 and nftables)",
)
@click.option(
    "--data-path-port",
    type=click.IntRange(1024, 49151),
    default=None,
    help="This node's UDP port for overlay (VXLAN) traffic, where several nodes share a "
    "host (default: the swarm's, swarm init --data-path-port)",
)
@click.option(
    "--metrics-addr",
    default=None,
    help="Set default address and port to serve the metrics api on (HOST:PORT; off unless given)",
)
@click.option(
    "--dashboard-addr",
    default=None,
    metavar="HOST:PORT",
    help="Serve the web dashboard here (a manager's view of the cluster; off by default; "
    "with --tlsverify, browsers need a client certificate)",
)
@click.option(
    "--reconnect-grace",
    default=None,
    callback=_seconds,
    help="While managing: how long a node whose connection to the managers closed has to "
    "reconnect before it is marked down and its tasks are moved (default 2s; nodes that go "
    "silent are still found by the heartbeat timeout)",
)
@click.option("-D", "--debug", is_flag=True, help="Enable debug logging")
def daemon_command(
    state_dir: Path | None,
    socket_path: Path | None,
    hosts: tuple[str, ...],
    use_tls: bool,
    tlsverify: bool,
    tlscacert: Path | None,
    tlscert: Path | None,
    tlskey: Path | None,
    listen_addr: str,
    hostname: str | None,
    labels: tuple[str, ...],
    runtimes: tuple[str, ...],
    engine_host: str | None,
    mesh_data_path: DataPathChoice,
    mesh_addresses: tuple[str, ...],
    overlay: bool,
    data_path_port: int | None,
    metrics_addr: str | None,
    dashboard_addr: str | None,
    reconnect_grace: float | None,
    debug: bool,
) -> None:
    """Run a shoal node (the equivalent of dockerd in swarm mode)."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = DaemonConfig(listen_addr=listen_addr, labels=_labels(labels))
    if state_dir is not None:
        config.state_dir = state_dir
    if socket_path is not None:
        config.socket = socket_path
    if hostname:
        config.hostname = hostname
    if runtimes:
        config.runtimes = list(runtimes)
    config.engine_host = engine_host
    config.hosts = list(hosts)
    config.socket_given = socket_path is not None
    if use_tls or tlsverify:
        certs = default_cert_dir()
        config.api_tls = TLSSettings(
            cert=tlscert or certs / "cert.pem",
            key=tlskey or certs / "key.pem",
            cacert=tlscacert or certs / "ca.pem",
            verify=tlsverify,
        )
    try:
        listeners = config.api_listeners()
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="'-H' / '--host'") from None
    if config.api_tls is not None and any(x.path is None for x in listeners):
        tls = config.api_tls
        # dockerd's words for files it cannot read.
        for path in (tls.cert, tls.key):
            if not path.is_file():
                raise click.ClickException(
                    f"Could not load X509 key pair: open {path}: no such file or directory"
                )
        if tls.verify and (tls.cacert is None or not tls.cacert.is_file()):
            raise click.ClickException(
                f"Could not read CA certificate {str(tls.cacert)!r}: open {tls.cacert}: "
                "no such file or directory"
            )
    config.mesh_data_path = mesh_data_path
    config.mesh_addresses = list(mesh_addresses) or None
    config.overlay = overlay
    config.data_path_port = data_path_port
    config.reconnect_grace = reconnect_grace
    if dashboard_addr is not None:
        from shoal.dashboard.server import parse_addr

        try:
            parse_addr(dashboard_addr)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="'--dashboard-addr'") from None
        config.dashboard_addr = dashboard_addr
    # Imported here: its imports are the daemon's, heavier than the CLI's.
    from shoal.daemon.metrics import MetricsServerError, parse_metrics_addr

    if metrics_addr is not None:
        try:
            parse_metrics_addr(metrics_addr)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="'--metrics-addr'") from None
        config.metrics_addr = metrics_addr
    try:
        asyncio.run(run_daemon(config))
    except MetricsServerError as err:
        raise click.ClickException(err.strerror or str(err)) from None
