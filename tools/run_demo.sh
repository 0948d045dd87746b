#!/usr/bin/env bash
# The README's main job: installs everything on a fresh Debian machine,
# prepares Fashion-MNIST, then runs the AutoSlim pipeline end to end
# (supernet -> greedy search -> retrain -> split -> test) and prints the
# searched subnets next to uniform-width networks of equal FLOPs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
python tools/prepare_data.py fashion_mnist
python tools/demo_autoslim.py --work-dir work_dirs/autoslim_demo "$@"
