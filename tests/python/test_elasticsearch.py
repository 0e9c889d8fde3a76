"""The elasticsearch output end to end: shippers (the npm lumberjack-client, kcat) →
logbridge → the shipped EFLFK pipeline → dated indices in es_standin.py, a STAND-IN for
Elasticsearch (which cannot be installed here) that follows the documented `_bulk`
formats; with Elasticsearch down, answering 429, rejecting documents, and with the
appliance killed mid-stream."""
import re
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import ROOT, Server, free_port, kcat_read
from es_standin import StandIn
from test_pipelines import first_partition_committed, first_pipeline, metrics_text, produce, wait_for, write

NODE_DIR = os.path.join(ROOT, "tests", "node")
PIPELINES = os.path.join(ROOT, "pipelines")


def access_line(i, day=22):
    return (f'198.51.100.{i % 250} - - [{day:02d}/Nov/2026:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] '
            f'"GET /page/{i} HTTP/1.1" {200 if i % 7 else 404} {100 + i} "-" "curl/8.5.0"')


def error_line(i):
    return f'2026/11/21 23:59:{i % 60:02d} [error] 77#77: *{i} open() "/srv/{i}" failed (2: No such file or directory)'


@pytest.fixture
def es():
    s = StandIn()
    yield s
    s.close()


@pytest.fixture
def workdir():
    d = tempfile.TemporaryDirectory()
    yield d.name
    d.cleanup()


def test_shippers_to_dated_indices_parsed_and_counted_exactly(es, workdir):
    server = Server(config='beats_topic = "%{[fields][log_topic]}"\n', data_dir=os.path.join(workdir, "data"),
                    pipelines=PIPELINES, env={"ELASTICSEARCH_HOSTS": es.url})
    shipper = None
    try:
        # Filebeat's way in: Lumberjack, fields.log_topic routes to the nginx topic.
        host, port = server.beats.rsplit(":", 1)
        beats_events = [{"message": access_line(i), "tags": ["access"], "fields": {"log_topic": "nginx"},
                         "host": {"name": "web-1"}} for i in range(600)]
        beats_events += [{"message": error_line(i), "tags": ["error"], "fields": {"log_topic": "nginx"}}
                         for i in range(150)]
        shipper = subprocess.Popen(["node", os.path.join(NODE_DIR, "ship_stdin.js"), host, port],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=NODE_DIR)
        shipper.stdin.write("\n".join(json.dumps(e) for e in beats_events) + "\n")
        shipper.stdin.close()
        assert shipper.stdout.readline().strip() == "queued 750"
        # Filebeat's output.kafka way in: kcat straight into the topic.
        produce(server, "nginx", [json.dumps({"message": access_line(1000 + i), "tags": ["access"]}) for i in range(400)]
                + [json.dumps({"message": error_line(1000 + i), "tags": ["error"]}) for i in range(50)])
        wait_for(lambda: es.store.count("nginx_access-2026.11.22") == 1000
                 and es.store.count("nginx_error-2026.11.21") == 200, "both indices filled", timeout=120)
        access = es.store.docs("nginx_access-2026.11.22")
        errors = es.store.docs("nginx_error-2026.11.21")
        assert len(access) == 1000 and len(errors) == 200
        assert sorted(int(d["url"]["original"].rsplit("/", 1)[1]) for d in access.values()) == \
            list(range(600)) + list(range(1000, 1400))
        d = next(d for d in access.values() if d["url"]["original"] == "/page/61")
        assert d["@timestamp"] == "2026-11-22T10:01:01.000Z"
        assert d["http"]["response"]["status_code"] == 200 and d["http"]["response"]["body"]["bytes"] == 161
        assert d["source"]["address"] == "198.51.100.61"
        assert "_grokparsefailure" not in d.get("tags", [])
        e = next(iter(errors.values()))
        assert e["level"] == "error" and e["@timestamp"].startswith("2026-11-21T23:59:")
        # Deterministic ids: topic-partition-offset of the record each event came from.
        assert all(i.startswith("nginx-0-") for i in access)
        # _cat/indices and _count answer as Elasticsearch does.
        with urllib.request.urlopen(f"{es.url}/_cat/indices?format=json") as r:
            names = sorted(row["index"] for row in json.loads(r.read()))
        assert names == ["nginx_access-2026.11.22", "nginx_error-2026.11.21"]
        def es_stats():
            return [o["elasticsearch"] for o in first_pipeline(server)["outputs"]]
        # The counters move once the responses are read, just after the stand-in stored.
        stats = wait_for(lambda: (lambda st: sum(s["indexed"] for s in st) == 1200 and st)(es_stats()), "the counters")
        assert sum(s["dead_lettered"] for s in stats) == 0
    finally:
        if shipper:
            shipper.kill()
        server.stop()


