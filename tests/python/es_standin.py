"""A STAND-IN FOR ELASTICSEARCH, for tests only: Elasticsearch cannot be installed on
the machines these tests run on. It implements the few documented endpoints logbridge
and the tests use, with Elasticsearch's request and response formats:

- `GET /` (cluster info, with the `X-Elastic-Product: Elasticsearch` header),
- `POST /_bulk` and `POST /{index}/_bulk` (NDJSON, optional gzip body; actions index,
  create, update, delete; the per-item response shape of the bulk API docs: `took`,
  `errors`, `items` of `{action: {_index, _id, status, result | error}}`). Updates
  merge `doc` into the stored document (objects merged recursively), insert `upsert`
  or the doc (`doc_as_upsert`) when it is missing, and answer 404
  `document_missing_exception` otherwise. SCRIPTED UPDATES ARE RECORDED, NOT RUN (no
  Painless here): the upsert is inserted when the document is missing, an existing
  document is left as it is. Names starting `logs-`, `metrics-` or `traces-` behave
  as data streams (Elasticsearch's built-in `*-*-*` templates): only `create`.
- `PUT`/`HEAD`/`GET /_index_template/{name}` and `/_template/{name}` (stored as sent),
- `GET /_cat/indices?format=json`, `GET /{index}/_count`, `GET|POST /{index}/_search`
  (match_all or a `term` query on one field; `size`),

and fault injection for the tests: refuse connections (the listener is closed), answer
429 to the next N bulk requests, reject documents that contain a given field with a
`mapper_parsing_exception` (400), and delay responses. Documents are kept in memory by
index and `_id` (an index with the same `_id` overwrites, as in Elasticsearch); with
`discard=True` bulk requests are answered without being stored (for benchmarks).

Run alone: `python3 es_standin.py [--port N] [--discard]` prints `es-standin PORT`.
"""
import argparse
import gzip
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.indices = {}          # index -> {_id: source}
        self.bulk_requests = 0     # bulk requests answered (any status)
        self.fail_next_bulk = 0    # answer 429 to this many bulk requests
        self.reject_field = None   # documents holding this field get a 400
        self.delay_s = 0.0
        self.discard = False
        self.seen_ids = {}         # index -> number of index/create operations per _id
        self.auth = None           # expected Authorization header, if any
        self.last_headers = {}
        self.last_path = None
        self.bulk_log = []         # (action, metadata, body) of every bulk operation
        self.templates = {}        # "_index_template/name" or "_template/name" -> body

    def docs(self, index):
        with self.lock:
            return dict(self.indices.get(index, {}))

    def count(self, index):
        with self.lock:
            return sum(len(d) for name, d in self.indices.items() if matches(index, name))


def merge(into, doc):
    """Elasticsearch's partial update: objects merged recursively, the rest replaced."""
    out = dict(into)
    for k, v in doc.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def is_data_stream(index):
    return index.split("-", 1)[0] in ("logs", "metrics", "traces") and index.count("-") >= 2


