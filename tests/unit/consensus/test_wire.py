"""What travels between managers besides raft itself: raft messages cut into chunks and
joined again, and forwarded control API results and errors."""

import pytest

from shoal import errors
from shoal.api.ids import new_id
from shoal.api.objects import Node, Service
from shoal.api.specs import ServiceSpec
from shoal.manager.consensus.forwarding import (
    decode_error,
    decode_value,
    encode_error,
    encode_value,
)
from shoal.manager.consensus.peers import chunks, join_chunks
from shoal.raft.types import CommitUnknown, NotLeader


async def _join(pieces):
    async def stream():
        for p in pieces:
            yield p

    return [m async for m in join_chunks(stream())]


@pytest.mark.parametrize("sizes", [[0], [1], [10, 0, 7], [25], [24, 26, 8]])
async def test_messages_survive_chunking(sizes):
    payloads = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    pieces = chunks(payloads, size=8)
    assert all(len(p.data) <= 8 for p in pieces)
    assert await _join(pieces) == payloads


async def test_a_stream_cut_inside_a_message_is_refused():
    pieces = chunks([b"x" * 20], size=8)[:-1]
    with pytest.raises(ValueError):
        await _join(pieces)


def test_results_round_trip():
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name="web"))
    back = decode_value(encode_value(svc))
    assert isinstance(back, Service) and back.to_json() == svc.to_json()
    nodes = [Node(ID=new_id()), Node(ID=new_id())]
    assert [n.ID for n in decode_value(encode_value(nodes))] == [n.ID for n in nodes]
    for plain in (None, 3, "x", {"a": [1]}):
        assert decode_value(encode_value(plain)) == plain


@pytest.mark.parametrize(
    "err",
    [
        errors.InvalidArgument("bad"),
        errors.OutOfSequence("rpc error: code = Unknown desc = update out of sequence"),
        errors.FailedPrecondition("can't remove member"),
        errors.Conflict("exists"),
        errors.NotFound("nope"),
        errors.Unimplemented("no"),
    ],
)
def test_errors_keep_their_class_and_message(err):
    back = decode_error(encode_error(err))
    assert type(back) is type(err) and back.message == err.message and back.status == err.status


def test_raft_errors_arrive_as_unavailable():
    for err in (NotLeader(3), CommitUnknown()):
        back = decode_error(encode_error(err))
        assert type(back) is errors.Unavailable and back.status == 503
        assert back.message == err.message
