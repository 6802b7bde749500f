# Redis helpers for the metastore tests (sourced after functions.sh):
# redis-server instances in $tmpdir, killed on exit with the others.

requires redis-server --version
requires redis-cli --version
PROBE="$abs_top_builddir/tests/metastore-probe"

# start_redis NAME [redis-server args...]: a redis-server on the unix
# socket $tmpdir/NAME.redis (no TCP port, no persistence); sets
# $pid_NAME.  Start it again with the same NAME after stop_server.
start_redis ()
{
    local name="$1" sock; shift
    sock="$tmpdir/$name.redis"
    rm -f "$sock"
    redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
        --save '' --appendonly no --dir "$tmpdir" \
        --logfile "$tmpdir/$name.redis.log" "$@" &
    eval "pid_$name=$!"
    _pids="$! $_pids"
    for _ in $(seq 100); do
        if redis-cli -s "$sock" PING 2>/dev/null | grep -q -e PONG -e NOAUTH; then
            return 0
        fi
        sleep 0.05
    done
    echo "$0: redis $name did not start"; cat "$tmpdir/$name.redis.log"
    return 1
}

# rcli NAME ARGS...: redis-cli on redis NAME's socket.
rcli () { local name="$1"; shift; redis-cli -s "$tmpdir/$name.redis" "$@"; }

# free_ports N: N free TCP ports on 127.0.0.1 (and their cluster bus
# ports, +10000), held by nobody once printed.
free_ports ()
{
    python3 - "$1" <<'PY'
import socket, sys
n, found, held = int(sys.argv[1]), [], []
while len(found) < n:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    held.append(s)
    if port + 10000 > 65535: continue
    b = socket.socket()
    try: b.bind(("127.0.0.1", port + 10000))
    except OSError: continue
    held.append(b); found.append(port)
print(" ".join(map(str, found)))
PY
}

# start_cluster N: N masters of a Redis Cluster on free ports; sets
# $cluster_ports.
start_cluster ()
{
    local i=0 port nodes=""
    cluster_ports="$(free_ports "$1")"
    for port in $cluster_ports; do
        i=$((i + 1))
        mkdir -p "$tmpdir/cluster$i"
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$tmpdir/cluster$i/nodes.conf" \
            --dir "$tmpdir/cluster$i" --save '' --appendonly no \
            --logfile "$tmpdir/cluster$i/log" &
        _pids="$! $_pids"
        nodes="$nodes 127.0.0.1:$port"
    done
    for port in $cluster_ports; do
        for _ in $(seq 100); do
            redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
            sleep 0.05
        done
    done
    redis-cli --cluster create $nodes --cluster-yes >"$tmpdir/cluster-create.log" 2>&1
    for port in $cluster_ports; do
        for _ in $(seq 100); do
            redis-cli -p "$port" CLUSTER INFO | grep -q cluster_state:ok && break
            sleep 0.1
        done
    done
}

# wait_rcli NAME EXPECTED SECONDS ARGS...: wait until `rcli NAME ARGS`
# prints EXPECTED; fails, showing what it printed, if it never does.
wait_rcli ()
{
    local name="$1" want="$2" secs="$3" got=""; shift 3
    for _ in $(seq $((secs * 10))); do
        got="$(rcli "$name" "$@" 2>&1)" || :
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    echo "$0: redis $name: $* is '$got', not '$want'"
    return 1
}

# pulled_at NAME ID: "BYTES_PULLED UPDATED_US" of one mirror update of
# migration ID (one HMGET: two HGETs could straddle an update), to time
# a pull rate on the mirror's own clock.
pulled_at ()
{
    rcli "$1" HMGET "nbdshadow:{$2}:progress" bytes_pulled updated_us | tr '\n' ' '
}

# send_command NAME ID CID CMD [RATE]: an operator's command, as the CLI
# sends it.
send_command ()
{
    if [ $# -gt 4 ]; then
        rcli "$1" XADD "nbdshadow:{$2}:commands" '*' cmd "$4" rate "$5" cid "$3" >/dev/null
    else
        rcli "$1" XADD "nbdshadow:{$2}:commands" '*' cmd "$4" cid "$3" >/dev/null
    fi
}

# start_source_and_redis SIZE: a random source disk of SIZE bytes served
# as "src" ($tmpdir/src.img), and redis "r"; sets $size and $nblocks
# (64K blocks).
start_source_and_redis ()
{
    size=$1
    nblocks=$((size / 65536))
    head -c $size /dev/urandom > "$tmpdir/src.img"
    start_server src -r file "$tmpdir/src.img"
    start_redis r
}

# start_mirrored NAME ID [PARAM=VALUE...]: the shadow filter NAME over
# "src" mirrored into redis "r" as volume ID; returns once its info is
# there.  Sets $json to its stats file.
start_mirrored ()
{
    local name="$1" id="$2"; shift 2
    start_shadow "$name" src shadow-redis=unix:$tmpdir/r.redis shadow-id="$id" "$@"
    json="$tmpdir/$name.json"
    wait_rcli r copying 5 HGET "nbdshadow:{$id}:info" state
}
