import random
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry
from shoal.network.dns.resolver import (
    MAX_TCP,
    MAX_UDP,
    TTL,
    Answer,
    Forward,
    decide,
    encode,
    parse_query,
    rotations,
    udp_limit,
)

FRONT = NetworkRecords.build(
    "front",
    [
        ServiceEntry(
            "web",
            "vip",
            "10.0.1.2/24",
            aliases=("www",),
            tasks=tuple(TaskEntry(f"web.{i}.t{i}", f"10.0.1.{10 + i}/24") for i in range(1, 6)),
        ),
        ServiceEntry("db", "dnsrr", tasks=(TaskEntry("db.1.x", "10.0.1.30"),)),
        ServiceEntry("idle", "dnsrr"),
        ServiceEntry("six", "dnsrr", tasks=(TaskEntry("six.1.y", "fd00::5"),)),
    ],
)
BACK = NetworkRecords.build(
    "back",
    [ServiceEntry("web", "vip", "10.0.2.2", tasks=(TaskEntry("web.1.t1", "10.0.2.11"),))],
)
WEB_TASKS = {f"10.0.1.{10 + i}" for i in range(1, 6)}


def query(name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    return dns.message.from_wire(q.to_wire())  # as the server gets it


def answer(q: dns.message.Message, networks=(FRONT,), seed: int = 0) -> dns.message.Message:
    d = decide(q, list(networks) if networks is not None else None, random.Random(seed))
    assert isinstance(d, Answer), d
    return d.message


def addresses(msg: dns.message.Message) -> list[str]:
    """The answer's records as a client reads them off the wire."""
    got = dns.message.from_wire(encode(msg, MAX_TCP))
    return [rd.to_text() for rrset in got.answer for rd in rrset]


def test_a_service_under_vip_answers_its_vip() -> None:
    q = query("web")
    r = answer(q)
    assert r.id == q.id and r.flags & dns.flags.QR and r.flags & dns.flags.RA
    assert r.rcode() == dns.rcode.NOERROR
    assert addresses(r) == ["10.0.1.2"]
    assert r.answer[0].ttl == TTL == 600
    assert r.answer[0].name == dns.name.from_text("web")
    assert r.question == q.question


def test_tasks_and_dnsrr_names_answer_every_task() -> None:
    assert set(addresses(answer(query("tasks.web")))) == WEB_TASKS
    assert len(addresses(answer(query("tasks.web")))) == 5
    assert addresses(answer(query("db"))) == ["10.0.1.30"]
    assert addresses(answer(query("www"))) == ["10.0.1.2"]
    assert set(addresses(answer(query("tasks.www")))) == WEB_TASKS
    assert addresses(answer(query("web.3.t3"))) == ["10.0.1.13"]


def test_names_answer_whatever_their_case_and_keep_the_askers_case() -> None:
    q = query("TASKS.Web.")
    r = answer(q)
    assert set(addresses(r)) == WEB_TASKS
    assert r.answer[0].name.to_text() == "TASKS.Web."


def test_several_addresses_come_in_an_order_that_spreads_clients() -> None:
    rng = random.Random(7)
    q = query("tasks.web")
    orders = []
    for _ in range(500):
        d = decide(q, [FRONT], rng)
        assert isinstance(d, Answer)
        orders.append(tuple(addresses(d.message)))
    assert all(set(o) == WEB_TASKS for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert set(firsts) == WEB_TASKS
    assert min(firsts.values()) > 500 / 5 / 2  # each task comes first about a fifth of the time


def test_the_same_random_source_gives_the_same_answers() -> None:
    q = query("tasks.web")
    assert addresses(answer(q, seed=3)) == addresses(answer(q, seed=3))


def test_first_network_of_the_asker_wins_and_union_covers_both() -> None:
    assert addresses(answer(query("web"), [FRONT, BACK])) == ["10.0.1.2"]
    assert addresses(answer(query("web"), [BACK, FRONT])) == ["10.0.2.2"]
    assert addresses(answer(query("db"), [BACK, FRONT])) == ["10.0.1.30"]
    assert addresses(answer(query("web.back"), [FRONT, BACK])) == ["10.0.2.2"]


def test_aaaa_for_our_name_is_no_data_not_forwarded() -> None:
    r = answer(query("web", "AAAA"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []


def test_aaaa_for_an_ipv6_task() -> None:
    assert addresses(answer(query("six", "AAAA"))) == ["fd00::5"]
    assert answer(query("six", "A")).answer == []


def test_other_types_for_our_names_are_no_data() -> None:
    for rdtype in ("MX", "TXT", "SRV", "CNAME"):
        r = answer(query("web", rdtype))
        assert r.rcode() == dns.rcode.NOERROR and r.answer == [], rdtype


def test_any_gives_the_addresses() -> None:
    assert addresses(answer(query("web", "ANY"))) == ["10.0.1.2"]


def test_our_name_without_addresses_is_no_data() -> None:
    r = answer(query("idle"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []


def test_other_names_are_forwarded() -> None:
    for name, rdtype in [
        ("example.com", "A"),
        ("nginx", "A"),
        ("example.com", "AAAA"),
        ("web.other-net", "A"),
        ("tasks.nope", "MX"),
    ]:
        assert decide(query(name, rdtype), [FRONT], random.Random()) == Forward(), name
    # names of networks the asker is not on
    assert decide(query("web"), [], random.Random()) == Forward()


def test_other_classes_are_forwarded() -> None:
    q = query("web", "TXT", rdclass=dns.rdataclass.CH)
    assert decide(q, [FRONT], random.Random()) == Forward()


def test_pointer_records() -> None:
    r = answer(query(dns.reversename.from_address("10.0.1.13"), "PTR"), [FRONT, BACK])
    assert addresses(r) == ["web.3.t3.front."]
    assert r.answer[0].ttl == TTL
    r = answer(query(dns.reversename.from_address("10.0.2.2"), "PTR"), [FRONT, BACK])
    assert addresses(r) == ["web.back."]
    r = answer(query(dns.reversename.from_address("fd00::5"), "PTR"))
    assert addresses(r) == ["six.1.y.front."]
    r = answer(query("13.1.0.10.IN-ADDR.ARPA.", "PTR"))
    assert addresses(r) == ["web.3.t3.front."]


def test_pointers_we_do_not_know_are_forwarded() -> None:
    for name in [
        "1.2.0.192.in-addr.arpa",
        "0.10.in-addr.arpa",
        "example.com",
        "x.1.0.10.in-addr.arpa",
    ]:
        assert decide(query(name, "PTR"), [FRONT], random.Random()) == Forward(), name
    # a task address of a network the asker is not on
    assert decide(query("11.2.0.10.in-addr.arpa", "PTR"), [FRONT], random.Random()) == Forward()


def test_unknown_client_is_refused() -> None:
    for name in ("web", "example.com"):
        r = answer(query(name), networks=None)
        assert r.rcode() == dns.rcode.REFUSED and r.answer == []


def test_other_opcodes_are_not_implemented() -> None:
    q = query("web")
    q.set_opcode(dns.opcode.NOTIFY)
    assert answer(dns.message.from_wire(q.to_wire())).rcode() == dns.rcode.NOTIMP


def test_several_questions_are_a_format_error() -> None:
    q = query("web")
    q.question.append(query("db").question[0])
    assert answer(dns.message.from_wire(q.to_wire())).rcode() == dns.rcode.FORMERR


def test_edns_query_gets_edns_answer_with_our_payload() -> None:
    r = answer(query("web", use_edns=0, payload=4096))
    assert r.edns == 0 and r.payload == MAX_UDP


def test_parse_query() -> None:
    q = query("web")
    wire = q.to_wire()
    parsed = parse_query(wire)
    assert isinstance(parsed, dns.message.Message) and parsed.question == q.question
    # garbage after a readable header: FORMERR with the query's ID
    bad = parse_query(wire[:12] + b"\xff\xff\xff")
    assert isinstance(bad, Answer)
    assert bad.message.id == q.id and bad.message.rcode() == dns.rcode.FORMERR
    assert bad.message.flags & dns.flags.QR and bad.message.flags & dns.flags.RD
    assert dns.message.from_wire(encode(bad.message, 512)).rcode() == dns.rcode.FORMERR
    assert parse_query(b"\x00\x01") is None  # not even a header
    assert parse_query(b"") is None
    # a response: never answered
    response = dns.message.make_response(q).to_wire()
    assert parse_query(response) is None
    assert parse_query(response[:12] + b"\xff") is None


def test_udp_limit() -> None:
    assert udp_limit(query("web")) == 512
    assert udp_limit(query("web", use_edns=0, payload=4096)) == MAX_UDP
    assert udp_limit(query("web", use_edns=0, payload=1000)) == 1000
    assert udp_limit(query("web", use_edns=0, payload=100)) == 512


def big_network(n: int) -> NetworkRecords:
    tasks = tuple(TaskEntry(f"big.{i}.t", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(n))
    return NetworkRecords.build("n", [ServiceEntry("big", "dnsrr", tasks=tasks)])


def test_an_answer_too_big_for_udp_is_cut_record_by_record_with_tc() -> None:
    net = big_network(100)
    q = query("big")
    r = answer(q, [net])
    wire = encode(r, udp_limit(q))
    assert len(wire) <= 512
    got = dns.message.from_wire(wire)
    assert got.flags & dns.flags.TC
    assert 10 < len(addresses(got)) < 100  # as many as fit, not none
    assert set(addresses(got)) <= set(addresses(r))
    # the message itself is left whole, and TCP carries all of it
    assert len(addresses(r)) == 100
    full = dns.message.from_wire(encode(r, MAX_TCP))
    assert not full.flags & dns.flags.TC and len(addresses(full)) == 100


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 120), limit=st.integers(512, 2048), edns=st.booleans())
def test_encode_fits_the_limit_and_sets_tc_only_when_records_are_left_out(
    n: int, limit: int, edns: bool
) -> None:
    q = query("big", use_edns=0 if edns else False)
    r = answer(q, [big_network(n)])
    wire = encode(r, limit)
    assert len(wire) <= limit
    got = dns.message.from_wire(wire)
    assert bool(got.flags & dns.flags.TC) == (len(addresses(got)) < n)
    assert (got.edns >= 0) == edns


def test_encode_rotates_the_answer_and_leaves_the_message_whole() -> None:
    r = answer(query("tasks.web"))
    base = addresses(r)
    for k in range(7):
        got = [rd.to_text() for rs in dns.message.from_wire(encode(r, 512, k)).answer for rd in rs]
        assert got == base[k % 5 :] + base[: k % 5]
    assert addresses(r) == base
    assert rotations(r) == 5
    assert rotations(answer(query("web"))) == 1
    assert rotations(answer(query("web", "AAAA"))) == 1
