#!/usr/bin/env bash
# The predictor in the filter: the background copy follows the policy's
# order (the model's history for first-access and predict, ascending for
# sequential), predict adapts to a stall at once, and shadow-record
# writes what the guest did as a trace that trains the next model.  The
# data ends up equal to the source plus the guest's writes.
source ./functions.sh
requires qemu-io --version
requires qemu-img --version

# A history of 3 passes over blocks 600..699 in a scrambled order.
awk 'BEGIN { print "ts_us,op,offset,length"
    for (p = 0; p < 3; p++) for (i = 0; i < 100; i++)
        printf "%d,R,%d,65536\n", (p * 100 + i + 1) * 10000, (600 + i * 37 % 100) * 65536 }' \
    > "$tmpdir/history.csv"
"$NBDSHADOW" train --trace "$tmpdir/history.csv" -o "$tmpdir/model" > /dev/null

# The first 100 pulls the policy chose.  The source is slow enough
# (5 MB/s) that they are all chosen before the copy ends.  Each shadow
# gets a source of its own: nbdkit 1.32 may abort when a client goes
# away with replies in flight, as these shadows do when stopped.
shadow_opts="-v -D shadow.fetch=1"
slow_source () { start_server "${1}_src" --filter=rate pattern 64M rate=40M; }

pulls ()
{
    sed -n 's/.*pull block \([0-9]*\) started/\1/p' "$tmpdir/$1.log"
}

first_pulls ()
{
    local name="$1"; shift
    slow_source "$name"
    start_shadow "$name" "${name}_src" shadow-model="$tmpdir/model" "$@"
    for _ in $(seq 100); do
        [ "$(pulls "$name" | wc -l)" -ge 100 ] && break
        sleep 0.1
    done
    stop_server "$name"
    pulls "$name" | head -100 > "$tmpdir/$name.pulls"
    echo "$name: $(tr '\n' ' ' < "$tmpdir/$name.pulls")"
    test "$(wc -l < "$tmpdir/$name.pulls")" -eq 100
}

# The fingerprint's samples (every 64th block of 64M, and the last) are
# local before the copy starts: the pulls pass them by.
not_sample () { awk '$1 % 64 != 0 && $1 != 1023'; }

first_pulls seq shadow-policy=sequential
seq 0 199 | not_sample | head -100 | cmp - "$tmpdir/seq.pulls"

first_pulls fa shadow-policy=first-access
{ sed 1d "$tmpdir/history.csv" | head -100 | awk -F, '{ print $3 / 65536 }'
  seq 0 199; } | not_sample | head -100 | cmp - "$tmpdir/fa.pulls"

first_pulls pred                # predict: the default with a model
test "$(json_get "$tmpdir/pred.json" policy)" = predict
# The history's 100 blocks but 640 (a sample) first.
head -99 "$tmpdir/pred.pulls" |
    awk '$1 < 600 || $1 > 699 { bad++ } END { exit bad > 0 }'

# Online: a stall at block 300 (never in the history) makes predict
# pull its neighbours next; first-access goes on with its list.  The
# pulls counted are those started after the filter got the guest's read
# (nbdkit -v logs the call); the demand fetch itself may end after them.
stall_offset=$((300 * 65536 + 4096))
adapts ()
{
    local name="$1" policy="$2" since="shadow: pread count=4096 offset=$stall_offset\$"
    slow_source "$name"
    start_shadow "$name" "${name}_src" shadow-model="$tmpdir/model" shadow-policy="$policy"
    sleep 0.5
    qemu-io -f raw -c "read $stall_offset 4096" "$(uri "$name")" > /dev/null
    for _ in $(seq 50); do
        [ "$(sed -n "/$since/,\$p" "$tmpdir/$name.log" |
             grep -c 'pull block')" -ge 8 ] && break
        sleep 0.1
    done
    stop_server "$name"
    sed -n "/$since/,\$p" "$tmpdir/$name.log" |
        sed -n 's/.*pull block \([0-9]*\) started/\1/p' | head -8 > "$tmpdir/$name.after"
    echo "$name: after the stall at 300: $(tr '\n' ' ' < "$tmpdir/$name.after")"
    test "$(json_get "$tmpdir/$name.json" stalls)" -eq 1
    test "$(wc -l < "$tmpdir/$name.after")" -eq 8
}
adapts online predict
grep -qx 301 "$tmpdir/online.after"
adapts fixed first-access
! grep -qx 301 "$tmpdir/fixed.after"

# Recording, and the data: a guest doing every kind of request while
# the copy runs, then the result against the source plus its writes.
start_server src --filter=rate pattern 64M rate=200M
guest=(-c "read 0 4096" -c "write -P 17 1M 64k" -c "read 1048576 65536"
       -c "discard 2M 128k" -c "write -z 3M 8k" -c "write -P 18 5000 1000"
       -c "flush" -c "read 40M 1M")
shadow_opts=""
start_shadow rec src shadow-model="$tmpdir/model" shadow-record="$tmpdir/rec.csv"
qemu-io -f raw "${guest[@]}" "$(uri rec)" > /dev/null
wait_json "$tmpdir/rec.json" state complete 60
stop_server rec
cat "$tmpdir/rec.csv"
test "$(json_get "$tmpdir/rec.json" recorded)" -eq "$(($(wc -l < "$tmpdir/rec.csv") - 1))"
# The guest's requests, in order (qemu-io may read block 0 first, and
# flushes when it exits).
cut -d, -f2- "$tmpdir/rec.csv" | grep -v '^R,0,' > "$tmpdir/ops"
cat > "$tmpdir/ops.expected" <<EOF
op,offset,length
W,1048576,65536
R,1048576,65536
T,2097152,131072
Z,3145728,8192
W,5000,1000
F,0,0
R,41943040,1048576
F,0,0
EOF
diff -u "$tmpdir/ops.expected" "$tmpdir/ops"
# Time stamps in order; the trace feeds the next training.
cut -d, -f1 "$tmpdir/rec.csv" | sed 1d | sort -c -n
"$NBDSHADOW" import --format csv "$tmpdir/rec.csv" -o "$tmpdir/rec.canon.csv"
"$NBDSHADOW" train --trace "$tmpdir/rec.csv" -o "$tmpdir/next.model" > /dev/null

# A restart appends (after switchover nothing more is recorded).
lines=$(wc -l < "$tmpdir/rec.csv")
start_shadow rec src shadow-model="$tmpdir/model" shadow-record="$tmpdir/rec.csv"
qemu-io -f raw -c "read 0 4096" "$(uri rec)" > /dev/null
stop_server rec
test "$(grep -c ts_us "$tmpdir/rec.csv")" -eq 1
test "$(wc -l < "$tmpdir/rec.csv")" -eq "$lines"

nbdcopy "$(uri src)" "$tmpdir/expected.img"
qemu-io -f raw "${guest[@]}" "$tmpdir/expected.img" > /dev/null
start_shadow rec src shadow-model="$tmpdir/model"
qemu-img compare -f raw -F raw "$(uri rec)" "$tmpdir/expected.img"
