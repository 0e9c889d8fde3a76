"""kcat, kafka-python and confluent-kafka producing and consuming across partitions."""
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

from conftest import create_topic

N = 300


def kcat(server, *args, stdin=None):
    return subprocess.run(["kcat", "-b", server.kafka, *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def confluent_read(server, topic, partitions, count):
    c = Consumer({"bootstrap.servers": server.kafka, "group.id": "py-test",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    for _ in range(200):
        if len(out) >= count:
            break
        for m in c.consume(num_messages=500, timeout=0.5):
            assert m.error() is None, m.error()
            out.append((m.partition(), m.offset(), m.key(), m.value()))
    c.close()
    return out


def kafka_python_read(server, topic, partitions, count, **kw):
    c = KafkaConsumer(bootstrap_servers=server.kafka, group_id=None, enable_auto_commit=False,
                      consumer_timeout_ms=10000, **kw)
    tps = [KTopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    out = []
    for m in c:
        out.append((m.partition, m.offset, m.key, m.value))
        if len(out) >= count:
            break
    c.close()
    return out


def check_all(records, expected_values):
    values = sorted(r[3] for r in records)
    assert values == sorted(expected_values)
    per_partition = {}
    for p, o, _, _ in records:
        assert o > per_partition.get(p, -1), "offsets increase within a partition"
        per_partition[p] = o
    return per_partition


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_and_consume(server, codec):
    create_topic(server, "kc", 3)
    lines = [f"k{i % 5}:kcat {codec} {i}" for i in range(N)]
    kcat(server, "-P", "-t", "kc", "-K", ":", "-z", codec, stdin="\n".join(lines) + "\n")
    out = kcat(server, "-C", "-t", "kc", "-o", "beginning", "-e", "-q", "-f", "%p %k %s\\n")
    got = [l.split(" ", 2) for l in out.splitlines()]
    assert sorted(g[2] for g in got) == sorted(l.split(":", 1)[1] for l in lines)
    key_partition = {}
    for p, k, _ in got:
        assert key_partition.setdefault(k, p) == p, "a key stays on one partition"
    assert len(set(p for p, _, _ in got)) > 1, "records spread across partitions"
    # Metadata through kcat -L lists the topic and its three partitions.
    meta = kcat(server, "-L", "-t", "kc")
    assert meta.count("partition ") == 3


def test_confluent_kafka_across_partitions(server):
    create_topic(server, "ck", 4)
    p = Producer({"bootstrap.servers": server.kafka, "compression.type": "zstd",
                  "enable.idempotence": True})
    expected = []
    for i in range(N):
        v = f"confluent {i}".encode()
        expected.append(v)
        p.produce("ck", key=f"key{i % 9}".encode(), value=v, headers=[("i", str(i).encode())])
    assert p.flush(30) == 0
    got = confluent_read(server, "ck", 4, N)
    check_all(got, expected)
    # kcat reads what confluent-kafka wrote.
    out = kcat(server, "-C", "-t", "ck", "-o", "beginning", "-e", "-q")
    assert sorted(out.splitlines()) == sorted(v.decode() for v in expected)


@pytest.mark.parametrize("api_version", [None, (2, 0, 0), (1, 0, 0), (0, 11, 0), (0, 10, 1)])
def test_kafka_python_produce_and_consume(server, api_version):
    create_topic(server, "kp", 3)
    kw = {} if api_version is None else {"api_version": api_version}
    prod = KafkaProducer(bootstrap_servers=server.kafka, acks="all", linger_ms=5, **kw)
    expected = []
    for i in range(N):
        v = f"kafka-python {api_version} {i}".encode()
        expected.append(v)
        prod.send("kp", key=f"key{i % 7}".encode(), value=v)
    prod.flush(30)
    prod.close()
    got = kafka_python_read(server, "kp", 3, N, **kw)
    check_all(got, expected)
    # Cross-client: confluent-kafka reads what kafka-python wrote, same offsets.
    other = confluent_read(server, "kp", 3, N)
    assert sorted((p, o, v) for p, o, _, v in other) == sorted((p, o, v) for p, o, _, v in got)


def test_kafka_python_compressed_and_offsets_for_times(server):
    create_topic(server, "kpt", 1)
    prod = KafkaProducer(bootstrap_servers=server.kafka, compression_type="gzip")
    for i in range(100):
        prod.send("kpt", value=f"t{i}".encode(), timestamp_ms=1_000_000 + i * 1000)
    prod.flush(30)
    prod.close()
    c = KafkaConsumer(bootstrap_servers=server.kafka, group_id=None)
    tp = KTopicPartition("kpt", 0)
    assert c.beginning_offsets([tp])[tp] == 0
    assert c.end_offsets([tp])[tp] == 100
    found = c.offsets_for_times({tp: 1_000_000 + 42_500})[tp]
    assert found.offset == 43 and found.timestamp == 1_000_000 + 43_000
    assert c.offsets_for_times({tp: 9_999_999_999})[tp] is None
    c.close()


def test_xerial_snappy_and_wide_timestamps_from_a_java_style_client(server):
    """kafka-python writes snappy in the Java client's xerial framing; kcat (librdkafka)
    writes raw snappy. Both are validated on produce and read back by every reader,
    including the down-conversion an old consumer gets (Fetch v2) and a timestamp
    lookup in a batch whose records are 10^12 ms apart (varlong timestamp deltas)."""
    create_topic(server, "snap", 1)
    prod = KafkaProducer(bootstrap_servers=server.kafka, compression_type="snappy",
                         linger_ms=50, batch_size=1 << 20)
    base = 1_000_000
    for i in range(100):
        prod.send("snap", value=f"x{i}".encode() * 50, timestamp_ms=base + i * 10_000_000_000)
    prod.flush(30)
    prod.close()
    # librdkafka reads the xerial-framed batches.
    out = kcat(server, "-C", "-t", "snap", "-o", "beginning", "-e", "-q", "-f", "%T %s\\n")
    got = [l.split(" ", 1) for l in out.splitlines()]
    assert [int(t) for t, _ in got] == [base + i * 10_000_000_000 for i in range(100)]
    # An old consumer (Fetch v2: magic 1 down-conversion) reads them too.
    old = kafka_python_read(server, "snap", 1, 100, api_version=(0, 10, 1))
    assert [v for _, _, _, v in old] == [f"x{i}".encode() * 50 for i in range(100)]
    # A timestamp lookup inside one widely spread batch.
    c = KafkaConsumer(bootstrap_servers=server.kafka, group_id=None)
    tp = KTopicPartition("snap", 0)
    found = c.offsets_for_times({tp: base + 42 * 10_000_000_000 - 1})[tp]
    assert found.offset == 42 and found.timestamp == base + 42 * 10_000_000_000
    c.close()
    # And raw snappy from librdkafka goes the other way.
    kcat(server, "-P", "-t", "snap", "-z", "snappy", stdin="".join(f"raw{i}\n" for i in range(50)))
    back = kafka_python_read(server, "snap", 1, 150)
    assert [v for _, _, _, v in back][100:] == [f"raw{i}".encode() for i in range(50)]