def standalone_pipeline(workdir, es_url, extra="", retry=(0.2, 1)):
    pipelines = os.path.join(workdir, "pipelines")
    write(os.path.join(pipelines, "app.conf"), f"""
input {{ kafka {{ topics => ["app"] group_id => "app-es" auto_offset_reset => "earliest" codec => json }} }}
output {{
  elasticsearch {{
    hosts => ["{es_url}"]
    index => "app-%{{+YYYY.MM.dd}}"
    retry_initial_interval => {retry[0]}
    retry_max_interval => {retry[1]}
    {extra}
  }}
}}
""")
    return pipelines


def test_elasticsearch_down_for_a_while_then_back(es, workdir):
    server = Server(pipelines=standalone_pipeline(workdir, es.url))
    try:
        es.refuse()
        produce(server, "app", [json.dumps({"n": i, "@timestamp": "2026-11-22T00:00:00.000Z"}) for i in range(500)])
        # The pipeline holds still: nothing committed, the lag shows, writes fail.
        view = wait_for(lambda: (lambda v: v["outputs"][0]["elasticsearch"]["bulk_failures"] > 0 and v)(
            first_pipeline(server)), "failed bulk requests while Elasticsearch is down")
        assert view["consumer"]["partitions"][0]["committed"] is None
        metrics = metrics_text(server)
        assert 'logbridge_pipeline_consumer_lag{pipeline="app",topic="app",partition="0"} 500' in metrics
        es.resume()
        wait_for(lambda: es.store.count("app-2026.11.22") == 500, "the backlog to drain")
        docs = es.store.docs("app-2026.11.22")
        assert sorted(d["n"] for d in docs.values()) == list(range(500)), "every event, none twice"
        wait_for(lambda: first_partition_committed(server) == 500,
                 "the commit after the backlog")
    finally:
        server.stop()


def test_stopping_while_elasticsearch_is_down_abandons_the_batch_and_replays_it(es, workdir):
    data = os.path.join(workdir, "data")
    port = free_port()
    # A long back-off: the stop must cut it short, not wait it out.
    pipelines = standalone_pipeline(workdir, es.url, retry=(600, 600))
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)
    es.refuse()
    produce(server, "app", [json.dumps({"n": i, "@timestamp": "2026-11-22T00:00:00.000Z"}) for i in range(50)])
    wait_for(lambda: first_pipeline(server)["outputs"][0]["elasticsearch"]["bulk_failures"] > 0,
             "a failed bulk request")
    started = time.monotonic()
    server.stop(cleanup=False)  # asserts a clean exit
    assert time.monotonic() - started < 10, "the 600 s back-off was cut short"
    # Nothing was acknowledged, so the next start delivers all of it.
    es.resume()
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)
    try:
        wait_for(lambda: es.store.count("app-2026.11.22") == 50, "the replay after the restart")
    finally:
        server.stop()


