#!/usr/bin/env bash
# Installs what longrope's build needs from Debian's packages, only what is missing.
# Idempotent: a second run installs nothing. Uses sudo when not root.
set -euo pipefail

packages=(cmake make g++ libeigen3-dev catch2 nlohmann-json3-dev libbenchmark-dev)
# Fuzzing (scripts/fuzz.sh, libFuzzer targets): only when asked, LONGROPE_FUZZ=1.
if [ "${LONGROPE_FUZZ:-0}" = "1" ]; then packages+=(clang libclang-rt-dev); fi
# External evaluators (docs/evaluators.md): MPI transport and its tests, the numpy evaluator.
packages+=(openmpi-bin libopenmpi-dev python3-mpi4py python3-numpy)
# Test tools: golden values (mpmath), the fsync order (strace), the pkg-config consumer.
packages+=(python3-mpmath strace pkg-config)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
