"""Starts the real logbridge binary for the Python client tests."""
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    path = os.environ.get("LOGBRIDGE_BIN") or os.path.join(ROOT, "target", "debug", "logbridge")
    if not os.path.exists(path):
        raise RuntimeError(f"logbridge binary not found at {path}; build it or set LOGBRIDGE_BIN")
    return path


class Server:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.dir.name,
             "--kafka-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=None, text=True,
            env={**os.environ, "RUST_LOG": os.environ.get("LOGBRIDGE_TEST_LOG", "warn")},
        )
        # The binary prints one ready line once both listeners are bound.
        line = self.proc.stdout.readline()
        if not line.startswith("logbridge ready"):
            self.proc.kill()
            raise RuntimeError(f"logbridge did not start: {line!r}")
        fields = dict(w.split("=", 1) for w in line.split()[2:])
        self.kafka = fields["kafka"]
        self.http = fields["http"]

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0
        self.dir.cleanup()


@pytest.fixture
def server():
    s = Server()
    yield s
    if s.proc.poll() is None:
        s.stop()


def create_topic(server, name, partitions):
    subprocess.run([binary(), "topics", "create", name, "--partitions", str(partitions),
                    "--bootstrap-server", server.kafka], check=True, capture_output=True)
