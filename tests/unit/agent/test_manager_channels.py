from shoal.agent.manager_channels import ManagerChannels
from shoal.rpc import TLSMaterial, Transport


async def test_a_channel_is_kept_per_manager_until_dropped():
    channels = ManagerChannels(Transport())
    first = await channels.get("127.0.0.1:1")
    assert await channels.get("127.0.0.1:1") is first
    other = await channels.get("127.0.0.1:2")
    assert other is not first
    await channels.keep_only(["127.0.0.1:2"])
    assert "127.0.0.1:1" not in channels and "127.0.0.1:2" in channels
    await channels.drop("127.0.0.1:2")
    assert await channels.get("127.0.0.1:2") is not other
    await channels.close()
    assert "127.0.0.1:2" not in channels


async def test_a_new_certificate_means_new_channels():
    transport = Transport()
    channels = ManagerChannels(transport)
    first = await channels.get("127.0.0.1:1")
    kept = await channels.get("127.0.0.1:2")
    transport.update(TLSMaterial(cert=b"c", key=b"k", ca=b"a"))  # renewed: generation moves
    transport.tls = None  # (the channel itself is not the point here: built in the clear)
    assert await channels.get("127.0.0.1:1") is not first
    assert "127.0.0.1:2" not in channels and kept is not None
    await channels.close()
