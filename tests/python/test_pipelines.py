"""Pipelines inside `logbridge serve`, fed by real clients: kcat producing to the topics a
pipeline consumes, a raw Lumberjack client and HTTP for the beats/http inputs, a second
appliance as the "remote cluster" of the kafka input and output, and kill -9 for the
at-least-once promise."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import Server, binary, free_port, kcat_read
from test_beats import host_port, read_ack, window


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def produce(server, topic, lines):
    subprocess.run(["kcat", "-b", server.kafka, "-P", "-t", topic, "-z", "lz4"],
                   input="\n".join(lines) + "\n", text=True, check=True, timeout=120)


def file_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l for l in f.read().splitlines() if l]


def wait_for(predicate, what, timeout=90):
    """Polls a condition that the pipeline makes true (a file filling, an offset being
    committed) until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def get_json(server, path):
    with urllib.request.urlopen(f"http://{server.http}{path}", timeout=30) as r:
        return json.loads(r.read())


def first_pipeline(server):
    """The first pipeline's entry in `GET /pipelines`."""
    return get_json(server, "/pipelines")["pipelines"][0]


def first_partition_committed(server):
    """The offset the first pipeline committed on its first partition (None: none yet)."""
    return first_pipeline(server)["consumer"]["partitions"][0]["committed"]


def metrics_text(server):
    """`GET /metrics`, the Prometheus text."""
    with urllib.request.urlopen(f"http://{server.http}/metrics", timeout=30) as r:
        return r.read().decode()


def committed(server, group):
    """(topic, partition, offset) committed by a group; empty while it has none."""
    try:
        offsets = get_json(server, f"/groups/{group}")["offsets"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise
    return [(o["topic"], o["partition"], o["committed_offset"]) for o in offsets]


@pytest.fixture
def workdir():
    d = tempfile.TemporaryDirectory()
    yield d.name
    d.cleanup()


def test_kafka_input_to_file_and_kafka_outputs_with_commits(workdir):
    out = os.path.join(workdir, "out")
    write(os.path.join(workdir, "pipelines", "app.conf"), f"""
input {{
  kafka {{ id => "orders" topics => ["app"] group_id => "pipe" auto_offset_reset => "earliest"
          codec => json decorate_events => basic tags => ["from-kafka"] }}
}}
filter {{
  mutate {{ add_field => {{ "origin" => "%{{[@metadata][kafka][topic]}}/%{{[@metadata][kafka][partition]}}/%{{[@metadata][kafka][offset]}}" }} }}
  if [level] == "debug" {{ drop {{}} }}
}}
output {{
  file {{ path => "{out}/%{{level}}.ndjson" }}
  if [level] == "error" {{ kafka {{ topic_id => "errors" codec => json message_key => "%{{n}}" }} }}
}}
""")
    server = Server(pipelines=os.path.join(workdir, "pipelines"))
    try:
        levels = ["info", "error", "debug", "warn"]
        produce(server, "app", [json.dumps({"n": i, "level": levels[i % 4]}) for i in range(2000)])
        for level in ("info", "error", "warn"):
            lines = wait_for(lambda: len(file_lines(f"{out}/{level}.ndjson")) >= 500 and file_lines(f"{out}/{level}.ndjson"),
                             f"{level} file")
            events = [json.loads(l) for l in lines]
            assert len(events) == 500
            assert {e["n"] for e in events} == {i for i in range(2000) if levels[i % 4] == level}
            assert all(e["tags"] == ["from-kafka"] and e["origin"] == f"app/0/{e['n']}" for e in events)
            assert all("@metadata" not in e for e in events)
        assert not os.path.exists(f"{out}/debug.ndjson"), "dropped events reach no output"
        errors = kcat_read(server, "errors", 500, fmt="%k\t%s\n")
        assert len(errors) == 500
        assert all(json.loads(v)["n"] == int(k) for k, v in (l.split("\t", 1) for l in errors))
        # Offsets are committed once every output holds the events: all 2000 here.
        view = wait_for(lambda: (lambda v: v["pipelines"][0]["consumer"]["partitions"][0]["committed"] == 2000 and v)(
            get_json(server, "/pipelines")), "the commit")
        p = view["pipelines"][0]
        assert p["name"] == "app"
        assert p["events"] == {"in": 2000, "filtered": 1500, "out": 1500}
        assert p["consumer"]["lag"] == 0
        assert [(i["name"], i["id"], i["events_out"]) for i in p["inputs"]] == [("kafka", "orders", 2000)]
        assert [o["events_out"] for o in p["outputs"]] == [1500, 500]
        drop = [f for f in p["filters"] if f["name"] == "drop"][0]
        assert (drop["events_in"], drop["events_out"]) == (500, 0)
        assert committed(server, "pipe") == [("app", 0, 2000)]
        metrics = metrics_text(server)
        assert 'logbridge_pipeline_events_in_total{pipeline="app"} 2000' in metrics
        assert 'logbridge_pipeline_consumer_lag{pipeline="app",topic="app",partition="0"} 0' in metrics
    finally:
        server.stop()


def test_kill_9_mid_stream_replays_from_the_last_commit(workdir):
    out = os.path.join(workdir, "out.ndjson")
    pipelines = os.path.join(workdir, "pipelines")
    write(os.path.join(pipelines, "crash.conf"), f"""
input {{ kafka {{ topics => ["crash"] group_id => "crash" auto_offset_reset => "earliest" codec => json }} }}
filter {{ grok {{ match => {{ "message" => "%{{WORD:word}} %{{INT:i:int}}" }} }} }}
output {{ file {{ path => "{out}" }} }}
""")
    data = os.path.join(workdir, "data")
    port = free_port()
    total = 200_000
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)
    produce(server, "crash", [json.dumps({"id": i, "message": f"event {i}"}) for i in range(total)])
    # Killed while the pipeline is part-way through the topic.
    seen = wait_for(lambda: len(file_lines(out)) >= 5000 and len(file_lines(out)), "the first events")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    at_kill = len(file_lines(out))
    assert at_kill < total, "the kill must come before the pipeline finished"
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)

    def written():
        # SIGKILL can cut the write in flight short (the kernel stops a write between
        # pages on a fatal signal), leaving one torn line; the restart appends after
        # it. That event was not acknowledged, so it is replayed whole.
        events, torn = [], 0
        for line in file_lines(out):
            try:
                events.append(json.loads(line))
            except ValueError:
                torn += 1
        return events, torn

    try:
        events = wait_for(lambda: (lambda ev: len({e["id"] for e in ev[0]}) == total and ev)(written()),
                          "every event after the restart", timeout=240)
        events, torn = events
        assert torn <= 1, f"{torn} torn lines: only the write the kill cut short may be torn"
        assert {e["id"] for e in events} == set(range(total)), "every input event is in the output"
        assert all(e["i"] == e["id"] and e["word"] == "event" for e in events)
        duplicates = len(events) - total
        print(f"kill -9 after {at_kill} of {total} lines; {duplicates} replayed twice")
        assert duplicates >= 0
    finally:
        server.stop()


