#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes for longer than CI does: SECONDS per
# target (default 600), keeping what finds new coverage in .build-fuzz/corpus/.
#   benches/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
exec scripts/fuzz --seconds "$seconds" "$@"
