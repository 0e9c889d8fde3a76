"""Beats (Lumberjack) ingest with real shippers: the npm lumberjack-client from several
connections, and a raw Lumberjack client for acknowledgements, resends and bad input."""
import json
import os
import socket
import struct
import subprocess
import time
import zlib

import pytest

from conftest import ROOT, Server, kcat_read

NODE_DIR = os.path.join(ROOT, "tests", "node")


def host_port(addr):
    h, p = addr.rsplit(":", 1)
    return h, int(p)


def window(events, seq0=1, compress=True):
    frames = b"".join(b"2J" + struct.pack(">II", seq0 + i, len(e)) + e for i, e in enumerate(events))
    head = b"2W" + struct.pack(">I", len(events))
    if compress:
        z = zlib.compress(frames)
        return head + b"2C" + struct.pack(">I", len(z)) + z
    return head + frames


def read_ack(sock, timeout=30):
    """Reads acks until a non-zero one (zeros are keep-alives); returns its sequence."""
    sock.settimeout(timeout)
    while True:
        data = b""
        while len(data) < 6:
            chunk = sock.recv(6 - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        assert data[:2] == b"2A", data
        seq = struct.unpack(">I", data[2:])[0]
        if seq:
            return seq


def assert_closed(sock, timeout=30):
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass


@pytest.fixture
def server():
    s = Server("beats_client_inactivity_timeout_ms = 2000\nbeats_max_frame_bytes = 1048576\n")
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_npm_lumberjack_client_events_land_once_in_the_right_topics(server):
    host, port = host_port(server.beats)
    conns, per = 4, 1500
    shipper = subprocess.Popen(["node", os.path.join(NODE_DIR, "ship.js"), host, str(port), str(conns), str(per)],
                               stdout=subprocess.PIPE, text=True, cwd=NODE_DIR)
    try:
        assert shipper.stdout.readline().strip() == "queued"
        expect = {"web": set(), "app": set(), "beats": set()}
        for c in range(conns):
            for i in range(per):
                topic = "beats" if i % 3 == 0 else ("web" if c % 2 == 0 else "app")
                expect[topic].add(f"{c}-{i}")
        for topic, ids in expect.items():
            lines = kcat_read(server, topic, len(ids))
            got = [json.loads(l.split("\t", 1)[1])["id"] for l in lines]
            assert len(got) == len(ids), f"{topic}: {len(got)} of {len(ids)}"
            assert set(got) == ids, topic
            assert all(l.startswith("source=beats,remote_addr=127.0.0.1:") for l in lines)
    finally:
        shipper.kill()


def test_windows_are_acknowledged_after_the_append_and_resent_windows_are_not_lost(server):
    host, port = host_port(server.beats)
    events = [json.dumps({"n": i, "fields": {"log_topic": "acked"}}).encode() for i in range(10)]
    # A shipper that dies in the middle of a window: nothing of it is stored or acked.
    s = socket.create_connection((host, port))
    partial = window(events, compress=False)
    s.sendall(partial[: len(partial) // 2])
    s.close()
    # It reconnects and resends the whole window: acknowledged with the last sequence.
    s = socket.create_connection((host, port))
    s.sendall(window(events))
    assert read_ack(s) == 10
    # v1 data frames from an old forwarder, uncompressed.
    v1 = b"1W" + struct.pack(">I", 1) + b"1D" + struct.pack(">II", 1, 2)
    for k, v in ((b"line", b"old forwarder"), (b"fields", b"x")):
        v1 += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
    s.sendall(v1)
    assert read_ack(s) == 1
    s.close()
    lines = kcat_read(server, "acked", 10)
    assert sorted(json.loads(l.split("\t", 1)[1])["n"] for l in lines) == list(range(10))
    old = kcat_read(server, "beats", 1)
    assert json.loads(old[0].split("\t", 1)[1]) == {"line": "old forwarder", "fields": "x"}


def test_bad_input_closes_only_the_offending_connection(server):
    host, port = host_port(server.beats)
    good = socket.create_connection((host, port))
    good.sendall(window([json.dumps({"n": 0, "fields": {"log_topic": "good"}}).encode()]))
    assert read_ack(good) == 1
    # Wrong version byte.
    s = socket.create_connection((host, port))
    s.sendall(b"9W\x00\x00\x00\x01")
    assert_closed(s)
    # A frame over beats_max_frame_bytes (1 MiB).
    s = socket.create_connection((host, port))
    s.sendall(b"2W\x00\x00\x00\x01" + b"2J" + struct.pack(">II", 1, 50 << 20))
    assert_closed(s)
    # A zlib bomb: 64 MiB of zeros in a few kilobytes.
    bomb = zlib.compress(b"\0" * (64 << 20), 9)
    s = socket.create_connection((host, port))
    s.sendall(b"2W\x00\x00\x00\x01" + b"2C" + struct.pack(">I", len(bomb)) + bomb)
    assert_closed(s)
    # Invalid JSON in one event: that event is refused, the window is acknowledged,
    # and the good event of the window is stored. The good shipper never noticed the rest.
    good.sendall(window([b"{not json", json.dumps({"n": 1, "fields": {"log_topic": "good"}}).encode()]))
    assert read_ack(good) == 2
    good.close()
    lines = kcat_read(server, "good", 2)
    assert sorted(json.loads(l.split("\t", 1)[1])["n"] for l in lines) == [0, 1]
    # A window that never completes: no ack, nothing stored, closed when it goes quiet.
    s = socket.create_connection((host, port))
    partial = [json.dumps({"n": i, "fields": {"log_topic": "never"}}).encode() for i in range(2)]
    s.sendall(b"2W" + struct.pack(">I", 5) + b"".join(b"2J" + struct.pack(">II", i + 1, len(e)) + e for i, e in enumerate(partial)))
    s.settimeout(20)
    assert s.recv(100) == b"", "closed without an ack"
    assert kcat_read(server, "never", 1, timeout=1) == []
    # A silent client (slowloris) is closed after the inactivity timeout (2 s here).
    s = socket.create_connection((host, port))
    started = time.monotonic()
    assert_closed(s)
    assert time.monotonic() - started < 20
