#!/usr/bin/env bash
# Record paired guest traces: each workload runs twice, each time on a
# fresh copy of the guest disk, served by nbdkit's file plugin behind its
# log filter (the server sees every request QEMU sends, and QEMU is its
# only client); `nbdshadow import --format nbdkit-log` turns each log into
# the canonical trace CSV.
#
#   tests/e2e/record-traces.sh OUTDIR [WORKLOAD...]
#
# writes OUTDIR/e2e-WORKLOAD-run1.csv and -run2.csv (default workloads:
# boot build sqlite unpack scan) and prints one line per trace.
set -euo pipefail

top="$(cd "$(dirname "$0")/../.." && pwd)"
NBDSHADOW="${NBDSHADOW:-$top/cli/nbdshadow}"
PATH="/usr/bin:$PATH"
out="$1"; shift
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(boot build sqlite unpack scan)
mkdir -p "$out"

tmpdir="$(mktemp -d /var/tmp/nbdshadow-record.XXXXXX)"
_pids=""
cleanup () { for p in $_pids; do kill "$p" 2>/dev/null || :; done; wait; rm -rf "$tmpdir"; }
trap cleanup EXIT INT TERM
. "$top/tests/e2e/e2e-lib.sh"
e2e_image

for w in "${workloads[@]}"; do
    for run in 1 2; do
        name="$w-run$run"
        e2e_fresh_disk "$tmpdir/$name.img"
        nbdkit -f -U "$tmpdir/$name.sock" -P "$tmpdir/$name.pid" --filter=log \
            file "$tmpdir/$name.img" logfile="$tmpdir/$name.log" &
        _pids="$_pids $!"
        for _ in $(seq 100); do [ -s "$tmpdir/$name.pid" ] && break; sleep 0.1; done
        e2e_boot "$name" "nbd:unix:$tmpdir/$name.sock" "$w"
        e2e_wait "$name"
        e2e_check_console "$name"
        kill "$(cat "$tmpdir/$name.pid")"
        "$NBDSHADOW" import --format nbdkit-log "$tmpdir/$name.log" -o "$out/e2e-$name.csv"
        echo "$name requests=$(($(wc -l < "$out/e2e-$name.csv") - 1))" \
             "multi-user=$(e2e_mark "$name" multi-user)s" \
             "workload-done=$(e2e_mark "$name" workload-done)s"
        rm -f "$tmpdir/$name.img" "$tmpdir/$name.log"
    done
done
