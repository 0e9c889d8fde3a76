"""Behaviours where real clients' own expectations meet Kafka's documented answers:
old message formats, fetch size limits, admin corner cases, authorized operations,
group metadata in __consumer_offsets, and transactions refused fast."""
import time

import pytest
from confluent_kafka import KafkaException, Producer


def test_transactional_producers_fail_fast_with_a_message(server):
    p = Producer({"bootstrap.servers": server.kafka, "transactional.id": "tx-1",
                  "transaction.timeout.ms": 60000})
    started = time.monotonic()
    with pytest.raises(KafkaException) as e:
        p.init_transactions(30)
    assert time.monotonic() - started < 10
    assert "transactions are not supported" in str(e.value), e.value


def test_describe_cluster_and_authorized_operations_without_an_authorizer(server):
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation, AdminClient
    from conftest import create_topic
    admin = AdminClient({"bootstrap.servers": server.kafka})
    create_topic(server, "ops", 1)
    c = admin.describe_cluster(request_timeout=10, include_authorized_operations=True).result()
    assert c.cluster_id == "logbridge" and len(c.nodes) == 1 and c.controller is not None
    cluster_ops = set(c.authorized_operations or [])
    assert {AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE,
            AclOperation.CLUSTER_ACTION, AclOperation.IDEMPOTENT_WRITE} <= cluster_ops, cluster_ops
    # Not asked for: no operations reported (Kafka's "not requested" sentinel).
    c = admin.describe_cluster(request_timeout=10).result()
    assert not c.authorized_operations
    t = admin.describe_topics(TopicCollection(["ops"]), include_authorized_operations=True)["ops"].result()
    assert {AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE,
            AclOperation.DESCRIBE_CONFIGS} <= set(t.authorized_operations or []), t.authorized_operations
    # A group with a member, described with its operations.
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": server.kafka, "group.id": "ops-group",
                         "session.timeout.ms": 6000})
    consumer.subscribe(["ops"])
    for _ in range(40):
        consumer.poll(0.25)
        if consumer.assignment():
            break
    g = admin.describe_consumer_groups(["ops-group"], include_authorized_operations=True)["ops-group"].result()
    assert {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE} <= set(g.authorized_operations or [])
    consumer.close()


def test_create_topics_takes_the_partition_count_from_replica_assignments(server):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": server.kafka})
    fs = admin.create_topics([NewTopic("assigned", num_partitions=4, replica_assignment=[[0], [0], [0], [0]])])
    fs["assigned"].result(10)
    md = admin.list_topics("assigned", timeout=10)
    assert len(md.topics["assigned"].partitions) == 4
    # Brokers that do not exist, a broker twice, or counts as well as assignments.
    bad = admin.create_topics([NewTopic("ghost", num_partitions=1, replica_assignment=[[7]]),
                               NewTopic("twice", num_partitions=1, replica_assignment=[[0, 0]])])
    for name in ("ghost", "twice"):
        with pytest.raises(KafkaException) as e:
            bad[name].result(10)
        assert e.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT", e.value


def _confluent_read(server, topic, count, partitions=1, **conf):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": server.kafka, "group.id": f"read-{topic}",
                  "enable.auto.commit": False, **conf})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        for m in c.consume(num_messages=500, timeout=0.5):
            assert m.error() is None, m.error()
            out.append(m)
    c.close()
    return out


@pytest.mark.parametrize("api_version,codec", [((0, 10, 1), "gzip"), ((0, 10, 1), "snappy"),
                                               ((0, 10, 1), "lz4"), ((0, 9), "gzip")])
def test_old_format_compressed_message_sets_are_converted(server, api_version, codec):
    """kafka-python speaking the pre-0.11 format (magic 1 at 0.10, magic 0 at 0.9)
    compresses whole message sets; they are stored as v2 batches with their keys and,
    for magic 1, their timestamps — magic 0 has none (-1)."""
    from kafka import KafkaProducer
    from conftest import create_topic
    topic = f"old-{codec}-{api_version[1]}"
    create_topic(server, topic, 1)
    prod = KafkaProducer(bootstrap_servers=server.kafka, api_version=api_version,
                         compression_type=codec, linger_ms=20)
    for i in range(50):
        prod.send(topic, key=f"k{i}".encode(), value=f"{codec} {i}".encode(),
                  timestamp_ms=1_700_000_000_000 + i if api_version >= (0, 10) else None)
    prod.flush(30)
    prod.close()
    got = _confluent_read(server, topic, 50)
    assert [m.value() for m in got] == [f"{codec} {i}".encode() for i in range(50)]
    assert [m.key() for m in got] == [f"k{i}".encode() for i in range(50)]
    stamps = [m.timestamp()[1] for m in got]
    if api_version >= (0, 10):
        assert stamps == [1_700_000_000_000 + i for i in range(50)]
    else:
        assert stamps == [-1] * 50, "magic 0 messages keep 'no timestamp'"


