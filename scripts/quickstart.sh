#!/usr/bin/env bash
# The README's first command: install what is missing, build the optimised
# preset, run the main demo. Idempotent. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec build/release/examples/demo "$@"
