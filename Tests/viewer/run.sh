#!/usr/bin/env bash
# Runs the viewer's browser tests: a real flare store, headless Chromium over
# WebDriver (chromium-driver), the OpenTelemetry Python SDK in .build/venv.
# Uses the already-built .build/debug/flare (or $FLARE_BINARY); builds nothing.
# Installs Chromium, its driver and Selenium when missing (as root).
# Last line of output: "N passed, M failed, K skipped".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ $(id -u) -eq 0 ]] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  scripts/install-deps chromium chromium-driver
fi
python=.build/venv/bin/python
if [[ ! -x $python ]]; then
  python3 -m venv .build/venv
fi
if ! "$python" -c 'import selenium' 2>/dev/null; then
  "$python" -m pip install --quiet --disable-pip-version-check selenium
fi
if ! "$python" -c 'import opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
  "$python" -m pip install --quiet --disable-pip-version-check opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
fi
exec "$python" Tests/viewer/run_tests.py "$@"
