#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs
# lint and the test suite. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
python -m ruff check mmchansearch tools tests benchmarks configs
python -m pytest -q "$@"
