"""Consumer groups with real clients: rebalancing across members, kill -9 of a member,
committed offsets across consumer and broker restarts, several groups, and
auto.offset.reset semantics."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer
from kafka.errors import NoOffsetForPartitionError

from conftest import Server, create_topic, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = "group_initial_rebalance_delay_ms = 0\n"
PARTITIONS = 6


# One condition for every member's output, so a wait on any member wakes up when any
# member prints.
EVENTS = threading.Condition()


class Member:
    """A group_member.py process and what it printed."""

    def __init__(self, server, group, topic, *extra):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "group_member.py"),
                                      server.kafka, group, topic, *extra],
                                     stdout=subprocess.PIPE, text=True)
        self.events = []
        self.cond = EVENTS
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.events.append(json.loads(line))
                self.cond.notify_all()
        with self.cond:
            self.events.append({"exit": True})
            self.cond.notify_all()

    def wait_for(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; events: {self.events[-5:]}"
                self.cond.wait(left)

    def assignment(self):
        with self.cond:
            assigned = [e["assigned"] for e in self.events if "assigned" in e]
        return assigned[-1] if assigned else None

    def messages(self):
        with self.cond:
            return [e["msg"] for e in self.events if "msg" in e]

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=30)


def produce(server, topic, values):
    p = Producer({"bootstrap.servers": server.kafka})
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), partition=i % PARTITIONS)
    assert p.flush(30) == 0


def wait_committed(server, group, topic, total, timeout=60):
    """Waits until the group's committed offsets over all partitions add up to `total`
    (offsets start at 0, so that is every record committed)."""
    c = Consumer({"bootstrap.servers": server.kafka, "group.id": group})
    deadline = time.monotonic() + timeout
    try:
        while True:
            parts = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
            done = sum(max(p.offset, 0) for p in parts)
            if done == total:
                return
            assert time.monotonic() < deadline, f"committed {done} of {total}"
            time.sleep(0.2)
    finally:
        c.close()


def assignments_settle(members, timeout=60):
    """Waits until the members' latest assignments cover every partition exactly once."""
    deadline = time.monotonic() + timeout
    while True:
        current = [m.assignment() for m in members]
        if all(a is not None for a in current):
            flat = sorted(p for a in current for p in a)
            if flat == list(range(PARTITIONS)) and all(a for a in current):
                return current
        assert time.monotonic() < deadline, f"assignments never settled: {current}"
        with members[0].cond:
            members[0].cond.wait(0.2)


@pytest.fixture
def fast_server():
    s = Server(FAST)
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_members_share_partitions_and_survive_kill_9(fast_server):
    server = fast_server
    create_topic(server, "grp", PARTITIONS)
    produce(server, "grp", [f"a{i}" for i in range(120)])
    m1 = Member(server, "g1", "grp")
    m2 = Member(server, "g1", "grp")
    assignments_settle([m1, m2])
    m3 = Member(server, "g1", "grp")
    assignments_settle([m1, m2, m3])
    # Everything produced so far is consumed by someone.
    m1.wait_for(lambda _: len(set(m1.messages() + m2.messages() + m3.messages())) >= 120)
    produce(server, "grp", [f"b{i}" for i in range(120)])
    # kill -9: its partitions move to the others after the session timeout.
    m3.kill9()
    settled = assignments_settle([m1, m2])
    assert sorted(settled[0] + settled[1]) == list(range(PARTITIONS))
    want = {f"a{i}" for i in range(120)} | {f"b{i}" for i in range(120)}
    m1.wait_for(lambda _: want <= set(m1.messages() + m2.messages() + m3.messages()))
    # Once every record's offset is committed, a new member resumes after them.
    wait_committed(server, "g1", "grp", 240)
    m1.stop()
    m2.stop()
    produce(server, "grp", [f"c{i}" for i in range(60)])
    m4 = Member(server, "g1", "grp")
    m4.wait_for(lambda _: len(m4.messages()) >= 60)
    m4.stop()
    assert set(m4.messages()) == {f"c{i}" for i in range(60)}, "resumed from committed offsets"


def test_two_groups_each_see_every_message(fast_server):
    server = fast_server
    create_topic(server, "fanout", PARTITIONS)
    values = [f"v{i}" for i in range(90)]
    produce(server, "fanout", values)
    a = Member(server, "ga", "fanout")
    b = Member(server, "gb", "fanout")
    a.wait_for(lambda _: set(a.messages()) >= set(values))
    b.wait_for(lambda _: set(b.messages()) >= set(values))
    a.stop()
    b.stop()


def test_kafka_python_group_consumer_and_offset_reset(fast_server):
    server = fast_server
    create_topic(server, "kpg", PARTITIONS)
    produce(server, "kpg", [f"k{i}" for i in range(60)])
    def read_in_group(n):
        c = KafkaConsumer("kpg", bootstrap_servers=server.kafka, group_id="kpg-group",
                          auto_offset_reset="earliest", consumer_timeout_ms=15000)
        got = []
        for m in c:
            got.append(m.value.decode())
            if len(got) == n:
                break
        c.commit()
        c.close()
        return sorted(got)

    assert read_in_group(60) == sorted(f"k{i}" for i in range(60))
    # Same group again: nothing is re-read; only new records arrive.
    produce(server, "kpg", [f"n{i}" for i in range(12)])
    assert read_in_group(12) == sorted(f"n{i}" for i in range(12))
    # A new group with 'latest' sees only what comes after it joined.
    c = KafkaConsumer("kpg", bootstrap_servers=server.kafka, group_id="late",
                      auto_offset_reset="latest", consumer_timeout_ms=3000)
    c.poll(timeout_ms=5000)  # joins and positions at the end
    while not c.assignment():
        c.poll(timeout_ms=500)
    for tp in c.assignment():
        c.position(tp)
    produce(server, "kpg", ["after"] * PARTITIONS)
    late = []
    deadline = time.monotonic() + 30
    while len(late) < PARTITIONS and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            late.extend(r.value.decode() for r in recs)
    c.close()
    assert late == ["after"] * PARTITIONS
    # 'none' with no committed offset is an error, not a silent choice.
    c = KafkaConsumer("kpg", bootstrap_servers=server.kafka, group_id="strict",
                      auto_offset_reset="none", consumer_timeout_ms=3000)
    with pytest.raises(NoOffsetForPartitionError):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            c.poll(timeout_ms=500)
    c.close()


