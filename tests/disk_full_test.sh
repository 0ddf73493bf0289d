#!/usr/bin/env bash
# Runs tests/disk_full_test.py with Debian's Python 3 (it has python3-kafka,
# the consumer independent of librdkafka) inside a private mount namespace,
# so that the small tmpfs the test mounts is seen by no other process and
# disappears with the test, even if it dies. Fails, never skips, when the
# namespace cannot be made. The arguments name the binaries by their
# runfiles paths; see tests/BUILD.
set -euo pipefail
outer_ns=$(readlink /proc/self/ns/mnt)
if ! error=$(unshare --mount --propagation private true 2>&1); then
  echo "disk_full_test: FAILED: cannot make a private mount namespace" \
    "(unshare --mount --propagation private): ${error}"
  echo "disk_full_test: the test mounts a small tmpfs to fill a real file" \
    "system; it needs root (CAP_SYS_ADMIN)"
  exit 1
fi
exec unshare --mount --propagation private \
  /usr/bin/python3 tests/disk_full_test.py --outer-mount-ns="${outer_ns}" "$@"
