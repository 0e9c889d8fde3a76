"""The demo stack's docker-compose.yml, checked without a Docker engine (there is none
on these machines): parsed as YAML, held against the parts of the Compose
specification it uses, with every file it mounts present, and the logbridge
configuration and pipelines it ships loaded by the real binary."""
import os
import re
import subprocess
import tempfile

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
    assert {"nginx", "filebeat-kafka", "filebeat-beats", "logbridge", "elasticsearch", "kibana"} <= set(services)
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
    build = services["logbridge"]["build"]
    assert os.path.exists(os.path.join(ROOT, build, "Dockerfile"))


def test_filebeat_configs_point_at_logbridge():
    ports = {p.split(":")[1] for p in load()["services"]["logbridge"]["ports"]}
    with open(os.path.join(ROOT, "config", "filebeat-kafka.yml")) as f:
        kafka = yaml.safe_load(f)
    with open(os.path.join(ROOT, "config", "filebeat-beats.yml")) as f:
        beats = yaml.safe_load(f)
    assert kafka["output.kafka"]["hosts"] == ["logbridge:9092"] and "9092" in ports
    assert kafka["output.kafka"]["topic"] == "nginx"
    assert beats["output.logstash"]["hosts"] == ["logbridge:5044"] and "5044" in ports
    assert beats["filebeat.inputs"][0]["fields"]["log_topic"] == "nginx"
    assert kafka["filebeat.inputs"][0]["tags"] == ["access"]
    assert beats["filebeat.inputs"][0]["tags"] == ["error"]


def test_the_image_configuration_and_pipelines_load():
    # The config the image runs with parses and serves (listen addresses overridden:
    # this machine is not the container), with the shipped pipelines.
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [binary(), "serve", "--config", os.path.join(ROOT, "config", "docker.toml"), "--data-dir", d,
             "--kafka-listen", f"127.0.0.1:{free_port()}", "--http-listen", "127.0.0.1:0", "--beats-listen",
             "127.0.0.1:0", "--pipelines", os.path.join(ROOT, "pipelines")],
            stdout=subprocess.PIPE, text=True, cwd=d)
        try:
            assert proc.stdout.readline().startswith("logbridge ready")
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0
