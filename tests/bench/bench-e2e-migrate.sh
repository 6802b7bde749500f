#!/usr/bin/env bash
# Benchmark (on demand, not part of make check): a real Debian 12 guest
# (tests/e2e/) boots and runs a workload from the destination while its
# disk migrates, per copy policy, against the same guest booting from a
# local file export (baseline), in interleaved rounds; the table gives the
# medians.  Source: nbdkit's file plugin behind the rate and delay
# filters.  predict and first-access use a model trained on the
# workload's recorded run 1 (traces/e2e-WORKLOAD-run1.csv); the guest
# then runs the workload again.  Every migration run is checked as in
# test-e2e-migrate.sh (console, e2fsck, export = shadow); the reboot from
# the completed shadow is checked in the first round.
#
#   cd tests && flock /tmp/nbdshadow-bench.lock bench/bench-e2e-migrate.sh
#   ROUNDS=3 LINKS="100M:5ms 1G:1ms" WORKLOADS="boot build sqlite unpack scan" \
#     POLICIES="baseline none sequential first-access predict" bench/bench-e2e-migrate.sh
source "$(dirname "$0")/../functions.sh"
source "$abs_top_srcdir/tests/e2e/e2e-lib.sh"
requires qemu-system-x86_64 --version
requires nbdcopy --version
e2e_image

rounds=${ROUNDS:-3}
links=${LINKS:-100M:5ms 1G:1ms}
workloads=${WORKLOADS:-boot build sqlite unpack scan}
policies=${POLICIES:-baseline none sequential first-access predict}
results="$tmpdir/results"
: > "$results"

for w in $workloads; do
    "$NBDSHADOW" train --trace "$TRACES/e2e-$w-run1.csv" -o "$tmpdir/$w.model" > /dev/null
done

for round in $(seq "$rounds"); do
    for link in $links; do
        rate="${link%%:*}" delay="${link#*:}"
        for w in $workloads; do
            for p in $policies; do
                n="r${round}_${rate}_${w}_${p//-/}"
                if [ "$p" = baseline ]; then
                    e2e_fresh_disk "$tmpdir/$n.disk"
                    start_server "$n" file "$tmpdir/$n.disk"
                    e2e_boot "$n" "nbd:unix:$tmpdir/$n.sock" "$w"
                    e2e_wait "$n"
                    e2e_check_console "$n"
                    line="multi-user=$(e2e_mark "$n" multi-user) done=$(e2e_mark "$n" workload-done)"
                    line="$line stalls=0 stall_us=0 stall_wall_us=0 complete=- multi-user-before-complete=-"
                    stop_server "$n"
                    rm -f "$tmpdir/$n.disk"
                else
                    model=()
                    case "$p" in none|sequential) ;;
                        *) model=(shadow-model="$tmpdir/$w.model") ;; esac
                    e2e_migrate "$n" "$w" "$p" "$rate" "$delay" "${model[@]}"
                    line="$e2e_result"
                    [ "$round" = 1 ] && e2e_reboot_from_shadow "$n"
                    stop_server "$n"
                    rm -f "$tmpdir/$n.img" "$tmpdir/$n.state"
                fi
                echo "round=$round link=$link workload=$w policy=$p $line" | tee -a "$results"
            done
        done
    done
done

# The medians, one row per link, workload and policy.
echo
printf '%-9s %-7s %-13s %11s %11s %7s %9s %10s %9s %s\n' link workload policy \
    multi-user_s done_s stalls stall_s stall_wall_s complete_s mu_before_complete
for link in $links; do
    for w in $workloads; do
        for p in $policies; do
            awk -v l="$link" -v w="$w" -v p="$p" '
                function field (k,   i, a) {
                    for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
                    return "-"
                }
                $2 == "link=" l && $3 == "workload=" w && $4 == "policy=" p {
                    n++; m[n] = field("multi-user"); d[n] = field("done"); s[n] = field("stalls")
                    t[n] = field("stall_us") / 1e6; v[n] = field("stall_wall_us") / 1e6
                    c[n] = field("complete"); b += field("multi-user-before-complete") == "yes"
                }
                function median (x,   i, j, k, y) {
                    for (i = 1; i <= n; i++) y[i] = x[i]
                    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                        if (y[j] + 0 < y[i] + 0) { k = y[i]; y[i] = y[j]; y[j] = k }
                    return y[int((n + 1) / 2)]
                }
                END { if (n) printf "%-9s %-7s %-13s %11.1f %11.1f %7d %9.1f %10.1f %9s %d/%d\n",
                          l, w, p, median(m), median(d), median(s), median(t), median(v), median(c),
                          p == "baseline" ? 0 : b, p == "baseline" ? 0 : n }' \
                "$results"
        done
    done
done
