#!/bin/sh -
# The quick-start demo (scripts/demo.sh, what `scripts/quickstart.sh demo`
# runs) goes through the operator's flow and ends verified: migrate with
# a model trained on the bundled trace, status while the guest runs,
# verify at the end.  Shortened: the guest's half of the trace in 5 s.
. ./functions.sh

requires qemu-io --version
out="$tmpdir/demo.out"
# migrate starts the wrapper of functions.sh (it preloads ASan for a
# sanitizer build); demo.sh puts /usr/bin first on its PATH.
if ! NBDSHADOW_NBDKIT="$tmpdir/bin/nbdkit" DEMO_GUEST_SECONDS=5 \
    bash "$abs_top_srcdir/scripts/demo.sh" > "$out" 2>&1; then
    cat "$out"; exit 1
fi
cat "$out"
grep -q '^== nbdshadow migrate: train on the first half' "$out"
grep -q '^trained on [0-9]* requests' "$out"
grep -q '^the VM.s disk: nbd+unix:///?socket=.*/vols/demo.sock$' "$out"
grep -q '^== nbdshadow status demo --watch' "$out"
# status: the volume's line while copying, then the table once complete.
grep -q '^demo copying [0-9.]*% [0-9]*/[0-9]* blocks' "$out"
grep -q '^demo  *complete  *100.0% ' "$out"
grep -q '^identical: ' "$out"
grep -q '^== demo complete' "$out"
