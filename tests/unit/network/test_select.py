from pathlib import Path

import pytest

from shoal.errors import Unavailable
from shoal.network.datapath import MeshConfig
from shoal.network.select import choose_data_path, has_cap_net_admin, probe_kernel_path


def test_cap_net_admin_is_read_from_the_effective_set(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000001000\n")
    assert has_cap_net_admin(status)
    status.write_text("Name:\tx\nCapEff:\t0000000000000fff\n")
    assert not has_cap_net_admin(status)
    assert not has_cap_net_admin(tmp_path / "missing")


async def test_userspace_can_be_forced() -> None:
    dp = await choose_data_path(MeshConfig(data_path="userspace"))
    assert dp.name == "userspace"
    assert dp.reason == "forced by configuration"


async def test_loopback_only_nodes_get_userspace() -> None:
    config = MeshConfig(addresses=["127.0.0.2"])
    probe = await probe_kernel_path(config)
    assert not probe.ok and "loopback" in probe.reason
    dp = await choose_data_path(config)
    assert dp.name == "userspace"
    assert "loopback" in dp.reason


async def test_a_kernel_that_fails_the_check_gets_userspace() -> None:
    # `false` stands in for an nft whose check fails (no nftables NAT in the kernel).
    config = MeshConfig(addresses=["198.18.0.3"])
    dp = await choose_data_path(config, nft="false")
    assert dp.name == "userspace"
    probe = await probe_kernel_path(config, nft="false")
    assert not probe.ok


async def test_forcing_nftables_where_it_cannot_work_is_an_error() -> None:
    config = MeshConfig(data_path="nftables", addresses=["127.0.0.2"])
    with pytest.raises(Unavailable, match="loopback"):
        await choose_data_path(config)


async def test_a_missing_nft_tool_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shoal.network.select.has_cap_net_admin", lambda: True)
    probe = await probe_kernel_path(MeshConfig(), nft="no-such-nft-tool")
    assert probe == probe.__class__(False, "the nft tool is not installed")


def test_config_validates() -> None:
    with pytest.raises(ValueError):
        MeshConfig(data_path="ipvs")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MeshConfig(addresses=["node1"])
    assert MeshConfig(addresses=["::0001"]).addresses == ["::1"]