def test_429_is_retried_and_rejections_go_to_the_dead_letter_topic(es, workdir):
    es.store.fail_next_bulk = 3
    es.store.reject_field = "bad"
    server = Server(pipelines=standalone_pipeline(workdir, es.url))
    try:
        events = [{"n": i, "@timestamp": "2026-11-22T00:00:00.000Z", **({"bad": "x"} if i % 10 == 0 else {})}
                  for i in range(300)]
        produce(server, "app", [json.dumps(e) for e in events])
        wait_for(lambda: es.store.count("app-2026.11.22") == 270, "the accepted documents")
        dlq = kcat_read(server, "dlq.app", 30, fmt="%k\t%s\n")
        assert len(dlq) == 30
        letters = [json.loads(l.split("\t", 1)[1]) for l in dlq]
        assert sorted(l["event"]["n"] for l in letters) == list(range(0, 300, 10))
        assert all(l["status"] == 400 and l["error"]["type"] == "mapper_parsing_exception" for l in letters)
        assert all(l["action"] == "index" and l["index"] == "app-2026.11.22" for l in letters)
        output_id = first_pipeline(server)["outputs"][0]["id"]
        assert all(l["output"] == output_id and l["pipeline"] == "app" for l in letters)
        assert all(l.split("\t", 1)[0] == json.loads(l.split("\t", 1)[1])["document_id"] for l in dlq)
        wait_for(lambda: first_partition_committed(server) == 300,
                 "the pipeline went on (committed everything)")
        stats = first_pipeline(server)["outputs"][0]["elasticsearch"]
        assert stats["indexed"] == 270 and stats["dead_lettered"] == 30, "counted before the commit above"
        assert stats["bulk_failures"] >= 3, "the three 429 answers"
        # The same counters on /metrics, as the README names them.
        with urllib.request.urlopen(f"http://{server.http}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        assert re.search(r'^logbridge_elasticsearch_indexed_total\{pipeline="app",.*\} 270$', metrics, re.M), metrics
        assert re.search(r'^logbridge_elasticsearch_dead_lettered_total\{.*\} 30$', metrics, re.M)
    finally:
        server.stop()


def test_basic_auth_gzip_and_failover_to_a_second_host(es, workdir):
    es.store.auth = "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="  # elastic:changeme
    dead = f"http://127.0.0.1:{free_port()}"
    server = Server(pipelines=standalone_pipeline(
        workdir, es.url, f'user => "elastic" password => "changeme" http_compression => true\n    hosts => ["{dead}", "{es.url}"]'))
    try:
        produce(server, "app", [json.dumps({"n": i, "@timestamp": "2026-11-22T00:00:00.000Z"}) for i in range(100)])
        wait_for(lambda: es.store.count("app-2026.11.22") == 100, "documents through the live host")
        assert es.store.last_headers.get("content-encoding") == "gzip"
    finally:
        server.stop()


def test_kill_9_mid_stream_no_loss_no_duplicate_documents(es, workdir):
    data = os.path.join(workdir, "data")
    port = free_port()
    pipelines = standalone_pipeline(workdir, es.url)
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)
    total = 60_000
    produce(server, "app", [json.dumps({"n": i, "@timestamp": "2026-11-22T00:00:00.000Z"}) for i in range(total)])
    wait_for(lambda: es.store.count("app-2026.11.22") >= 2000, "the first documents")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    at_kill = es.store.count("app-2026.11.22")
    assert at_kill < total, "killed part-way"
    server = Server(kafka_port=port, data_dir=data, pipelines=pipelines)
    try:
        wait_for(lambda: es.store.count("app-2026.11.22") == total, "every document after the restart", timeout=240)
        docs = es.store.docs("app-2026.11.22")
        assert sorted(d["n"] for d in docs.values()) == list(range(total))
        writes = sum(es.store.seen_ids["app-2026.11.22"].values())
        print(f"kill -9 after {at_kill} of {total} documents; {writes - total} replayed writes overwrote their own documents")
        assert writes >= total
    finally:
        server.stop()


def es_output(es_url, settings):
    return f'elasticsearch {{ hosts => ["{es_url}"] retry_initial_interval => 0.2 retry_max_interval => 1 {settings} }}'


def test_update_upsert_script_and_delete_actions(es, workdir):
    pipelines = os.path.join(workdir, "pipelines")
    write(os.path.join(pipelines, "users.conf"), f"""
input {{ kafka {{ topics => ["users"] auto_offset_reset => "earliest" codec => json }} }}
output {{
  if [op] == "delete" {{
    {es_output(es.url, 'index => "users" action => "delete" document_id => "%{user}"')}
  }} else if [op] == "score" {{
    {es_output(es.url, 'index => "users" action => "update" document_id => "%{user}" script => "ctx._source.score += params.event.points" scripted_upsert => true retry_on_conflict => 3')}
  }} else {{
    {es_output(es.url, 'index => "users" action => "update" document_id => "%{user}" doc_as_upsert => true')}
  }}
}}
""")
    server = Server(pipelines=pipelines)
    try:
        # Upserts create the documents, later partial updates merge into them.
        produce(server, "users", [json.dumps({"op": "set", "user": f"u{i}", "name": f"N{i}"}) for i in range(20)])
        wait_for(lambda: es.store.count("users") == 20, "20 upserted documents")
        produce(server, "users", [json.dumps({"op": "set", "user": f"u{i}", "city": "Oslo"}) for i in range(10)])
        wait_for(lambda: sum("city" in d for d in es.store.docs("users").values()) == 10, "10 merged updates")
        docs = es.store.docs("users")
        assert docs["u3"]["name"] == "N3" and docs["u3"]["city"] == "Oslo", "an update merges, it does not replace"
        assert "city" not in docs["u15"]
        assert all(a == "update" and p["retry_on_conflict"] == 1 for a, p, _ in es.store.bulk_log)
        # Deletes remove; deleting what is not there is a 404, dead-lettered as Logstash does.
        produce(server, "users", [json.dumps({"op": "delete", "user": u}) for u in ["u0", "u1", "u2", "ghost"]])
        wait_for(lambda: es.store.count("users") == 17, "three deletes")
        letters = [json.loads(l.split("\t", 1)[1]) for l in kcat_read(server, "dlq.users", 1, fmt="%k\t%s\n")]
        assert [(l["action"], l["document_id"], l["status"]) for l in letters] == [("delete", "ghost", 404)]
        # A scripted update goes out in the Update API's shape with the event as params.
        produce(server, "users", [json.dumps({"op": "score", "user": "u7", "points": 5})])
        scripted = wait_for(lambda: [(p, b) for a, p, b in es.store.bulk_log if b and "script" in b], "the scripted update")
        (params, body), = scripted
        assert params == {"_index": "users", "_id": "u7", "retry_on_conflict": 3}
        assert body["script"]["source"] == "ctx._source.score += params.event.points"
        assert body["script"]["lang"] == "painless"
        assert body["script"]["params"]["event"]["points"] == 5 and body["scripted_upsert"] is True
        assert body["upsert"] == {}
        wait_for(lambda: first_partition_committed(server) == 35,
                 "everything committed")
    finally:
        server.stop()