def test_confluent_auto_offset_reset_error(fast_server):
    server = fast_server
    create_topic(server, "strict", 1)
    produce(server, "strict", ["x"])
    c = Consumer({"bootstrap.servers": server.kafka, "group.id": "strict-c",
                  "auto.offset.reset": "error", "enable.auto.commit": False})
    c.subscribe(["strict"])
    err = None
    deadline = time.monotonic() + 30
    while err is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
        assert m is None or m.error(), "no record may be delivered without an offset"
    c.close()
    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET


def test_broker_restart_keeps_committed_offsets():
    port = free_port()
    server = Server(FAST, kafka_port=port)
    data = server.data
    try:
        create_topic(server, "rs", PARTITIONS)
        produce(server, "rs", [f"r{i}" for i in range(60)])
        m = Member(server, "rg", "rs")
        m.wait_for(lambda _: len(m.messages()) >= 60)
        wait_committed(server, "rg", "rs", 60)
        server.stop(cleanup=False)
        server = Server(FAST, kafka_port=port, data_dir=data)
        produce(server, "rs", [f"s{i}" for i in range(30)])
        # The same member process reconnects, rejoins and continues after its offsets.
        want_new = {f"s{i}" for i in range(30)}
        m.wait_for(lambda _: want_new <= set(m.messages()))
        m.stop()
        got = m.messages()
        old = [x for x in got if x.startswith("r")]
        assert sorted(old) == sorted(f"r{i}" for i in range(60)), "committed records were read again after the restart"
    finally:
        if server.proc.poll() is None:
            server.stop()


def test_aiokafka_group_round_trip(fast_server):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    server = fast_server
    create_topic(server, "aio", 3)

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=server.kafka, enable_idempotence=True)
        await producer.start()
        try:
            for i in range(45):
                await producer.send_and_wait("aio", f"aio{i}".encode(), partition=i % 3)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aio", bootstrap_servers=server.kafka, group_id="aio-group",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        got = []
        try:
            while len(got) < 45:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                for recs in batch.values():
                    got.extend(r.value.decode() for r in recs)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert sorted(got) == sorted(f"aio{i}" for i in range(45))
    # The commit is visible to any client of the group.
    c = Consumer({"bootstrap.servers": server.kafka, "group.id": "aio-group"})
    committed = c.committed([TopicPartition("aio", p) for p in range(3)], timeout=10)
    c.close()
    assert [p.offset for p in committed] == [15, 15, 15]


def test_cooperative_sticky_members_share_partitions(fast_server):
    server = fast_server
    create_topic(server, "coop", PARTITIONS)
    produce(server, "coop", [f"c{i}" for i in range(60)])
    strategy = "partition.assignment.strategy=cooperative-sticky"
    m1 = Member(server, "coop-g", "coop", strategy)
    m1.wait_for(lambda _: m1.assignment() == list(range(PARTITIONS)))
    m2 = Member(server, "coop-g", "coop", strategy)
    # Incremental assignment: on_assign reports only what was added, so track the union
    # of what each member printed and wait until both own something and all is owned.
    def owned(m):
        with m.cond:
            return [p for e in m.events if "assigned" in e for p in e["assigned"]]
    m2.wait_for(lambda _: len(set(owned(m2))) == 3)
    m1.wait_for(lambda _: len(set(m1.messages() + m2.messages())) == 60)
    m1.stop()
    m2.stop()


def test_static_member_restart_does_not_rebalance_the_group(fast_server):
    server = fast_server
    create_topic(server, "static", PARTITIONS)
    produce(server, "static", [f"s{i}" for i in range(30)])
    m1 = Member(server, "static-g", "static", "group.instance.id=one", "session.timeout.ms=30000")
    m2 = Member(server, "static-g", "static", "group.instance.id=two", "session.timeout.ms=30000")
    first = assignments_settle([m1, m2])
    m1_rebalances = len([e for e in m1.events if "assigned" in e])
    m2.kill9()
    # Restarted within the session timeout under the same instance id: it gets its old
    # partitions back and the other member is not disturbed.
    m2b = Member(server, "static-g", "static", "group.instance.id=two", "session.timeout.ms=30000")
    m2b.wait_for(lambda _: m2b.assignment() is not None)
    assert m2b.assignment() == first[1]
    produce(server, "static", [f"t{i}" for i in range(30)])
    m1.wait_for(lambda _: {f"t{i}" for i in range(30)} <= set(m1.messages() + m2b.messages()))
    assert len([e for e in m1.events if "assigned" in e]) == m1_rebalances, "no rebalance for m1"
    m1.stop()
    m2b.stop()
