#!/usr/bin/env bash
# Runs the context ABI tests: the C header built as C and C++, the Python
# client, the OpenTelemetry integration, and the reference reader.
# Installs what it needs (compilers, strace, a virtualenv with the
# OpenTelemetry SDK and this repo's Python package). Last line of output:
# "N passed, M failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${FLARE_CONTEXT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/flare-context-tests-venv}"

fail_setup() {
    echo "setup failed: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v strace >/dev/null || need_apt+=(strace)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}") >&2 \
            || fail_setup "apt-get install ${need_apt[*]}"
    else
        fail_setup "missing ${need_apt[*]} and cannot apt-get install them"
    fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" >&2 || fail_setup "python3 -m venv $venv"
fi
py="$venv/bin/python"
if ! "$py" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.proto' 2>/dev/null; then
    "$py" -m pip install -q --disable-pip-version-check opentelemetry-sdk opentelemetry-exporter-otlp-proto-http >&2 \
        || fail_setup "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
fi
# Reinstalled every run so the entry point test sees the working tree's code;
# built from a copy because setuptools leaves build/ and *.egg-info beside
# the sources.
pkg="$(mktemp -d)"
trap 'rm -rf "$pkg"' EXIT
cp "$repo"/clients/python/{pyproject.toml,flare_context.py,flare_otel.py} "$pkg"/
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$pkg" >&2 \
    || fail_setup "pip install clients/python"

cd "$here"
"$py" "$here/test_context.py" "$@"
