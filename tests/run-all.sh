#!/usr/bin/env bash
# Runs the whole logbridge test suite on a fresh machine: installs what the tests need
# (Debian packages, PyPI packages), then the Rust unit and integration tests (which
# start the real binary and drive it with librdkafka), then the Python client tests
# (kcat, kafka-python, confluent-kafka).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

# Debian packages: kcat for the client tests; a C toolchain and cmake for the rdkafka
# crate, which builds librdkafka from source.
need_apt=""
for tool in kcat make g++ cmake pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
if [ -n "$need_apt" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat build-essential cmake pkg-config zlib1g-dev >/dev/null
fi

# PyPI packages for the Python client tests.
python3 -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

echo "== cargo test (unit and integration tests)"
cargo test

echo "== Python client tests (kcat, kafka-python, confluent-kafka)"
LOGBRIDGE_BIN="$PWD/target/debug/logbridge" python3 -m pytest tests/python -q -p no:warnings
