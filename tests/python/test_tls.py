"""TLS on the Beats and HTTP listeners with certificates the test makes itself
(openssl): a Lumberjack client and the elasticsearch client over TLS, plain clients
refused, and client-certificate verification."""
import json
import os
import socket
import ssl
import subprocess
import tempfile

import pytest
from elasticsearch import Elasticsearch, helpers

from conftest import Server, kcat_read
from test_beats import NODE_DIR, host_port, read_ack, window


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki():
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tempfile.mkdtemp()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)
    return d


def tls_config(pki, client_ca=False):
    ca = f'client_ca = "{pki}/ca.pem"\n' if client_ca else ""
    block = f'cert = "{pki}/server.pem"\nkey = "{pki}/server.key"\n{ca}'
    return f"[beats_tls]\n{block}[http_tls]\n{block}"


def test_beats_and_http_over_tls(pki):
    server = Server(tls_config(pki))
    try:
        host, port = host_port(server.beats)
        ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
        with ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="127.0.0.1") as s:
            s.sendall(window([json.dumps({"tls": True, "fields": {"log_topic": "secure"}}).encode()]))
            assert read_ack(s) == 1
        # A plaintext shipper does not get through.
        plain = socket.create_connection((host, port))
        plain.sendall(window([b'{"plain": true}']))
        plain.settimeout(15)
        try:
            data = plain.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"2A"), "no ack over plaintext"
        plain.close()
        # The npm lumberjack-client over TLS.
        shipper = subprocess.Popen(["node", "-e", f"""
            const fs = require('fs'); const C = require('lumberjack-client');
            const c = new C({{host: '127.0.0.1', port: {port}, ca: [fs.readFileSync('{pki}/ca.pem')]}}, true);
            for (let i = 0; i < 100; i++) c.log({{i, fields: {{log_topic: 'secure'}}}});
            setInterval(() => {{}}, 1000);"""], cwd=NODE_DIR)
        try:
            lines = kcat_read(server, "secure", 101)
            assert len(lines) == 101
        finally:
            shipper.kill()
        es = Elasticsearch(f"https://{server.http}", ca_certs=f"{pki}/ca.pem")
        ok, errors = helpers.bulk(es, [{"_index": "tlsdocs", "_source": {"n": i}} for i in range(20)])
        assert (ok, errors) == (20, [])
        assert len(kcat_read(server, "tlsdocs", 20)) == 20
    finally:
        server.stop()


def test_client_certificates_are_required_when_a_client_ca_is_set(pki):
    server = Server(tls_config(pki, client_ca=True))
    try:
        host, port = host_port(server.beats)
        ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            with ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="127.0.0.1") as s:
                s.sendall(window([b'{"anonymous": true}']))
                read_ack(s, timeout=10)
        ctx.load_cert_chain(f"{pki}/client.pem", f"{pki}/client.key")
        with ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="127.0.0.1") as s:
            s.sendall(window([json.dumps({"fields": {"log_topic": "mtls"}}).encode()]))
            assert read_ack(s) == 1
        assert len(kcat_read(server, "mtls", 1)) == 1
    finally:
        server.stop()
