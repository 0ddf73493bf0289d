#!/usr/bin/env bash
# Runs tests/crash_test.py with Debian's Python 3, which has python3-kafka
# (kafka-python), the consumer independent of librdkafka. The arguments name
# the binaries by their runfiles paths; see tests/BUILD.
set -euo pipefail
exec /usr/bin/python3 tests/crash_test.py "$@"