def test_librdkafka_at_the_0_9_message_format_with_lz4(server):
    """librdkafka without ApiVersions (broker.version.fallback=0.9.0) writes magic 0,
    and for lz4 the header checksum Kafka 0.8-0.9 got wrong."""
    from conftest import create_topic
    create_topic(server, "old-rdkafka", 1)
    for codec in ("gzip", "snappy", "lz4"):
        p = Producer({"bootstrap.servers": server.kafka, "api.version.request": False,
                      "broker.version.fallback": "0.9.0", "compression.codec": codec,
                      "linger.ms": 20})
        for i in range(20):
            p.produce("old-rdkafka", value=f"{codec} {i}".encode())
        assert p.flush(30) == 0
    got = _confluent_read(server, "old-rdkafka", 60)
    assert sorted(m.value() for m in got) == sorted(
        f"{c} {i}".encode() for c in ("gzip", "snappy", "lz4") for i in range(20))


def test_fetch_max_bytes_holds_across_partitions(server):
    """KIP-74: three partitions whose batches together pass fetch.max.bytes are read
    by librdkafka one response at a time, each within the limit."""
    from conftest import create_topic
    create_topic(server, "kip74", 3)
    p = Producer({"bootstrap.servers": server.kafka, "linger.ms": 500,
                  "batch.size": 1_000_000, "message.max.bytes": 1_000_000})
    value = b"v" * 100_000
    for part in range(3):
        for _ in range(7):
            p.produce("kip74", value=value, partition=part)
    assert p.flush(30) == 0
    got = _confluent_read(server, "kip74", 21, partitions=3, **{
        "fetch.max.bytes": 1_000_000, "max.partition.fetch.bytes": 1_048_576})
    assert len(got) == 21


def test_compacted_topics_refuse_records_without_a_key(server):
    from conftest import create_topic
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": server.kafka})
    admin.create_topics([NewTopic("compacted", 1, config={"cleanup.policy": "compact"})])["compacted"].result(10)
    results = []
    p = Producer({"bootstrap.servers": server.kafka, "retries": 0})
    # One batch each: a batch with a keyless record is refused whole, as in Kafka.
    p.produce("compacted", value=b"no key", on_delivery=lambda e, m: results.append(e))
    p.flush(30)
    p.produce("compacted", key=b"k", value=b"keyed", on_delivery=lambda e, m: results.append(e))
    p.flush(30)
    assert results[0] is not None and results[0].name() == "INVALID_RECORD", results
    assert results[1] is None


def test_group_metadata_is_recorded_and_restored(tmp_path):
    """After a rebalance the group's metadata record (key v2, value v3) is in
    __consumer_offsets with its members' client ids, as Kafka writes it; a restarted
    broker knows the group and its member before anyone rejoins."""
    import struct
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient
    from conftest import Server, create_topic, free_port
    port = free_port()
    data = str(tmp_path / "data")
    s = Server(kafka_port=port, data_dir=data)
    create_topic(s, "gm", 1)
    c = Consumer({"bootstrap.servers": s.kafka, "group.id": "gm-group", "client.id": "gm-client",
                  "session.timeout.ms": 30000})
    c.subscribe(["gm"])
    for _ in range(60):
        c.poll(0.25)
        if c.assignment():
            break
    assert c.assignment()
    # Read the raw topic: a group metadata record for gm-group naming gm-client.
    raw = _confluent_read(s, "__consumer_offsets", 1, partitions=50)
    found = []
    for m in raw:
        k = m.key()
        if struct.unpack(">h", k[:2])[0] != 2 or m.value() is None:
            continue
        (glen,) = struct.unpack(">h", k[2:4])
        if k[4:4 + glen] == b"gm-group":
            found.append(m.value())
    assert found, "no group metadata record for gm-group"
    assert b"gm-client" in found[-1] and struct.unpack(">h", found[-1][:2])[0] == 3
    s.stop(cleanup=False)
    s2 = Server(kafka_port=port, data_dir=data)
    admin = AdminClient({"bootstrap.servers": s2.kafka})
    g = admin.describe_consumer_groups(["gm-group"])["gm-group"].result()
    assert g.state.name == "STABLE", g.state
    assert [m.client_id for m in g.members] == ["gm-client"]
    c.close()
    s2.stop()
