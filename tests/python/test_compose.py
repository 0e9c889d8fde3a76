"""The demo stack's docker-compose.yml, checked without a Docker engine (there is none
on these machines): parsed as YAML, held against the parts of the Compose
specification it uses, with every file it mounts present, and the logbridge
configuration and pipelines it ships loaded by the real binary."""
import os
import re
import subprocess
import tempfile
import time

import yaml

from conftest import ROOT, binary, free_port

COMPOSE = os.path.join(ROOT, "docker-compose.yml")


def load():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def test_compose_file_follows_the_specification():
    doc = load()
    assert set(doc) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    services = doc["services"]
    assert {"nginx", "filebeat-kafka", "filebeat-beats", "elasticsearch", "kibana"} <= set(services)
    assert {"logbridge1", "logbridge2", "logbridge3"} <= set(services)
    named_volumes = set(doc.get("volumes") or {})
    for name, svc in services.items():
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
        for port in svc.get("ports", []):
            assert re.fullmatch(r"\d+:\d+", str(port)), f"{name}: port {port}"
        for vol in svc.get("volumes", []):
            source, target = vol.split(":")[:2]
            assert target.startswith("/"), f"{name}: {vol}"
            if source.startswith("./"):
                assert os.path.exists(os.path.join(ROOT, source)), f"{name} mounts missing {source}"
            else:
                assert source in named_volumes, f"{name} uses undeclared volume {source}"
        env = svc.get("environment", {})
        assert isinstance(env, dict) and all(isinstance(v, str) for v in env.values()), name
    for n in (1, 2, 3):
        build = services[f"logbridge{n}"]["build"]
        assert os.path.exists(os.path.join(ROOT, build, "Dockerfile"))


def test_filebeat_configs_point_at_every_logbridge_node():
    services = load()["services"]
    nodes = [f"logbridge{n}" for n in (1, 2, 3)]
    with open(os.path.join(ROOT, "config", "filebeat-kafka.yml")) as f:
        kafka = yaml.safe_load(f)
    with open(os.path.join(ROOT, "config", "filebeat-beats.yml")) as f:
        beats = yaml.safe_load(f)
    assert kafka["output.kafka"]["hosts"] == [f"{n}:9092" for n in nodes]
    assert kafka["output.kafka"]["required_acks"] == -1
    assert kafka["output.kafka"]["topic"] == "nginx"
    assert beats["output.logstash"]["hosts"] == [f"{n}:5044" for n in nodes]
    assert beats["output.logstash"]["loadbalance"] is True
    assert beats["filebeat.inputs"][0]["fields"]["log_topic"] == "nginx"
    assert kafka["filebeat.inputs"][0]["tags"] == ["access"]
    assert beats["filebeat.inputs"][0]["tags"] == ["error"]
    for n in nodes:
        # The container ports Filebeat reaches are the ones logbridge listens on.
        assert services[n]["hostname"] == n
        command = services[n]["command"]
        advertised = command[command.index("--advertised-listeners") + 1]
        assert f"INTERNAL://{n}:9092" in advertised


def _serve(args):
    proc = subprocess.Popen([binary()] + args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("logbridge ready")
    return proc


def test_the_three_nodes_start_from_the_compose_commands_and_form_one_cluster():
    # Each logbridge service's own command and the image's configuration, with the
    # addresses moved from container names to loopback ports (this machine is not the
    # containers' network): three nodes that elect a quorum, register, and run the
    # shipped pipelines.
    import json
    import urllib.request

    services = load()["services"]
    cluster_ports = {n: free_port() for n in (1, 2, 3)}
    voters = ",".join(f"{n}@127.0.0.1:{p}" for n, p in cluster_ports.items())
    procs, https = [], []
    with tempfile.TemporaryDirectory() as d:
        try:
            for n in (1, 2, 3):
                command = list(services[f"logbridge{n}"]["command"])
                assert command[:3] == ["serve", "--config", "/etc/logbridge/logbridge.toml"]
                assert command[command.index("--node-id") + 1] == str(n)
                command[2] = os.path.join(ROOT, "config", "docker.toml")
                internal, external, http = free_port(), free_port(), free_port()
                at = command.index("--advertised-listeners") + 1
                command[at] = f"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}"
                procs.append(_serve(command + [
                    "--data-dir", os.path.join(d, f"n{n}"),
                    "--voters", voters, "--cluster-listen", f"127.0.0.1:{cluster_ports[n]}",
                    "--listeners", f"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}",
                    "--http-listen", f"127.0.0.1:{http}", "--beats-listen", "127.0.0.1:0",
                    "--pipelines", os.path.join(ROOT, "pipelines")]))
                https.append(http)
            deadline = time.time() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{https[0]}/cluster", timeout=5) as r:
                        status = json.load(r)
                    alive = [b["id"] for b in status["brokers"] if b["state"] == "alive"]
                    if sorted(alive) == [1, 2, 3]:
                        break
                except OSError:
                    pass
                assert time.time() < deadline, "the three compose nodes never formed a cluster"
                time.sleep(0.2)
            for http in https:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/pipelines", timeout=5) as r:
                    assert "nginx" in [p["name"] for p in json.load(r)["pipelines"]]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                assert p.wait(timeout=60) == 0
