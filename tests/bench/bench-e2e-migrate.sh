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
# the completed shadow is checked in the first REBOOT_ROUNDS rounds
# (default 1; 0 skips it).
#
#   cd tests && flock /tmp/nbdshadow-bench.lock bench/bench-e2e-migrate.sh
#   ROUNDS=3 LINKS="100M:5ms 1G:1ms" WORKLOADS="boot build sqlite unpack scan" \
#     POLICIES="baseline none sequential first-access predict" bench/bench-e2e-migrate.sh
# The guest's clock counts its instructions at 2^2 ns each (250 MIPS, what
# TCG delivers here with -icount) and real time while it idles; times on
# it do not follow the host CPU QEMU gets.  E2E_ICOUNT= (empty) turns it off.
E2E_ICOUNT="${E2E_ICOUNT-shift=2,sleep=on}"
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
                    line="$(e2e_marks "$n")"
                    line="$line stalls=0 stall_us=0 stall_wall_us=0 complete=- multi-user-before-complete=-"
                    stop_server "$n"
                    rm -f "$tmpdir/$n.disk"
                else
                    model=()
                    case "$p" in none|sequential) ;;
                        *) model=(shadow-model="$tmpdir/$w.model") ;; esac
                    e2e_migrate "$n" "$w" "$p" "$rate" "$delay" "${model[@]}"
                    line="$e2e_result"
                    if [ "$round" -le "${REBOOT_ROUNDS:-1}" ]; then
                        e2e_reboot_from_shadow "$n"
                    fi
                    stop_server "$n"
                    rm -f "$tmpdir/$n.img" "$tmpdir/$n.state"
                fi
                echo "round=$round link=$link workload=$w policy=$p $line" | tee -a "$results"
            done
        done
    done
done

# The medians, one row per link, workload and policy: times to the
# markers on the guest's clock (g_*) and on the host's (w_*, seconds since
# QEMU started), each also as the median of each round's time over that
# round's baseline; stalls per round.
echo
printf '%-9s %-7s %-13s %7s %7s %6s %6s %7s %7s %6s %6s %-14s %7s %8s %8s %s\n' link workload \
    policy g_mu_s g_done_s g_mu/b g_dn/b w_mu_s w_done_s w_mu/b w_dn/b stalls stall_s \
    stall_w_s complete_s mu_before
awk -v links="$links" -v workloads="$workloads" -v policies="$policies" '
    function field (k,   i, a) {
        for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
        return "-"
    }
    function median (x, n,   i, j, k, y) {
        if (n == 0) return "-"
        for (i = 1; i <= n; i++) y[i] = x[i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (y[j] + 0 < y[i] + 0) { k = y[i]; y[i] = y[j]; y[j] = k }
        return y[int((n + 1) / 2)]
    }
    {
        sub(/^round=/, "", $1); sub(/^link=/, "", $2); sub(/^workload=/, "", $3)
        sub(/^policy=/, "", $4)
        k = $2 SUBSEP $3 SUBSEP $4; r = $1
        rounds[r] = 1; seen[k] = 1
        for (f = 5; f <= NF; f++) { split($f, a, "="); v[k, r, a[1]] = a[2] }
    }
    END {
        nl = split(links, L, " "); nw = split(workloads, W, " "); np = split(policies, P, " ")
        for (li = 1; li <= nl; li++) for (wi = 1; wi <= nw; wi++) for (pi = 1; pi <= np; pi++) {
            k = L[li] SUBSEP W[wi] SUBSEP P[pi]; b = L[li] SUBSEP W[wi] SUBSEP "baseline"
            if (!(k in seen)) continue
            n = 0; nb = 0; before = 0; per = ""
            split("", gm); split("", gd); split("", wm); split("", wd); split("", st)
            split("", ss); split("", sw); split("", cc); split("", rgm); split("", rgd)
            split("", rwm); split("", rwd)
            for (r in rounds) {
                if (!((k, r, "multi-user") in v)) continue
                n++
                gm[n] = v[k, r, "guest-multi-user"]; gd[n] = v[k, r, "guest-done"]
                wm[n] = v[k, r, "multi-user"]; wd[n] = v[k, r, "done"]
                st[n] = v[k, r, "stalls"]; ss[n] = v[k, r, "stall_us"] / 1e6
                sw[n] = v[k, r, "stall_wall_us"] / 1e6; cc[n] = v[k, r, "complete"]
                before += v[k, r, "multi-user-before-complete"] == "yes"
                if ((b, r, "multi-user") in v) {
                    nb++
                    rgm[nb] = gm[n] / v[b, r, "guest-multi-user"]
                    rgd[nb] = gd[n] / v[b, r, "guest-done"]
                    rwm[nb] = wm[n] / v[b, r, "multi-user"]
                    rwd[nb] = wd[n] / v[b, r, "done"]
                }
            }
            # Stalls of each round in round order.
            for (r = 1; (r in rounds) || r == 1; r++)
                if ((k, r, "stalls") in v) per = per (per == "" ? "" : ",") v[k, r, "stalls"]
            printf "%-9s %-7s %-13s %7.1f %7.1f %6.3f %6.3f %7.1f %7.1f %6.3f %6.3f %-14s %7.1f %8.1f %8s %s\n",
                L[li], W[wi], P[pi], median(gm, n), median(gd, n), median(rgm, nb), median(rgd, nb),
                median(wm, n), median(wd, n), median(rwm, nb), median(rwd, nb),
                median(st, n) " (" per ")", median(ss, n), median(sw, n), median(cc, n),
                P[pi] == "baseline" ? "-" : before "/" n
        }
    }' "$results"
