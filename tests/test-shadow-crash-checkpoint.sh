#!/usr/bin/env bash
# Crash consistency, the deterministic case: a partial block (the guest
# wrote one sector of it) that a fetch completes while a checkpoint runs
# must survive a SIGKILL right after that checkpoint.  The checkpoint
# takes two snapshots, the partial blocks' sector masks and the bitmap;
# the debug flag shadow.checkpoint_pause_ms holds it between them while
# a read completes the block.  Taken the other way round the snapshots
# missed such a block, and after the crash it was fetched again over the
# guest's flushed sector.
source ./functions.sh
requires nbdsh --version

start_server src pattern 16M
shadow_opts="-v -D shadow.fetch=1"

# Run 1: write a sector of block 0, flush, and while the flush's
# checkpoint pauses, read another sector of block 0 (a demand fetch
# completes it).  Killed as soon as the flush returns: the next periodic
# checkpoint is still in its own pause then.  The read waits for the
# pause to show in the log (a fixed sleep missed it on a loaded machine).
shadow_opts="$shadow_opts -D shadow.checkpoint_pause_ms=1500" \
    start_shadow sh src shadow-block-size=64K shadow-policy=none
nbdsh -u "$(uri sh)" -c "
import os, signal, time
def pauses():
    with open('$tmpdir/sh.log', errors='replace') as f:
        return f.read().count('checkpoint: pausing')
h.pwrite(b'\xaa' * 512, 0)
before = pauses()
flush = h.aio_flush()
deadline = time.monotonic() + 20
while pauses() == before and time.monotonic() < deadline:
    time.sleep(0.01)
h.pread(512, 4096)
while not h.aio_command_completed(flush):
    h.poll(-1)
os.kill($pid_sh, signal.SIGKILL)
"
stop_server sh KILL

# The read's fetch must have landed inside a checkpoint's pause, or this
# run proved nothing.
awk '/checkpoint: pausing/ { paused = 1 }
     paused && /fetch block 0( |$)/ { found = 1 }
     END { exit !found }' "$tmpdir/sh.log" || {
    echo "$0: block 0 was not fetched during a checkpoint:"
    cat "$tmpdir/sh.log"; exit 1; }

# Run 2: the guest's sector and the fetched rest are both there, and
# block 0 is not fetched again.
mv "$tmpdir/sh.log" "$tmpdir/sh1.log"
start_shadow sh src shadow-block-size=64K shadow-policy=none
nbdsh -u "$(uri sh)" -c "
import sys
got = h.pread(8192, 0)
# nbdkit-pattern-plugin: each 8-byte word holds its own offset, big-endian.
want = b'\xaa' * 512 + b''.join(o.to_bytes(8, 'big') for o in range(512, 8192, 8))
if got != want:
    print('block 0 after the crash: first mismatch at byte',
          next(i for i in range(8192) if got[i] != want[i]))
    sys.exit(1)
"
if grep -Eq "fetch block 0( |$)" "$tmpdir/sh.log"; then
    echo "$0: block 0 was fetched again after the crash"; exit 1
fi
