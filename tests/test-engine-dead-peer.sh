#!/usr/bin/env bash
# A source host that drops off the network without a word (a crash, a
# cut link: no reset, no FIN).  The engine must give its TCP connection
# up after shadow-timeout unacknowledged (5 s at least), not after the
# kernel's quarter of an hour of retransmissions, reconnect once a
# source answers at that address again, and complete the copy with the
# right bytes.  The source runs in a network namespace of its own behind
# a veth pair; a tbf qdisc on its side with a burst smaller than any
# packet loses everything it sends, so the engine's side sees a remote
# black hole (a qdisc on the engine's own side would fail its sends at
# once, which the kernel gives up on within seconds anyway).
if [ -z "${NBDSHADOW_NETNS:-}" ]; then
    if unshare -n true 2>/dev/null && command -v tc >/dev/null &&
       ip netns list >/dev/null 2>&1; then
        NBDSHADOW_NETNS=1 exec unshare -n "$BASH" "$0" "$@"
    fi
    echo "$0: test skipped because network namespaces or tc are not available"
    exit 77
fi
source ./functions.sh
requires nbdsh --version

ns=nbdshadow-src-$$
ip netns add $ns
trap 'r=$?; ip netns del '$ns' 2>/dev/null || :; set +e; (exit $r); cleanup' \
    INT QUIT TERM EXIT
in_src () { ip netns exec $ns "$@"; }
ip link add veth-dst type veth peer name veth-src netns $ns
ip addr add 10.77.0.1/24 dev veth-dst
ip link set veth-dst up
in_src ip addr add 10.77.0.2/24 dev veth-src
in_src ip link set veth-src up

# start_source: nbdkit's file plugin on 10.77.0.2, in the source's
# namespace; $src_pid is its pid.
start_source ()
{
    rm -f "$tmpdir/src.pid"
    in_src /usr/bin/nbdkit -f -P "$tmpdir/src.pid" -i 10.77.0.2 -p 10809 \
        file "$tmpdir/src.img" >>"$tmpdir/src.log" 2>&1 &
    _pids="$_pids $!"
    for _ in $(seq 100); do [ -s "$tmpdir/src.pid" ] && break; sleep 0.1; done
    src_pid=$(cat "$tmpdir/src.pid")
    _pids="$src_pid $_pids"
}

head -c 32M /dev/urandom > "$tmpdir/src.img"
start_source
shadow_source="hostname=10.77.0.2 port=10809" \
    start_shadow sh src shadow-policy=sequential shadow-bandwidth=2M \
    shadow-timeout=2
wait_json "$tmpdir/sh.json" source connected 10
sleep 1

# The host goes away: whatever it sends is lost.
in_src tc qdisc add dev veth-src root tbf rate 1kbit burst 10 limit 10
start=$(date +%s)
for _ in $(seq 150); do
    grep -q "lost connection .*timed out" "$tmpdir/sh.log" && break
    sleep 0.1
done
grep "lost connection" "$tmpdir/sh.log" || :
echo "given up after about $(( $(date +%s) - start )) s of silence"
grep -q "lost connection .*timed out" "$tmpdir/sh.log"

# Another source process at that address, then the network is back.
kill -9 "$src_pid"
start_source
in_src tc qdisc del dev veth-src root
wait_json "$tmpdir/sh.json" state complete 60
test "$(json_get "$tmpdir/sh.json" reconnects)" -ge 1
cmp "$tmpdir/sh.img" "$tmpdir/src.img"
echo OK
