"""Starts the real logbridge binary for the Python client tests."""
import os
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    path = os.environ.get("LOGBRIDGE_BIN") or os.path.join(ROOT, "target", "debug", "logbridge")
    if not os.path.exists(path):
        raise RuntimeError(f"logbridge binary not found at {path}; build it or set LOGBRIDGE_BIN")
    return path


_next_port = [20000 + os.getpid() % 4000]


def free_port():
    """A free port below the kernel's ephemeral range, so that no listener bound to port
    0 can take it before the server that is given it binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    while True:
        port = _next_port[0]
        _next_port[0] += 1
        assert port < low, "no free port below the ephemeral range"
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Server:
    """The real binary. `config` is TOML text; `kafka_port` pins the Kafka port so a
    restarted server is reachable at the address clients already know."""

    def __init__(self, config="", kafka_port=0, data_dir=None, pipelines=None, cwd=None, env=None,
                 prefix=()):
        self.owned_dir = data_dir is None
        self.dir = tempfile.TemporaryDirectory() if data_dir is None else None
        self.data = self.dir.name if data_dir is None else data_dir
        self.config_path = os.path.join(self.data + "-config.toml")
        with open(self.config_path, "w") as f:
            f.write(config)
        # `prefix` runs the binary through another command (the cluster checker runs
        # each node under its own uid, so iptables can cut one node off the others).
        self.proc = subprocess.Popen(
            [*prefix, binary(), "serve", "--data-dir", self.data, "--config", self.config_path,
             "--kafka-listen", f"127.0.0.1:{kafka_port}", "--http-listen", "127.0.0.1:0",
             "--beats-listen", "127.0.0.1:0",
             # The repository's ./pipelines must not run inside every test server.
             "--pipelines", pipelines or os.path.join(self.data, "no-pipelines")],
            stdout=subprocess.PIPE, stderr=None, text=True, cwd=cwd,
            env={**os.environ, "RUST_LOG": os.environ.get("LOGBRIDGE_TEST_LOG", "warn"), **(env or {})},
        )
        # The binary prints one ready line once both listeners are bound.
        line = self.proc.stdout.readline()
        if not line.startswith("logbridge ready"):
            self.proc.kill()
            raise RuntimeError(f"logbridge did not start: {line!r}")
        fields = dict(w.split("=", 1) for w in line.split()[2:])
        self.kafka = fields["kafka"]
        self.http = fields["http"]
        self.beats = fields["beats"]

    def stop(self, cleanup=True):
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0
        if cleanup and self.dir is not None:
            self.dir.cleanup()


@pytest.fixture
def server():
    s = Server()
    yield s
    if s.proc.poll() is None:
        s.stop()


def kcat_read(server, topic, expected, fmt="%h\t%s\n", timeout=60):
    """Reads a topic from the beginning with kcat until `expected` records arrived or
    the deadline passed; one line per record in kcat's `fmt`."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["kcat", "-b", server.kafka, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                              "-f", fmt], capture_output=True, text=True, timeout=60)
        lines = [l for l in out.stdout.splitlines() if l]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def create_topic(server, name, partitions):
    subprocess.run([binary(), "topics", "create", name, "--partitions", str(partitions),
                    "--bootstrap-server", server.kafka], check=True, capture_output=True)
