#!/usr/bin/env bash
# Former name of tests/kernel/harness.sh (same options).
set -euo pipefail
exec "$(dirname "$0")/harness.sh" "$@"
