#!/usr/bin/env bash
# Creates benchmarks/.peers-venv with the peers the comparison runs against (ignored by git; never made by the
# test suite). Usage: bash benchmarks/peers_venv.sh   (then: .venv/bin/python benchmarks/run.py --peers)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.peers-venv"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet codecarbon==3.3.2 carbontracker==2.4.7 zeus==0.16.0
"$venv/bin/python" -c "import codecarbon, carbontracker, zeus; print('peers ready:', codecarbon.__version__)"
