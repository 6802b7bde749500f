#!/usr/bin/env bash
# A start must not need one lucky read.  Against a source failing 30 %
# of its reads, every one of 8 starts (fresh ones and restarts after a
# SIGKILL) succeeds: the fingerprint's reads are retried with backoff
# (before, 3-5 of 10 starts failed).  Against a source slower than
# shadow-timeout the start succeeds too: a late answer is waited for
# instead of being thrown away and asked again (before, such a source
# could never start).
source ./functions.sh
requires nbdinfo --version

for i in $(seq 8); do
    # A fresh source each time: nbdkit 1.32 may abort when its client
    # (the filter, killed below) goes away with replies in flight.
    [ $i -eq 1 ] || stop_server bad KILL
    start_server bad --filter=error pattern 16M error-pread-rate=0.3 error=EIO
    case $i in
        1|5) rm -f "$tmpdir/sh.img" "$tmpdir/sh.state" ;;   # fresh starts
    esac
    rm -f "$tmpdir/sh.log"
    start_shadow sh bad shadow-policy=none ||
        { echo "FAIL: start $i against the failing source"; exit 1; }
    size=$(nbdinfo --size "$(uri sh)") ||
        { echo "FAIL: start $i against the failing source did not serve"; exit 1; }
    test "$size" -eq $((16 << 20))
    stop_server sh KILL
done
echo "8 of 8 starts against a source failing 30 % of reads"

start_server slow --filter=delay pattern 16M rdelay=500ms
rm -f "$tmpdir/sh.img" "$tmpdir/sh.state" "$tmpdir/sh.log"
start_shadow sh slow shadow-policy=none shadow-timeout=0.3 ||
    { echo "FAIL: no start against a source slower than shadow-timeout"; exit 1; }
for _ in $(seq 300); do
    [ -s "$tmpdir/sh.state" ] && break
    sleep 0.1
done
size=$(nbdinfo --size "$(uri sh)") ||
    { echo "FAIL: the start against the slow source did not serve"; exit 1; }
test "$size" -eq $((16 << 20))
stop_server sh
start_shadow sh slow shadow-policy=none shadow-timeout=0.3 ||
    { echo "FAIL: no restart against a source slower than shadow-timeout"; exit 1; }
echo OK
