#!/usr/bin/env bash
# Fault injection: a client dies (SIGKILL) with 64 reads in flight, as a
# crashing backup tool would.  nbdkit 1.32.4 and 1.32.5 abort then
# (connections.c: raw_send_socket: Assertion 'sock >= 0'; fixed in nbdkit
# 1.33.10 / 1.34), taking the VM's disk with them.  The documented
# configurations must survive every round: nbdkit -t 1, or such clients
# served by a serial nbdkit in front (nbdkit -t 1 nbd socket=...) while
# the VM keeps the parallel export.  After all that the shadow is intact.
source ./functions.sh
requires nbdcopy --version
requires qemu-img --version

rounds=${FAULT_CLIENT_ROUNDS:-6}
start_server src pattern 256M
start_shadow sh src shadow-policy=sequential
wait_json "$tmpdir/sh.json" state complete 60
stop_server sh

# kill_clients NAME URI: $rounds clients killed mid-copy; sets $died to
# how many times server NAME died (and was started again).
kill_clients ()
{
    local name=$1 u=$2 c p
    died=0
    for r in $(seq $rounds); do
        nbdcopy --requests=64 "$u" null: &
        c=$!
        sleep 0.0$((2 + RANDOM % 8))
        kill -9 $c 2>/dev/null || :; wait $c 2>/dev/null || :
        sleep 0.3
        eval "p=\$pid_$name"
        if ! kill -0 $p 2>/dev/null; then
            died=$((died + 1))
            # Until the dead one (dumping core) lets go of the lock.
            for _ in $(seq 50); do
                start_server $name "${server_args[@]}" >/dev/null && break
                sleep 0.2
            done
        fi
    done
}

echo "== the default configuration (not asserted: the nbdkit bug)"
server_args=(--filter="$FILTER" nbd socket="$tmpdir/src.sock"
             shadow-file="$tmpdir/sh.img" shadow-state="$tmpdir/sh.state")
start_server v "${server_args[@]}"
kill_clients v "$(uri v)"
echo "aborted in $died of $rounds rounds"
stop_server v

echo "== nbdkit -t 1"
server_args=(-t 1 "${server_args[@]}")
start_server v "${server_args[@]}"
kill_clients v "$(uri v)"
echo "aborted in $died of $rounds rounds"
test "$died" -eq 0
stop_server v

echo "== a serial nbdkit in front of the dying clients"
server_args=("${server_args[@]:2}")
start_server v "${server_args[@]}"
server_args=(-t 1 nbd socket="$tmpdir/v.sock")
start_server front "${server_args[@]}"
kill_clients front "$(uri front)"
kill -0 $pid_v || { echo "FAIL: the shadow's nbdkit died behind the front"; exit 1; }
echo "the front died in $died of $rounds rounds, the shadow's nbdkit never"
test "$died" -eq 0
stop_server front
stop_server v

qemu-img compare -f raw -F raw "$tmpdir/sh.img" "$(uri src)"
echo OK
