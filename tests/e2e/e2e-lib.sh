# Shared helpers of the e2e tests and benchmarks (sourced, never run):
# the cached guest image, booting it in QEMU with a time-stamped serial
# console, and reading its phase markers.  Expects $tmpdir (a private temp
# dir) and $_pids (pids killed on exit) from tests/functions.sh or the
# sourcing script.

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
E2E_MEMORY="${E2E_MEMORY:-512}"
E2E_BOOT_TIMEOUT="${E2E_BOOT_TIMEOUT:-600}"
# E2E_ICOUNT: QEMU's -icount argument (e.g. shift=1,sleep=on), empty for
# none.  With a fixed shift the guest's clock advances by its instruction
# count while it computes and by real time while it idles (waiting for
# its disk), so guest times to markers do not follow the host CPU that
# QEMU gets; see docs/BENCHMARKS.md, section 6.
E2E_ICOUNT="${E2E_ICOUNT:-}"

# e2e_image: build the guest once per machine (cached); sets $e2e_image_dir
# (holding disk.img, vmlinuz, initrd.img).
e2e_image ()
{
    e2e_image_dir="$("$e2e_dir/build-image.sh")"
}

# e2e_fresh_disk FILE: a fresh sparse copy of the guest disk, on stable
# storage as a disk that has been in use is: otherwise the guest's first
# flush waits for the whole copy to be written out.
e2e_fresh_disk ()
{
    cp --sparse=always "$e2e_image_dir/disk.img" "$1"
    sync "$1"
}

# e2e_boot NAME DISK WORKLOAD: start QEMU in the background, booting the
# guest kernel with its root on DISK (a raw file, or nbd:unix:SOCKET) and
# the workload named on the kernel command line.  The serial console,
# each line prefixed with the seconds since QEMU started, goes to
# $tmpdir/NAME.console and that start (epoch seconds) to $tmpdir/NAME.start;
# sets $guest_pid_NAME.  QEMU runs with -icount $E2E_ICOUNT when that is set.
e2e_boot ()
{
    local name="$1" disk="$2" workload="$3" console="$tmpdir/$1.console"
    local start; start="$(date +%s.%N)"
    echo "$start" > "$tmpdir/$name.start"
    : > "$console"
    (
        timeout --kill-after=10 "$E2E_BOOT_TIMEOUT" \
            qemu-system-x86_64 -machine q35,accel=tcg -m "$E2E_MEMORY" -smp 1 \
                ${E2E_ICOUNT:+-icount "$E2E_ICOUNT"} \
                -display none -monitor none -serial stdio -no-reboot \
                -kernel "$e2e_image_dir/vmlinuz" -initrd "$e2e_image_dir/initrd.img" \
                -append "root=/dev/vda rw console=ttyS0 loglevel=4 panic=1 no_timer_check nbdshadow.workload=$workload" \
                -drive "file=$disk,format=raw,if=virtio" < /dev/null 2>&1 |
            perl -MTime::HiRes=time -ne 'BEGIN { $| = 1; $s = shift } s/\r//g;
                                          printf "%.3f %s", time - $s, $_' "$start"
    ) >> "$console" &
    eval "guest_pid_${name//[^A-Za-z0-9_]/_}=$!"
    _pids="$_pids $!"
}

# e2e_wait NAME: wait until the guest powers off; fails if QEMU failed.
e2e_wait ()
{
    local p; eval "p=\$guest_pid_${1//[^A-Za-z0-9_]/_}"
    wait "$p"
}

# e2e_mark NAME MARKER: the seconds from QEMU's start to the marker on the
# console ("NBDSHADOW-MARK MARKER"), empty if it never came.
e2e_mark ()
{
    awk -v m="NBDSHADOW-MARK $2" 'index($0, m) { print $1; exit }' "$tmpdir/$1.console"
}

# e2e_guest_mark NAME MARKER: the guest's own clock (seconds since its
# kernel started, /proc/uptime) when it printed the marker, empty if it
# never came.
e2e_guest_mark ()
{
    awk -v m="NBDSHADOW-MARK $2" 'index($0, m) {
        for (i = 1; i <= NF; i++) if ($i ~ /^uptime=/) { print substr($i, 8); exit }
        exit }' "$tmpdir/$1.console"
}

# e2e_marks NAME: the markers of a finished run, host and guest clocks,
# as the first fields of a result line.
e2e_marks ()
{
    echo "multi-user=$(e2e_mark "$1" multi-user) done=$(e2e_mark "$1" workload-done)" \
         "guest-multi-user=$(e2e_guest_mark "$1" multi-user)" \
         "guest-done=$(e2e_guest_mark "$1" workload-done)"
}

# e2e_wait_mark NAME MARKER [SECONDS]: wait (default the boot timeout)
# until the guest printed the marker.
e2e_wait_mark ()
{
    local i
    for i in $(seq $((${3:-$E2E_BOOT_TIMEOUT} * 10))); do
        [ -n "$(e2e_mark "$1" "$2")" ] && return 0
        sleep 0.1
    done
    echo "$0: guest $1 never printed $2"; tail -n 20 "$tmpdir/$1.console"
    return 1
}

# e2e_check_console NAME: the guest ran its workload to the end and its
# console shows no I/O or file-system error.
e2e_check_console ()
{
    local c="$tmpdir/$1.console"
    if grep -a -E -i 'I/O error|EXT4-fs error|EXT4-fs warning|blk_update_request|Buffer I/O|workload-failed|Kernel panic' "$c"; then
        echo "$0: guest $1: errors on the console ($c)"; return 1
    fi
    if [ -z "$(e2e_mark "$1" workload-done)" ]; then
        echo "$0: guest $1 did not finish its workload:"; tail -n 20 "$c"; return 1
    fi
}