def matches(pattern, name):
    if pattern in ("_all", "*"):
        return True
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return pattern == name


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store = None

    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return raw

    def authorized(self):
        if self.store.auth is None or self.headers.get("Authorization") == self.store.auth:
            return True
        self.send_json(401, {"error": {"type": "security_exception", "reason": "missing authentication credentials"},
                             "status": 401})
        return False

    def do_GET(self):
        if not self.authorized():
            return
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        if not parts:
            return self.send_json(200, {"name": "es-standin", "cluster_name": "stand-in",
                                        "version": {"number": "8.15.0", "build_flavor": "default"},
                                        "tagline": "You Know, for Search"})
        if parts == ["_cat", "indices"]:
            with self.store.lock:
                rows = [{"index": i, "docs.count": str(len(d)), "health": "green", "status": "open"}
                        for i, d in sorted(self.store.indices.items())]
            return self.send_json(200, rows)
        if len(parts) == 2 and parts[1] == "_count":
            return self.send_json(200, {"count": self.store.count(parts[0]),
                                        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})
        if len(parts) == 2 and parts[1] == "_search":
            return self.search(parts[0], {})
        if len(parts) == 2 and parts[0] in ("_index_template", "_template"):
            body = self.store.templates.get("/".join(parts))
            if body is None:
                return self.send_json(404, {"error": {"type": "resource_not_found_exception",
                                                      "reason": f"index template matching [{parts[1]}] not found"},
                                            "status": 404})
            if parts[0] == "_template":
                return self.send_json(200, {parts[1]: body})
            return self.send_json(200, {"index_templates": [{"name": parts[1], "index_template": body}]})
        self.send_json(404, {"error": {"type": "illegal_argument_exception", "reason": f"no handler for {url.path}"},
                             "status": 404})

    def search(self, index, query):
        size = query.get("size", 10)
        term = (query.get("query") or {}).get("term") or {}
        hits = []
        with self.store.lock:
            for name, docs in sorted(self.store.indices.items()):
                if not matches(index, name):
                    continue
                for _id, src in docs.items():
                    if term:
                        (field, want), = term.items()
                        want = want.get("value") if isinstance(want, dict) else want
                        value = src
                        for seg in field.split("."):
                            value = value.get(seg) if isinstance(value, dict) else None
                        if value != want:
                            continue
                    hits.append({"_index": name, "_id": _id, "_source": src})
        self.send_json(200, {"took": 1, "timed_out": False,
                             "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits[:size]}})

    def do_HEAD(self):
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        found = "/".join(parts) in self.store.templates
        self.send_response(200 if found else 404)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        if not self.authorized():
            return
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        self.store.last_headers = {k.lower(): v for k, v in self.headers.items()}
        self.store.last_path = self.path
        body = self.body()
        if len(parts) == 2 and parts[0] in ("_index_template", "_template") and self.command == "PUT":
            self.store.templates["/".join(parts)] = json.loads(body)
            return self.send_json(200, {"acknowledged": True})
        if parts and parts[-1] == "_search":
            return self.search(parts[0] if len(parts) == 2 else "_all", json.loads(body or b"{}"))
        if parts and parts[-1] == "_bulk":
            return self.bulk(parts[0] if len(parts) == 2 else None, body)
        self.send_json(404, {"error": {"type": "illegal_argument_exception", "reason": f"no handler for {url.path}"},
                             "status": 404})

    do_PUT = do_POST

    def bulk(self, default_index, body):
        store = self.store
        if store.delay_s:
            time.sleep(store.delay_s)
        with store.lock:
            store.bulk_requests += 1
            if store.fail_next_bulk > 0:
                store.fail_next_bulk -= 1
                return self.send_json(429, {"error": {"type": "es_rejected_execution_exception",
                                                      "reason": "rejected execution of coordinating operation"},
                                            "status": 429})
        lines = body.split(b"\n")
        items, errors, i = [], False, 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            meta = json.loads(lines[i])
            (action, params), = meta.items()
            index = params.get("_index", default_index)
            _id = params.get("_id") or uuid.uuid4().hex[:20]
            source = None
            if action != "delete":
                i += 1
                source = json.loads(lines[i])
            i += 1
            item = {"_index": index, "_id": _id}
            with store.lock:
                docs = store.indices.setdefault(index, {}) if not store.discard else {}
                if not store.discard:
                    store.bulk_log.append((action, params, source))
                if is_data_stream(index) and action != "create":
                    item.update(status=400, error={"type": "illegal_argument_exception",
                                                  "reason": f"only write ops with an op_type of create are allowed in data streams"})
                elif store.reject_field and source is not None and store.reject_field in (source.get("doc", source) if action == "update" else source):
                    item.update(status=400, error={"type": "mapper_parsing_exception",
                                                  "reason": f"failed to parse field [{store.reject_field}] of type [long] in document with id '{_id}'"})
                elif action == "create" and _id in docs:
                    item.update(status=409, error={"type": "version_conflict_engine_exception",
                                                  "reason": f"[{_id}]: version conflict, document already exists"})
                elif action in ("index", "create"):
                    created = _id not in docs
                    if not store.discard:
                        docs[_id] = source
                        counts = store.seen_ids.setdefault(index, {})
                        counts[_id] = counts.get(_id, 0) + 1
                    item.update(status=201 if created else 200, result="created" if created else "updated",
                                _version=1, _shards={"total": 1, "successful": 1, "failed": 0})
                elif action == "update":
                    upsert = source.get("upsert")
                    if upsert is None and source.get("doc_as_upsert"):
                        upsert = source.get("doc")
                    if _id not in docs and upsert is None:
                        item.update(status=404, error={"type": "document_missing_exception",
                                                      "reason": f"[{_id}]: document missing"})
                    elif _id not in docs:
                        docs[_id] = upsert
                        item.update(status=201, result="created")
                    else:
                        if "doc" in source:
                            docs[_id] = merge(docs[_id], source["doc"])
                        item.update(status=200, result="updated")
                elif action == "delete":
                    found = docs.pop(_id, None) is not None
                    item.update(status=200 if found else 404, result="deleted" if found else "not_found")
            if "error" in item:
                errors = True
            items.append({action: item})
        self.send_json(200, {"took": 1, "errors": errors, "items": items})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-request (logbridge killed by a test) is not an
        # error of the stand-in.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


class StandIn:
    """The stand-in on a port of its own; `refuse()` closes the listener (connections
    are refused), `resume()` opens it again on the same port."""

    def __init__(self, port=0, discard=False):
        self.store = Store()
        self.store.discard = discard
        self.port = port
        self.server = None
        self.resume()

    def resume(self):
        handler = type("BoundHandler", (Handler,), {"store": self.store})
        self.server = Server(("127.0.0.1", self.port), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refuse(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.refuse()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--discard", action="store_true")
    args = ap.parse_args()
    s = StandIn(args.port, discard=args.discard)
    print(f"es-standin {s.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
