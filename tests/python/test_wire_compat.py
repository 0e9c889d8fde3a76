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