# e2e_watch_complete NAME: in the background, note in $tmpdir/NAME.complete
# the wall clock (epoch seconds) at which the filter's stats first say
# "complete".  The stats file is rewritten every second, so this is late
# by up to about a second: it errs towards a later completion.
e2e_watch_complete ()
{
    local name="$1"
    (
        while [ "$(json_get "$tmpdir/$name.json" state 2>/dev/null)" != complete ]; do
            sleep 0.2
        done
        date +%s.%N > "$tmpdir/$name.complete.tmp"
        mv "$tmpdir/$name.complete.tmp" "$tmpdir/$name.complete"
    ) &
    _pids="$_pids $!"
}

# e2e_since_boot NAME EPOCH: EPOCH as seconds since guest NAME's QEMU
# started, the clock of its console markers.
e2e_since_boot ()
{
    local start; start="$(cat "$tmpdir/$1.start")" || return 1
    awk -v a="$2" -v b="$start" 'BEGIN { printf "%.3f\n", a - b }'
}

# e2e_migrate NAME WORKLOAD POLICY RATE DELAY [SHADOW-PARAM...]: migrate
# the guest's disk while the guest boots and runs WORKLOAD from the
# destination (with POLICY none, nbdcopy reads the whole disk once the
# guest is done: nothing else would complete the copy).  Source: nbdkit's
# file plugin, read-only, on the pristine
# image behind the rate (RATE bits/s) and delay (DELAY per read) filters,
# a cross-site link.  Destination NAME: the shadow filter with
# shadow-policy=POLICY.  Every run is checked: no I/O error on the guest's
# console; once the copy is complete the source is killed; after the guest
# powered off, e2fsck -fn on the shadow is clean and the whole export read
# back equals the shadow file.  Leaves the destination running and sets
# e2e_result (one line: markers, stalls, stall time, the time to the
# complete copy, whether the guest reached multi-user before it; times in
# seconds since QEMU started, and the markers also on the guest's clock).
e2e_migrate ()
{
    local name="$1" workload="$2" policy="$3" rate="$4" delay="$5"; shift 5
    start_server "${name}_src" -r -t 64 --filter=rate --filter=delay \
        file "$e2e_image_dir/disk.img" rate="$rate" rdelay="$delay"
    start_shadow "$name" "${name}_src" shadow-policy="$policy" "$@"
    e2e_watch_complete "$name"
    e2e_boot "$name" "nbd:unix:$tmpdir/$name.sock" "$workload"
    e2e_wait_mark "$name" multi-user
    if [ "$policy" = none ]; then
        # Demand only: once the guest is done, a reader of the whole
        # disk (as a backup would) completes the copy.
        e2e_wait "$name"
        e2e_guest_stats "$name"
        nbdcopy "$(uri "$name")" null:
    fi
    wait_json "$tmpdir/$name.json" state complete "$E2E_BOOT_TIMEOUT"
    for _ in $(seq 50); do [ -s "$tmpdir/$name.complete" ] && break; sleep 0.1; done
    stop_server "${name}_src" KILL
    if [ "$policy" != none ]; then
        e2e_wait "$name"
        e2e_guest_stats "$name"
    fi
    e2e_check_console "$name"
    e2e_check_shadow "$name"
    e2e_result="$(e2e_marks "$name")"
    local k
    for k in stalls stall_us stall_wall_us; do
        e2e_result="$e2e_result $k=$(json_get "$tmpdir/$name.guest.json" $k)"
    done
    # Both on the console's clock (seconds since QEMU started).
    local mu complete before=no
    mu="$(e2e_mark "$name" multi-user)"
    complete="$(e2e_since_boot "$name" "$(cat "$tmpdir/$name.complete")")" || return 1
    awk -v m="$mu" -v c="$complete" 'BEGIN { exit !(m < c) }' && before=yes
    e2e_result="$e2e_result complete=$complete multi-user-before-complete=$before"
}

# e2e_guest_stats NAME: the stats as the guest left them (it powered off),
# in $tmpdir/NAME.guest.json: the file is rewritten every second.
e2e_guest_stats ()
{
    sleep 1.5
    cp "$tmpdir/$1.json" "$tmpdir/$1.guest.json"
}

# e2e_check_shadow NAME: the guest's file system on the shadow is clean,
# and the whole export read through the filter equals the shadow file.
e2e_check_shadow ()
{
    local shadow="${shadow_dir:-$tmpdir}/$1.img"
    e2fsck -fn "$shadow" > "$tmpdir/$1.fsck" 2>&1 ||
        { echo "$0: $1: e2fsck -fn on the shadow:"; cat "$tmpdir/$1.fsck"; return 1; }
    nbdcopy "$(uri "$1")" "$tmpdir/$1.read"
    qemu-img compare -q -f raw -F raw "$tmpdir/$1.read" "$shadow" ||
        { echo "$0: $1: the export read back differs from the shadow"; return 1; }
    rm -f "$tmpdir/$1.read"
}

# e2e_reboot_from_shadow NAME: stop the destination, start it again on its
# completed shadow with the source gone, and boot the guest from it once
# more: it must reach its workload's end with a clean console.
e2e_reboot_from_shadow ()
{
    stop_server "$1"
    start_shadow "$1" "${1}_src"
    e2e_boot "$1-again" "nbd:unix:$tmpdir/$1.sock" boot
    e2e_wait "$1-again"
    e2e_check_console "$1-again"
}