def test_data_stream_names_create_only_and_synced_fields(es, workdir):
    pipelines = os.path.join(workdir, "pipelines")
    write(os.path.join(pipelines, "ds.conf"), f"""
input {{ kafka {{ topics => ["ds"] auto_offset_reset => "earliest" codec => json }} }}
output {{ {es_output(es.url, 'data_stream => true data_stream_dataset => "nginx"')} }}
""")
    server = Server(pipelines=pipelines)
    try:
        events = [{"message": f"m{i}", "@timestamp": "2026-11-22T00:00:00.000Z"} for i in range(30)]
        # data_stream_auto_routing (default true): the event's own fields pick the stream.
        events += [{"message": f"r{i}", "@timestamp": "2026-11-22T00:00:00.000Z",
                    "data_stream": {"dataset": "custom", "namespace": "prod"}} for i in range(10)]
        produce(server, "ds", [json.dumps(e) for e in events])
        wait_for(lambda: es.store.count("logs-nginx-default") == 30 and es.store.count("logs-custom-prod") == 10,
                 "both data streams")
        assert {a for a, _, _ in es.store.bulk_log} == {"create"}, "data streams take create only"
        doc = next(iter(es.store.docs("logs-nginx-default").values()))
        assert doc["data_stream"] == {"type": "logs", "dataset": "nginx", "namespace": "default"}, "synced fields"
        doc = next(iter(es.store.docs("logs-custom-prod").values()))
        assert doc["data_stream"] == {"type": "logs", "dataset": "custom", "namespace": "prod"}
    finally:
        server.stop()
    # action => index against a data stream is a configuration error, caught at load.
    write(os.path.join(pipelines, "ds.conf"), f"""
input {{ kafka {{ topics => ["ds"] }} }}
output {{ {es_output(es.url, 'data_stream => true action => "index"')} }}
""")
    with pytest.raises(RuntimeError):
        Server(pipelines=pipelines)


def test_index_template_headers_and_parameters(es, workdir):
    template = os.path.join(workdir, "app-template.json")
    write(template, json.dumps({"index_patterns": ["app-*"], "template": {"mappings": {"properties": {
        "n": {"type": "long"}}}}}))
    extra = (f'template => "{template}" template_name => "app" custom_headers => {{ "X-Tenant" => "t1" }} '
             f'parameters => {{ "refresh" => "false" }}')
    pipelines = standalone_pipeline(workdir, es.url, extra)
    server = Server(pipelines=pipelines)
    try:
        produce(server, "app", [json.dumps({"n": i, "@timestamp": "2026-11-22T00:00:00.000Z"}) for i in range(10)])
        wait_for(lambda: es.store.count("app-2026.11.22") == 10, "the documents")
        assert es.store.templates["_index_template/app"]["index_patterns"] == ["app-*"]
        assert es.store.last_headers.get("x-tenant") == "t1"
        assert es.store.last_path == "/_bulk?refresh=false"
    finally:
        server.stop()
    # An existing template is left alone unless template_overwrite => true.
    write(template, json.dumps({"index_patterns": ["app-v2-*"]}))
    for overwrite, expected in [("false", ["app-*"]), ("true", ["app-v2-*"])]:
        pipelines = standalone_pipeline(workdir, es.url, f'template => "{template}" template_name => "app" '
                                                          f'template_overwrite => {overwrite}')
        server = Server(pipelines=pipelines)
        try:
            before = es.store.bulk_requests
            produce(server, "app", [json.dumps({"n": 99, "@timestamp": "2026-11-22T00:00:00.000Z"})])
            wait_for(lambda: es.store.bulk_requests > before, "a bulk request after the template step")
            assert es.store.templates["_index_template/app"]["index_patterns"] == expected
        finally:
            server.stop()
