"""Long lists are answered a slice at a time (issue 15): the same body, with the event loop
free to run other work in between."""

import asyncio
import json

import pytest

from shoal import clock
from shoal.engineapi import responses
from shoal.engineapi.responses import api_list, json_response, list_response


async def test_api_list_converts_every_item_in_order_and_lets_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)  # a turn of the loop after every item
    ran: list[int] = []

    async def other_work() -> None:
        for i in range(3):
            ran.append(i)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    out = await api_list(range(5), lambda i: {"n": i})
    assert out == [{"n": i} for i in range(5)]
    assert ran == [0, 1, 2]  # it ran while the list was being converted
    await other


async def test_a_long_list_encoded_in_a_thread_is_the_body_json_response_writes() -> None:
    data = [{"ID": str(i), "Spec": {"Name": f"t{i}"}} for i in range(responses.ENCODE_IN_THREAD)]
    threaded = await list_response(data)
    inline = json_response(data)
    assert threaded.body == inline.body
    assert threaded.content_type == "application/json"
    assert json.loads(threaded.body) == data  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 1, 199, 200, 201, 600, 607])
def test_a_list_encoded_a_slice_at_a_time_is_the_body_json_response_writes(n: int) -> None:
    data = [{"ID": str(i), "Spec": {"Name": f"t\u00e9{i}\u2028"}} for i in range(n)]
    assert responses.encode_list(data) == json_response(data).body


def test_no_call_of_the_c_encoder_covers_more_than_a_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The json module's C encoder keeps the interpreter lock for a whole call: a call over
    # 100,000 tasks held it for seconds (the event loop and raft's stand-in thread waited).
    sizes: list[int] = []
    dumps = json.dumps

    def recording(obj, **kw):  # type: ignore[no-untyped-def]
        if isinstance(obj, list):
            sizes.append(len(obj))
        return dumps(obj, **kw)

    monkeypatch.setattr(responses.json, "dumps", recording)
    responses.encode_list([{"n": i} for i in range(5 * responses.ENCODE_SLICE + 3)])
    assert sizes and max(sizes) <= responses.ENCODE_SLICE


async def test_a_short_list_is_answered_inline() -> None:
    resp = await list_response([])
    assert resp.body == b"[]\n"


async def test_kept_texts_answer_what_a_list_response_answers_and_follow_each_object() -> None:
    from shoal.api.objects import Node
    from shoal.api.specs import NodeSpec
    from shoal.engineapi.responses import ApiTexts

    dumped: list[str] = []

    def to_api(node: Node) -> dict:
        dumped.append(node.ID)
        return node.to_api()

    nodes = [Node(ID=f"n{i}", Spec=NodeSpec(Name=f"h\u00e9{i}")) for i in range(30)]
    texts = ApiTexts(to_api)
    expected = (await list_response(await api_list(nodes, Node.to_api))).body
    assert (await texts.list_response(nodes)).body == expected
    assert (await texts.list_response(nodes)).body == expected
    assert dumped == [n.ID for n in nodes]  # each node once: the second list reused them

    # A node replaced in the store (a new object, as the store's writes make) shows as it is.
    changed = nodes[3].clone()
    changed.Spec.Name = "renamed"
    nodes[3] = changed
    dumped.clear()
    body = (await texts.list_response(nodes)).body
    assert body == (await list_response(await api_list(nodes, Node.to_api))).body
    assert dumped == ["n3"] and b'"renamed"' in body  # type: ignore[operator]

    # Nodes no longer listed are forgotten once a list shows far fewer than are kept.
    assert (await texts.list_response(nodes[:5])).body == json_response(
        [n.to_api() for n in nodes[:5]]
    ).body
    assert len(texts) == 5