def test_one_pipeline_per_file_and_per_folder_with_generator(workdir):
    pipelines = os.path.join(workdir, "pipelines")
    out = os.path.join(workdir, "out")
    write(os.path.join(pipelines, "single.conf"), f"""
input {{ generator {{ lines => ["one", "two"] count => 3 }} }}
output {{ file {{ path => "{out}/single/single.ndjson" dir_mode => "0700" }} }}
""")
    write(os.path.join(pipelines, "joined", "1-input.conf"), 'input { generator { message => "x" count => 4 } }\n')
    write(os.path.join(pipelines, "joined", "2-filter.conf"), 'filter { mutate { add_tag => ["joined"] } }\n')
    write(os.path.join(pipelines, "joined", "3-output.conf"), f'output {{ file {{ path => "{out}/joined.ndjson" }} }}\n')
    write(os.path.join(pipelines, "notes.txt"), "not a pipeline")
    server = Server(pipelines=pipelines)
    try:
        single = wait_for(lambda: len(file_lines(f"{out}/single/single.ndjson")) >= 6
                          and file_lines(f"{out}/single/single.ndjson"), "single")
        assert os.stat(f"{out}/single").st_mode & 0o777 == 0o700, "dir_mode"
        assert sorted(json.loads(l)["message"] for l in single) == ["one"] * 3 + ["two"] * 3
        assert sorted(json.loads(l)["event"]["sequence"] for l in single) == [0, 0, 1, 1, 2, 2]
        joined = wait_for(lambda: len(file_lines(f"{out}/joined.ndjson")) >= 4 and file_lines(f"{out}/joined.ndjson"), "joined")
        assert [json.loads(l)["tags"] for l in joined] == [["joined"]] * 4
        names = [p["name"] for p in get_json(server, "/pipelines")["pipelines"]]
        assert names == ["joined", "single"]
    finally:
        server.stop()


