#!/usr/bin/env bash
# Installs the system package with Fashion-MNIST and the pinned Python
# packages, then this toolbox in editable mode. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist
  fi
fi
python -m pip install -q --root-user-action=ignore -r requirements.txt
python -m pip install -q --root-user-action=ignore --no-deps -e .
