#!/usr/bin/env bash
# Runs the Python third-party client test against a chatd binary (built by cargo).
# Installs the pinned grpcio packages into the user's Python if they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHATD="${1:-${CARGO_TARGET_DIR:-target}/debug/chatd}"

GRPC_VERSION=1.76.0
if ! python3 -c "import grpc, grpc_tools, grpc_health, grpc_reflection; assert grpc.__version__ == '$GRPC_VERSION'" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check \
        "grpcio==$GRPC_VERSION" "grpcio-tools==$GRPC_VERSION" \
        "grpcio-health-checking==$GRPC_VERSION" "grpcio-reflection==$GRPC_VERSION"
fi
python3 tests/python/client_test.py "$CHATD"
