#!/usr/bin/env bash
# Runs the whole logbridge test suite on a fresh machine: installs what the tests need
# (Debian packages, PyPI and npm packages), then the Rust unit and integration tests
# (which start the real binary and drive it with librdkafka), then the Python-driven
# tests (kcat, kafka-python, confluent-kafka, aiokafka, the npm lumberjack-client),
# then a short run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

# Debian packages: kcat for the client tests; a C toolchain and cmake for the rdkafka
# crate, which builds librdkafka from source.
need_apt=""
for tool in kcat make g++ cmake pkg-config node npm iptables; do
    command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
if [ -n "$need_apt" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat build-essential cmake pkg-config zlib1g-dev iptables >/dev/null
    command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

# PyPI packages for the Python client tests; npm packages for the Node.js shipper.
python3 -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
npm install --prefix tests/node --silent --no-audit --no-fund

echo "== cargo test (unit and integration tests)"
cargo test

echo "== Client tests (kcat, kafka-python, confluent-kafka, aiokafka, lumberjack-client)"
LOGBRIDGE_BIN="$PWD/target/debug/logbridge" python3 -m pytest tests/python -q -p no:warnings

echo "== Fuzz every network decoder briefly (tests/fuzz/run.sh, about five minutes)"
bash tests/fuzz/run.sh
