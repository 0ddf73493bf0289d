#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12: the
# compilers and libraries from Debian's packages, and the Node.js packages of
# the independent CloudEvents check. Idempotent: it installs only what is
# missing, so a second run does nothing and needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  bazel-bootstrap g++ clang libclang-rt-14-dev
  librdkafka-dev libsqlite3-dev sqlite3 libsqlitecpp-dev
  libboost-json1.81-dev libboost-test1.81-dev
  libboost-program-options1.81-dev
  kcat
  python3-kafka  # kafka-python: the crash tests' independent consumer
)
# Node.js: the machine's own when it has one (it may come from another
# source than Debian's), Debian's otherwise.
command -v node >/dev/null && command -v npm >/dev/null ||
  packages+=(nodejs npm)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
      grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
fi

# The Node.js consumer that checks our events with the official CloudEvents
# SDK; its versions are pinned in tests/node/package.json.
if [ -f tests/node/package.json ] && [ ! -d tests/node/node_modules ]; then
  echo "installing Node.js packages for tests/node"
  (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
