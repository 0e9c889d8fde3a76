"""Elasticsearch-style ingest over HTTP: the Python `elasticsearch` client's
helpers.bulk, gzip bodies, per-item errors, and plain NDJSON lines."""
import gzip
import json
import urllib.request

import pytest
from elasticsearch import Elasticsearch, helpers

from conftest import kcat_read


def kcat_values(server, topic, expected):
    return kcat_read(server, topic, expected, fmt="%k\t%s\n")


def post(server, path, body, headers=None):
    req = urllib.request.Request(f"http://{server.http}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_elasticsearch_client_helpers_bulk(server):
    es = Elasticsearch(f"http://{server.http}")
    info = es.info()
    assert info["tagline"] == "You Know, for Search"
    actions = [{"_index": "nginx", "_id": f"doc-{i}", "_source": {"message": f"GET /{i}", "n": i}} for i in range(500)]
    ok, errors = helpers.bulk(es, actions, chunk_size=100)
    assert (ok, errors) == (500, [])
    lines = kcat_values(server, "nginx", 500)
    assert len(lines) == 500
    got = {l.split("\t", 1)[0]: json.loads(l.split("\t", 1)[1]) for l in lines}
    assert got["doc-42"] == {"message": "GET /42", "n": 42}, "the key is the _id, the value the document"


def test_gzip_bodies_per_item_errors_and_plain_lines(server):
    body = "\n".join([
        json.dumps({"index": {"_index": "app"}}), json.dumps({"msg": "a"}),
        json.dumps({"create": {"_index": "app", "_id": "x"}}), json.dumps({"msg": "b"}),
        json.dumps({"delete": {"_index": "app", "_id": "x"}}),
        json.dumps({"index": {"_index": "Not Valid"}}), json.dumps({"msg": "c"}),
    ]) + "\n"
    status, resp = post(server, "/_bulk", gzip.compress(body.encode()), {"Content-Encoding": "gzip"})
    assert status == 200 and resp["errors"] is True
    statuses = [list(i.values())[0]["status"] for i in resp["items"]]
    assert statuses == [201, 201, 400, 400]
    assert sorted(json.loads(l.split("\t", 1)[1])["msg"] for l in kcat_values(server, "app", 2)) == ["a", "b"]
    # /{index}/_bulk supplies the index; /ingest/{topic} takes plain lines.
    status, resp = post(server, "/metrics/_bulk", b'{"index":{}}\n{"cpu":1}\n')
    assert status == 200 and not resp["errors"]
    status, resp = post(server, "/ingest/raw", b"line one\nline two\n\n")
    assert (status, resp["records"]) == (200, 2)
    assert [l.split("\t", 1)[1] for l in kcat_values(server, "raw", 2)] == ["line one", "line two"]
    # A malformed action line fails the whole request, as in Elasticsearch.
    with pytest.raises(urllib.error.HTTPError) as e:
        post(server, "/_bulk", b"this is not json\n{}\n")
    assert e.value.code == 400
