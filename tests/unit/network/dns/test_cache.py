import gc
import random
from collections import Counter

import dns.message

from shoal.network.dns.cache import AnswerCache
from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry
from shoal.network.dns.resolver import Answer, decide, encode

TASKS = [f"10.0.1.{i}" for i in range(10, 15)]


def records(name: str = "front") -> NetworkRecords:
    tasks = tuple(TaskEntry(f"web.{i}.t", a) for i, a in enumerate(TASKS))
    return NetworkRecords.build(name, [ServiceEntry("web", "vip", "10.0.1.2", tasks=tasks)])


def query(name: str, qid: int = 1) -> bytes:
    q = dns.message.make_query(name, "A")
    q.id = qid
    return q.to_wire()


def answer_and_keep(cache: AnswerCache, wire: bytes, networks, tcp: bool = False) -> bytes:
    """What the server does on a miss: decide, render, keep."""
    d = decide(dns.message.from_wire(wire), networks, random.Random(0))
    assert isinstance(d, Answer)
    rendered = encode(d.message, 512)
    cache.put(wire, tcp, networks, d.message, 512, rendered)
    return rendered


def addresses(wire: bytes) -> list[str]:
    return [rd.to_text() for rrset in dns.message.from_wire(wire).answer for rd in rrset]


def test_a_kept_answer_comes_back_with_the_new_querys_id() -> None:
    cache, nets, rng = AnswerCache(), [records()], random.Random(1)
    assert cache.get(query("web", 1), False, nets, rng) is None
    first = answer_and_keep(cache, query("web", 1), nets)
    again = cache.get(query("web", 777), False, nets, rng)
    assert again is not None and again[2:] == first[2:]
    assert dns.message.from_wire(again).id == 777
    assert (cache.hits, cache.misses) == (1, 1)


def test_each_address_comes_first_as_often_from_the_cache() -> None:
    cache, nets, rng = AnswerCache(), [records()], random.Random(1)
    answer_and_keep(cache, query("tasks.web"), nets)
    orders = [addresses(cache.get(query("tasks.web", i), False, nets, rng)) for i in range(1000)]
    base = orders[0]
    rotations = {tuple(base[k:] + base[:k]) for k in range(len(base))}
    assert {tuple(o) for o in orders} == rotations  # every rotation, nothing else
    firsts = Counter(o[0] for o in orders)
    assert set(firsts) == set(TASKS) and min(firsts.values()) > 1000 / 5 / 2


def test_other_bytes_transport_or_records_are_other_entries() -> None:
    cache, nets, rng = AnswerCache(), [records()], random.Random(1)
    answer_and_keep(cache, query("web"), nets)
    assert cache.get(query("WEB"), False, nets, rng) is None  # exact bytes: case included
    assert cache.get(query("web"), True, nets, rng) is None
    # equal records built anew (the map changed, then changed back): not the same records
    assert cache.get(query("web"), False, [records()], rng) is None
    assert cache.get(query("web"), False, [*nets, records("back")], rng) is None
    assert cache.get(query("web"), False, list(nets), rng) is not None  # same objects


def test_answers_go_with_their_records() -> None:
    cache, rng = AnswerCache(), random.Random(1)
    front, back = records("front"), records("back")
    answer_and_keep(cache, query("web"), [front])
    answer_and_keep(cache, query("web"), [back, front])
    answer_and_keep(cache, query("web"), [back])
    assert len(cache) == 3
    del back
    gc.collect()
    assert len(cache) == 1
    assert cache.get(query("web"), False, [front], rng) is not None


def test_least_recently_used_go_first() -> None:
    cache, nets, rng = AnswerCache(size=2), [records()], random.Random(1)
    for name in ("web", "tasks.web"):
        answer_and_keep(cache, query(name), nets)
    assert cache.get(query("web"), False, nets, rng) is not None  # now the most recent
    answer_and_keep(cache, query("web.0.t"), nets)
    assert len(cache) == 2
    assert cache.get(query("tasks.web"), False, nets, rng) is None
    assert cache.get(query("web"), False, nets, rng) is not None


def test_size_zero_keeps_nothing() -> None:
    cache, nets = AnswerCache(size=0), [records()]
    answer_and_keep(cache, query("web"), nets)
    assert len(cache) == 0 and cache.get(query("web"), False, nets, random.Random()) is None
