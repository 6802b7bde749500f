#!/usr/bin/env bash
# SIGTERM stops the filter promptly even while a guest read waits on a
# source that is gone (killed: the engine is reconnecting) or hangs
# (stopped: connected, never answering).  Before, nbdkit waited out the
# whole shadow-timeout (30 s by default).  What was flushed survives.
source ./functions.sh
requires nbdsh --version

# stop_while_waiting HOW: HOW is kill or hang.
stop_while_waiting ()
{
    local t0 ms reader
    start_server src pattern 16M
    start_shadow sh src shadow-policy=none
    nbdsh -u "$(uri sh)" -c '
h.pwrite(b"flushed", 4096)
h.flush()'
    if [ $1 = kill ]; then stop_server src KILL; else kill -STOP $pid_src; fi
    nbdsh -u "$(uri sh)" -c 'h.pread(4096, 8 << 20)' > "$tmpdir/read.out" 2>&1 &
    reader=$!
    sleep 1
    kill -0 $reader             # the read is waiting on the source

    t0=$(date +%s%N)
    kill -TERM $pid_sh
    # The waiting read fails at once, and nbdkit exits.
    for _ in $(seq 400); do kill -0 $reader 2>/dev/null || break; sleep 0.1; done
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "source $1: the waiting read ended $ms ms after SIGTERM"
    if kill -0 $reader 2>/dev/null || [ $ms -gt 5000 ]; then
        echo "FAIL: SIGTERM waited for the source ($1, $ms ms)"; exit 1
    fi
    wait $reader 2>/dev/null || :
    for _ in $(seq 400); do kill -0 $pid_sh 2>/dev/null || break; sleep 0.1; done
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "source $1: nbdkit stopped $ms ms after SIGTERM"
    if kill -0 $pid_sh 2>/dev/null || [ $ms -gt 5000 ]; then
        echo "FAIL: SIGTERM waited for the source ($1, $ms ms)"; exit 1
    fi
    # nbdkit 1.32 may abort when its client (the filter) goes away with
    # a reply in flight: a fresh source for the restart.
    [ $1 = kill ] || { kill -CONT $pid_src; stop_server src KILL; }
    start_server src pattern 16M
    start_shadow sh src shadow-policy=none
    nbdsh -u "$(uri sh)" -c 'assert h.pread(7, 4096) == b"flushed"'
    stop_server sh
    stop_server src
    rm -f "$tmpdir/sh.img" "$tmpdir/sh.state"
}

stop_while_waiting kill
stop_while_waiting hang
echo OK
