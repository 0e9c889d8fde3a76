"""One consumer-group member in its own process (so a test can kill -9 it).

Prints JSON lines on stdout: {"assigned": [partitions]} after every rebalance and
{"msg": value, "p": partition, "o": offset} for every record, then commits the record's
offset synchronously (at-least-once)."""
import json
import sys

from confluent_kafka import Consumer, KafkaException

bootstrap, group, topic = sys.argv[1:4]
extra = dict(kv.split("=", 1) for kv in sys.argv[4:])


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


conf = {
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
}
conf.update(extra)
c = Consumer(conf)
c.subscribe([topic],
            on_assign=lambda _c, parts: out({"assigned": sorted(p.partition for p in parts)}),
            on_revoke=lambda _c, parts: None)
try:
    while True:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            out({"error": str(m.error())})
            continue
        # Printed (processed) first, committed after: a kill between the two means the
        # record is delivered again, never that it is lost.
        out({"msg": m.value().decode(), "p": m.partition(), "o": m.offset()})
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            # e.g. REBALANCE_IN_PROGRESS: the record may be redelivered (at least once).
            out({"commit_error": str(e)})
except KeyboardInterrupt:
    pass
finally:
    c.close()
