#!/usr/bin/env bash
# Checks of the repository's text that the compiler cannot make: committed merge-conflict
# markers, and citations of design documents that are not part of the repository (cite
# the RFC, or write the rule into README.md or docs/). Run by .ci/run before the build
# and by tests/repository.rs under `cargo test`. Prints what it found; exit 1 if anything.
set -uo pipefail
cd "$(dirname "$0")/.."

found=0
report() {
    if [ -n "$2" ]; then
        printf '%s\n%s\n' "$1" "$2" >&2
        found=1
    fi
}
# A line that is exactly a conflict marker (git writes "<<<<<<< ours", "=======",
# ">>>>>>> theirs"). Binary files are skipped by git grep -I.
report "merge-conflict markers committed:" \
    "$(git grep -I -nE '^(<{7}( .*)?|={7}|>{7}( .*)?)$' -- . ':!.ci/check-tree.sh')"
report "citations of a design file that is not in the repository:" \
    "$(git grep -I -nE 'DESIGN(\.md)? ?§|shared/DESIGN' -- . ':!.ci/check-tree.sh')"
exit "$found"
