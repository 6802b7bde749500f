#!/bin/sh -
# shadow-record records the guest only: with shadow-guest-export=guest,
# the requests of a client that connects with export name "guest" (as
# QEMU's nbd drive does with exportname=guest) are recorded, a backup
# copying the whole disk meanwhile with nbdcopy (default export name) is
# not.  shadow-record-after keeps recording for that long after
# switchover (without it, recording stops there); shadow-record-max
# bounds the file.
. ./functions.sh
requires qemu-io --version
requires nbdcopy --version

guest_read ()   # NAME OFFSET: one 4K read by the guest
{
    qemu-io -f raw -r -c "read $2 4k" \
        "nbd+unix:///guest?socket=$tmpdir/$1.sock" > /dev/null
}
reads_of ()     # CSV: its requests without the time
{
    tail -n +2 "$1" | cut -d, -f2-
}

start_server src -r pattern 16M
start_shadow rec src shadow-policy=none shadow-record="$tmpdir/rec.csv" \
    shadow-guest-export=guest shadow-record-after=600
guest_read rec 0
nbdcopy "$(uri rec)" null:            # the backup reads every block
wait_json "$tmpdir/rec.json" state complete
guest_read rec 1M                     # after switchover: still recorded
stop_server rec
printf 'R,0,4096\nR,1048576,4096\n' > "$tmpdir/expected"
if ! reads_of "$tmpdir/rec.csv" | cmp -s - "$tmpdir/expected"; then
    echo "$0: recorded other than the guest's two reads:"
    reads_of "$tmpdir/rec.csv" | head; exit 1
fi

# Without shadow-record-after, recording ends at switchover.
start_shadow cut src shadow-policy=none shadow-record="$tmpdir/cut.csv" \
    shadow-guest-export=guest
guest_read cut 0
nbdcopy "$(uri cut)" null:
wait_json "$tmpdir/cut.json" state complete
guest_read cut 1M
stop_server cut
printf 'R,0,4096\n' > "$tmpdir/expected"
reads_of "$tmpdir/cut.csv" | cmp - "$tmpdir/expected"

# A size bound holds whole lines, and stops the recording there.
start_shadow max src shadow-policy=none shadow-record="$tmpdir/max.csv" \
    shadow-record-max=100
for off in 0 64k 128k 192k 256k; do guest_read max $off; done
stop_server max
size=$(stat -c %s "$tmpdir/max.csv")
[ "$size" -le 100 ] || { echo "$0: shadow-record-max=100, file of $size bytes"; exit 1; }
[ "$(tail -c 1 "$tmpdir/max.csv" | od -An -c | tr -d ' ')" = '\n' ]
[ "$(reads_of "$tmpdir/max.csv" | wc -l)" -ge 1 ]
