"""A checker in the spirit of Jepsen's Kafka queue workload, for three real logbridge
nodes on loopback driven by confluent-kafka (librdkafka).

Producers with acks=all (one idempotent, one not) write unique values to every
partition while a group consumer reads; a fault schedule runs meanwhile; after the
faults heal, a final drain reads every partition from the beginning. The report:

- lost: acknowledged, never read;
- duplicated: values of the idempotent producer read more than once;
- inconsistent: one (partition, offset) holding two values across readers;
- non_monotonic: a partition's offsets not strictly increasing in the final drain;
- unseen: read but never acknowledged (a send that timed out but was written: allowed).

`run(schedule)` returns the report; tests assert on it, `soak.py` repeats it.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Server, free_port

SESSION_MS = 3000
PARTITIONS = 6
REPLICATION_FACTOR = 3
# Each node runs under a uid of its own when this process may (root, with iptables), so
# that the network partition schedule can drop one node's traffic to the others.
NODE_UID_BASE = 47000


def can_partition():
    return os.geteuid() == 0 and shutil.which("iptables") is not None and shutil.which("setpriv") is not None


class Node:
    def __init__(self, node_id, voters, cluster_port, kafka_port, data_dir):
        self.node_id, self.voters = node_id, voters
        self.cluster_port, self.kafka_port, self.data_dir = cluster_port, kafka_port, data_dir
        self.uid = NODE_UID_BASE + node_id if can_partition() else None
        self.server = None

    def start(self):
        config = (f'node_id = {self.node_id}\nvoters = "{self.voters}"\n'
                  f'cluster_listen = "127.0.0.1:{self.cluster_port}"\n'
                  f'broker_session_timeout_ms = {SESSION_MS}\nbroker_heartbeat_interval_ms = 500\n'
                  f'replica_lag_time_max_ms = {SESSION_MS * 2}\n'
                  'offsets_topic_num_partitions = 6\n')
        prefix = ()
        if self.uid is not None:
            os.makedirs(self.data_dir, exist_ok=True)
            os.chmod(os.path.dirname(self.data_dir), 0o755)
            for root, dirs, files in os.walk(self.data_dir):
                for name in [root] + [os.path.join(root, f) for f in dirs + files]:
                    os.chown(name, self.uid, self.uid)
            prefix = ("setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups")
        self.server = Server(config=config, kafka_port=self.kafka_port, data_dir=self.data_dir, prefix=prefix)

    @property
    def pid(self):
        return self.server.proc.pid

    def running(self):
        return self.server is not None and self.server.proc.poll() is None

    def kill(self):
        self.server.proc.kill()
        self.server.proc.wait(timeout=30)

    def http_get(self, path):
        with urllib.request.urlopen(f"http://{self.server.http}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://{self.server.http}/health", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False


class Cluster:
    def __init__(self, tmp):
        cluster_ports = [free_port() for _ in range(3)]
        kafka_ports = [free_port() for _ in range(3)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(cluster_ports))
        self.nodes = [Node(i + 1, voters, cluster_ports[i], kafka_ports[i], os.path.join(tmp, f"n{i + 1}"))
                      for i in range(3)]
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            self.await_healthy(n)
        self.bootstrap = ",".join(f"127.0.0.1:{n.kafka_port}" for n in self.nodes)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def await_healthy(self, node, timeout=30):
        deadline = time.monotonic() + timeout
        while not node.healthy():
            assert time.monotonic() < deadline, f"node {node.node_id} never became healthy"
            time.sleep(0.1)

    def status(self):
        for n in self.nodes:
            if n.running():
                try:
                    return n.http_get("/cluster")[1]
                except Exception:
                    continue
        raise AssertionError("no node answers /cluster")

    def raft_leader(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            leader = self.status()["quorum"]["raft_leader"]
            if leader is not None and self.node(leader).running():
                return leader
            time.sleep(0.1)
        raise AssertionError("no raft leader")

    def partition_leader(self, topic, partition):
        md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader

    def restart(self, node_id):
        n = self.node(node_id)
        n.start()
        self.await_healthy(n)

    def stop_all(self):
        for n in self.nodes:
            if n.running():
                n.kill()


# Fault schedules: each takes the cluster and returns when the fault has healed.

def kill_partition_leader(c):
    victim = c.partition_leader("jepsen", 0)
    c.node(victim).kill()
    time.sleep(SESSION_MS / 1000 + 1)
    c.restart(victim)
    return f"kill -9 node {victim} (leader of jepsen-0), restart after {SESSION_MS / 1000 + 1:.0f} s"


def kill_follower(c):
    leader = c.partition_leader("jepsen", 0)
    victim = next(n.node_id for n in c.nodes if n.node_id != leader)
    c.node(victim).kill()
    time.sleep(SESSION_MS / 1000 + 1)
    c.restart(victim)
    return f"kill -9 node {victim} (a follower of jepsen-0), restart after {SESSION_MS / 1000 + 1:.0f} s"


def iptables(action, rule):
    subprocess.run(["iptables", action, "OUTPUT", *rule], check=True, capture_output=True)


def partition_leader(c):
    """Cuts the leader of jepsen-0 off the two other nodes, both ways (its clients
    still reach it: a zombie leader must not acknowledge), for twice the session."""
    victim = c.partition_leader("jepsen", 0)
    v = c.node(victim)
    rules = []
    for o in c.nodes:
        if o.node_id == victim:
            continue
        for port in (o.cluster_port, o.kafka_port):
            rules.append(["-p", "tcp", "--dport", str(port), "-m", "owner", "--uid-owner", str(v.uid), "-j", "DROP"])
        for port in (v.cluster_port, v.kafka_port):
            rules.append(["-p", "tcp", "--dport", str(port), "-m", "owner", "--uid-owner", str(o.uid), "-j", "DROP"])
    for r in rules:
        iptables("-I", r)
    try:
        time.sleep(SESSION_MS / 1000 * 2)
    finally:
        for r in rules:
            iptables("-D", r)
    c.await_healthy(v)
    return f"network partition: node {victim} (leader of jepsen-0) cut off the others for {SESSION_MS * 2 / 1000:.0f} s, then healed"


def kill_raft_leader(c):
    victim = c.raft_leader()
    c.node(victim).kill()
    time.sleep(2)
    c.restart(victim)
    return f"kill -9 node {victim} (the Raft leader), restart after 2 s"


def pause_beyond_session(c):
    victim = c.partition_leader("jepsen", 1)
    os.kill(c.node(victim).pid, signal.SIGSTOP)
    time.sleep(SESSION_MS / 1000 * 2)
    os.kill(c.node(victim).pid, signal.SIGCONT)
    c.await_healthy(c.node(victim))
    return f"SIGSTOP node {victim} (leader of jepsen-1) for {SESSION_MS * 2 / 1000:.0f} s, then SIGCONT"


def rolling_restart(c):
    for n in c.nodes:
        n.server.proc.terminate()
        assert n.server.proc.wait(timeout=30) == 0
        c.restart(n.node_id)
    return "SIGTERM and restart of nodes 1, 2, 3 in turn"


SCHEDULES = {
    "kill_partition_leader": kill_partition_leader,
    "kill_follower": kill_follower,
    "kill_raft_leader": kill_raft_leader,
    "pause_beyond_session": pause_beyond_session,
    "rolling_restart": rolling_restart,
}
if can_partition():
    SCHEDULES["partition_leader"] = partition_leader


def run(tmp, schedule, seconds_before=2, seconds_after=2):
    """One run: the workload around one fault schedule. Returns the report."""
    c = Cluster(tmp)
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for f in admin.create_topics([NewTopic("jepsen", PARTITIONS, REPLICATION_FACTOR)]).values():
            f.result(timeout=30)
        acked, lock, stop = {}, threading.Lock(), threading.Event()

        def produce(name, idempotent):
            p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all",
                          "enable.idempotence": idempotent, "message.timeout.ms": 60000,
                          "linger.ms": 5})
            n = 0

            def delivered(err, msg):
                if err is None:
                    with lock:
                        acked[msg.value().decode()] = (msg.partition(), msg.offset(), idempotent)

            while not stop.is_set():
                value = f"{name}-{n}"
                p.produce("jepsen", value=value, key=value, callback=delivered)
                p.poll(0)
                n += 1
                time.sleep(0.002)
            assert p.flush(90) == 0, f"{name}: messages still undelivered after the faults healed"

        live = []

        def consume():
            cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "jepsen-readers",
                             "auto.offset.reset": "earliest", "enable.auto.commit": True})
            cons.subscribe(["jepsen"])
            while not stop.is_set():
                m = cons.poll(0.2)
                if m is not None and not m.error():
                    live.append((m.partition(), m.offset(), m.value().decode()))
            cons.close()

        threads = [threading.Thread(target=produce, args=("idem", True)),
                   threading.Thread(target=produce, args=("plain", False)),
                   threading.Thread(target=consume)]
        for t in threads:
            t.start()
        time.sleep(seconds_before)
        description = SCHEDULES[schedule](c)
        time.sleep(seconds_after)
        stop.set()
        for t in threads:
            t.join(timeout=120)

        # Final drain: every partition from the beginning to its end offset.
        drain = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "jepsen-drain",
                          "enable.auto.commit": False})
        ends = {p: drain.get_watermark_offsets(TopicPartition("jepsen", p), timeout=10)[1]
                for p in range(PARTITIONS)}
        drain.assign([TopicPartition("jepsen", p, 0) for p in range(PARTITIONS)])
        final, deadline = [], time.monotonic() + 60
        done = {p for p, e in ends.items() if e == 0}
        while len(done) < PARTITIONS and time.monotonic() < deadline:
            m = drain.poll(0.5)
            if m is None or m.error():
                continue
            final.append((m.partition(), m.offset(), m.value().decode()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        drain.close()

        report = tally(description, acked, final, live)
        print(json.dumps(report))
        return report
    finally:
        c.stop_all()


def tally(description, acked, final, live):
    """The report of one run. `acked`: value → (partition, offset, idempotent);
    `final`: the drain's (partition, offset, value) in read order; `live`: the same
    from the consumer that read during the faults."""
    read_values = {}
    for _, _, v in final:
        read_values[v] = read_values.get(v, 0) + 1
    at = {}
    inconsistent = 0
    for p, o, v in final + live:
        if at.setdefault((p, o), v) != v:
            inconsistent += 1
    non_monotonic = 0
    last = {}
    for p, o, _ in final:
        if o <= last.get(p, -1):
            non_monotonic += 1
        last[p] = o
    return {
        "schedule": description,
        "acknowledged": len(acked),
        "read": len(final),
        "lost": sum(1 for v in acked if v not in read_values),
        "duplicated": sum(1 for v, (_, _, idem) in acked.items() if idem and read_values.get(v, 0) > 1),
        "inconsistent": inconsistent,
        "non_monotonic": non_monotonic,
        "unseen": sum(1 for v in read_values if v not in acked),
    }
