#!/usr/bin/env bash
# A local Redis Cluster of 3 masters: three filters, given the same node,
# with volume ids whose slots are on three different masters, all report
# through it (each volume's keys land on the master owning its slot) and
# all take commands; the CLI's blocking client reads every volume
# through that one node too.  hiredis has no cluster support: this is
# metastore following MOVED itself.
source ./functions.sh
source ./redis-functions.sh

start_cluster 3
set -- $cluster_ports
seed=tcp:127.0.0.1:$1

# owner ID: the port of the master whose slots hold volume ID's keys.
owner ()
{
    local slot
    slot=$(redis-cli -p $1 CLUSTER KEYSLOT "nbdshadow:{$2}:info")
    redis-cli -p $1 CLUSTER NODES | awk -v s=$slot '
        $3 ~ /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-");
            if (r[2] == "") r[2] = r[1];
            if (s >= r[1] && s <= r[2]) { split($2, a, "[:@]"); print a[2] } } }'
}

# Three ids, one per master, none on the seed node but one.
ids="" seen=""
for i in $(seq 0 200); do
    p=$(owner $1 vol$i)
    case " $seen " in *" $p "*) continue ;; esac
    seen="$seen $p"; ids="$ids vol$i"; eval "port_vol$i=$p"
    [ $(echo $ids | wc -w) -eq 3 ] && break
done
echo "volumes:$ids on ports:$seen"
test $(echo $ids | wc -w) -eq 3

head -c $((8 * 1024 * 1024)) /dev/urandom > "$tmpdir/src.img"
start_server src -r file "$tmpdir/src.img"
for id in $ids; do
    start_shadow $id src shadow-redis=$seed shadow-id=$id \
        shadow-policy=sequential shadow-bandwidth=512K
done

for id in $ids; do
    eval "p=\$port_$id"
    # On its own master (no redirect from redis-cli: plain -p).
    for _ in $(seq 50); do
        [ "$(redis-cli -p $p HGET "nbdshadow:{$id}:info" id)" = $id ] && break
        sleep 0.1
    done
    [ "$(redis-cli -p $p HGET "nbdshadow:{$id}:info" id)" = $id ] ||
        { echo "volume $id never reported to its master (port $p)"; exit 1; }
    test "$(redis-cli -p $p HGET "nbdshadow:{$id}:progress" blocks_total)" -eq 128
    # Through the seed, with metastore's blocking client.
    test "$("$PROBE" $seed HGET "nbdshadow:{$id}:info" id)" = $id
    redis-cli -c -p $1 XADD "nbdshadow:{$id}:commands" '*' cmd pause cid c-$id >/dev/null
done
for id in $ids; do
    eval "p=\$port_$id"
    for _ in $(seq 30); do
        [ "$(redis-cli -p $p HGET "nbdshadow:{$id}:acks" c-$id)" = ok ] && break
        sleep 0.1
    done
    test "$(redis-cli -p $p HGET "nbdshadow:{$id}:acks" c-$id)" = ok
    wait_json "$tmpdir/$id.json" paused true 2
done
test "$("$PROBE" $seed SMEMBERS nbdshadow:volumes | sort | tr '\n' ' ')" = \
     "$(echo $ids | tr ' ' '\n' | sort | tr '\n' ' ')"
