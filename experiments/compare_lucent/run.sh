#!/usr/bin/env bash
# Builds this experiment's own environment (xdream + torch-lucent, torch pinned by the
# project's constraints) and runs the peer check. Usage: bash experiments/compare_lucent/run.sh [--steps N --seeds K]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install -q --disable-pip-version-check -c "$root/constraints.txt" -e "$root" torch-lucent
fi
exec "$here/.venv/bin/python" "$here/run.py" "$@"