def test_a_bad_pipeline_stops_serve_with_the_position(workdir):
    pipelines = os.path.join(workdir, "pipelines")
    write(os.path.join(pipelines, "bad.conf"), 'input { generator { } }\nfilter {\n  grok { match => { "message" => "%{NOPE:x}" } }\n}\n')
    proc = subprocess.run([binary(), "serve", "--data-dir", os.path.join(workdir, "data"), "--pipelines", pipelines,
                           "--kafka-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--beats-listen", ""],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "bad.conf: line 3, column 3" in proc.stderr, proc.stderr
    assert "grok pattern %{NOPE} is not defined" in proc.stderr, proc.stderr
    assert "logbridge ready" not in proc.stdout


def test_kafka_input_and_output_against_a_remote_cluster(workdir):
    remote = Server()
    try:
        out = os.path.join(workdir, "out.ndjson")
        write(os.path.join(workdir, "pipelines", "bridge.conf"), f"""
input {{ kafka {{ bootstrap_servers => "{remote.kafka}" topics => ["remote_in"] group_id => "bridge"
                 auto_offset_reset => "earliest" codec => json }} }}
filter {{ mutate {{ add_field => {{ "bridged" => "yes" }} }} }}
output {{
  kafka {{ bootstrap_servers => "{remote.kafka}" topic_id => "remote_out" codec => json }}
  file {{ path => "{out}" }}
}}
""")
        local = Server(pipelines=os.path.join(workdir, "pipelines"))
        try:
            produce(remote, "remote_in", [json.dumps({"n": i}) for i in range(300)])
            lines = kcat_read(remote, "remote_out", 300)
            assert sorted(json.loads(l.split("\t", 1)[1])["n"] for l in lines) == list(range(300))
            assert all(json.loads(l.split("\t", 1)[1])["bridged"] == "yes" for l in lines)
            wait_for(lambda: len(file_lines(out)) >= 300, "the local file")
            # The commit went to the remote cluster's group coordinator.
            wait_for(lambda: committed(remote, "bridge") == [("remote_in", 0, 300)], "the remote commit")
            assert "remote_in" not in [t["name"] for t in get_json(local, "/topics")["topics"]]
        finally:
            local.stop()
    finally:
        remote.stop()


def test_beats_and_http_inputs_consume_their_listeners_topics(workdir):
    out = os.path.join(workdir, "out")
    write(os.path.join(workdir, "pipelines", "ingest.conf"), f"""
input {{
  beats {{ }}
  http {{ topic => "http_events" }}
}}
output {{ file {{ path => "{out}/%{{[source]}}.ndjson" }} }}
""")
    server = Server(pipelines=os.path.join(workdir, "pipelines"))
    try:
        host, port = host_port(server.beats)
        s = socket.create_connection((host, port))
        s.sendall(window([json.dumps({"source": "beats", "n": i}).encode() for i in range(100)]))
        assert read_ack(s) == 100
        s.close()
        body = "\n".join(json.dumps({"source": "http", "n": i}) for i in range(50)).encode()
        req = urllib.request.Request(f"http://{server.http}/ingest/http_events", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        beats = wait_for(lambda: len(file_lines(f"{out}/beats.ndjson")) >= 100 and file_lines(f"{out}/beats.ndjson"), "beats")
        assert sorted(json.loads(l)["n"] for l in beats) == list(range(100))
        http = wait_for(lambda: len(file_lines(f"{out}/http.ndjson")) >= 50 and file_lines(f"{out}/http.ndjson"), "http")
        assert sorted(json.loads(l)["n"] for l in http) == list(range(50))
    finally:
        server.stop()


def test_the_shipped_eflfk_example_parses_and_routes_nginx_logs(workdir):
    """pipelines/nginx.conf as shipped: Filebeat-shaped JSON events tagged access/error
    in the nginx topic end up parsed in dated files named like the indices."""
    from conftest import ROOT
    data = os.path.join(workdir, "data")
    server = Server(data_dir=data, pipelines=os.path.join(ROOT, "pipelines"), cwd=workdir)
    try:
        access = '203.0.113.12 - - [22/Nov/2026:10:15:32 +0000] "GET /index.html HTTP/1.1" 200 512 "-" "curl/8.5.0"'
        error = '2026/11/21 23:59:58 [error] 1234#1234: *5 open() "/x" failed (2: No such file or directory)'
        produce(server, "nginx", [json.dumps({"message": access, "tags": ["access"], "host": {"name": "web-1"}}),
                                  json.dumps({"message": error, "tags": ["error"]})])
        a = wait_for(lambda: file_lines(f"{data}/indices/nginx_access-2026.11.22.ndjson"), "the access index")
        e = wait_for(lambda: file_lines(f"{data}/indices/nginx_error-2026.11.21.ndjson"), "the error index")
        doc = json.loads(a[0])
        assert doc["@timestamp"] == "2026-11-22T10:15:32.000Z"
        assert doc["source"]["address"] == "203.0.113.12"
        assert doc["http"]["response"]["status_code"] == 200
        err = json.loads(e[0])
        assert err["@timestamp"] == "2026-11-21T23:59:58.000Z"
        assert err["level"] == "error"
    finally:
        server.stop()
