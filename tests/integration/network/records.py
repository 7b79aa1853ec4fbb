"""The front network's records that the resolver tests serve, in-process and in a namespace."""

from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry

FRONT = NetworkRecords.build(
    "front",
    [
        ServiceEntry(
            "web",
            "vip",
            "10.0.1.2/24",
            tasks=tuple(TaskEntry(f"web.{i}.t{i}", f"10.0.1.{10 + i}/24") for i in (1, 2, 3)),
        ),
        # too many addresses for a 512-byte UDP answer: the client must retry over TCP
        ServiceEntry(
            "big",
            "dnsrr",
            tasks=tuple(TaskEntry(f"big.{i}.b", f"10.0.3.{i}") for i in range(1, 101)),
        ),
    ],
)
