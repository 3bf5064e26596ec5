#!/usr/bin/env bash
# Generates the Python messages and gRPC stubs from proto/ into gen/ (not
# committed). Run it with the Python that has requirements.txt installed, e.g.
#   PYTHON=.venv/bin/python bash gen.sh
# proto/ vendors buf/validate/validate.proto, which the fog.v1 files import; the
# google/protobuf files come with grpcio-tools.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
rm -rf "$here/gen"
mkdir -p "$here/gen"
"${PYTHON:-python3}" -m grpc_tools.protoc -I "$proto" \
  --python_out="$here/gen" --pyi_out="$here/gen" --grpc_python_out="$here/gen" \
  "$proto"/fog/v1/*.proto "$proto/buf/validate/validate.proto"
