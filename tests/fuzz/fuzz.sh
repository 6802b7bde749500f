#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets with clang and run each for a
# while (`make fuzz FUZZ_SECONDS=N`; CI runs it briefly).
#
#   tests/fuzz/fuzz.sh SECONDS [TARGET...]   build, seed, run (default: all)
#   tests/fuzz/fuzz.sh --list                the targets
#
# Run from the build tree's top (make fuzz does).  Corpora grow in
# tests/fuzz/corpus/TARGET across runs, seeded from tests/data and
# traces/; a crash stops that target, its input is saved in
# tests/fuzz/crashes/TARGET/ and the script exits 1.  Without clang's
# libFuzzer the script says so and exits 0 (the packages are in
# scripts/quickstart.sh).  FUZZ_JOBS (default 1) targets run at once,
# each under nice -n 19.
set -euo pipefail

srcdir="$(cd "$(dirname "$0")/../.." && pwd)"
builddir="$(pwd)"
out="$builddir/tests/fuzz"
CC="${FUZZ_CC:-clang}"
formats="csv nbdkit-log blkparse msr vscsi disksim replayer"
targets=""
for f in $formats; do targets="$targets import-$f"; done
targets="$targets trace-csv model statefile params"

if [ "${1:-}" = --list ]; then echo $targets | tr ' ' '\n'; exit 0; fi
seconds="${1:?usage: fuzz.sh SECONDS [TARGET...]}"; shift
[ $# -gt 0 ] && targets="$*"

if ! command -v "$CC" >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput (const char *d, unsigned long n) { return 0; }' |
       "$CC" -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    echo "fuzz: skipped: $CC with libFuzzer not found (Debian: clang libclang-rt-14-dev)"
    exit 0
fi

# ---- build ----
mkdir -p "$out/obj"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $san
  -I$srcdir/common -I$srcdir/learner -I$srcdir/plugin -I$srcdir/proxy
  -I$srcdir/metastore -I$srcdir/tests/fuzz
  $(pkg-config --cflags libnbd libcrypto hiredis)"
libs="$(pkg-config --libs libnbd libcrypto hiredis) -lsvm -lev -lm -lpthread"

# compile SRC OBJ: coverage-instrumented object, rebuilt when SRC, a
# header or this script changed.
libdirs="common learner proxy metastore"
headers="$(ls "$srcdir"/{common,learner,plugin,proxy,metastore,tests/fuzz}/*.h)"
compile ()
{
    if [ ! "$2" -nt "$1" ] || [ "$srcdir/tests/fuzz/fuzz.sh" -nt "$2" ] ||
       [ -n "$(find $headers -newer "$2" | head -1)" ]; then
        $CC $cflags -fsanitize=fuzzer-no-link "${@:3}" -c "$1" -o "$2"
    fi
}
echo "== fuzz: building with $CC"
lib_objs=() plugin_objs=()
for src in $(for d in $libdirs; do ls "$srcdir/$d"/*.c; done); do
    o="$out/obj/$(basename "$(dirname "$src")")-$(basename "${src%.c}").o"
    compile "$src" "$o" -fPIC
    lib_objs+=("$o")
done
for src in "$srcdir"/plugin/*.c "$srcdir"/tests/fuzz/nbdkit-stubs.c; do
    o="$out/obj/plugin-$(basename "${src%.c}").o"
    compile "$src" "$o" -pthread
    case "$src" in */statefile.c) statefile_obj="$o" ;; esac
    plugin_objs+=("$o")
done
no_statefile=()
for o in "${plugin_objs[@]}"; do
    [ "$o" = "$statefile_obj" ] || no_statefile+=("$o")
done

# link TARGET SRC OBJS... [-- CFLAGS...]
link ()
{
    local t="$1" src="$2"; shift 2
    $CC $cflags -fsanitize=fuzzer "$src" "$@" $libs -o "$out/fuzz-$t"
}
for t in $targets; do
    case "$t" in
        import-*) link "$t" "$srcdir/tests/fuzz/fuzz-import.c" \
                      "${lib_objs[@]}" -DFUZZ_FORMAT="\"${t#import-}\"" ;;
        trace-csv) link "$t" "$srcdir/tests/fuzz/fuzz-trace-csv.c" "${lib_objs[@]}" ;;
        model) link "$t" "$srcdir/tests/fuzz/fuzz-model.c" "${lib_objs[@]}" ;;
        params) link "$t" "$srcdir/tests/fuzz/fuzz-params.c" \
                    "${plugin_objs[@]}" "${lib_objs[@]}" ;;
        statefile) link "$t" "$srcdir/tests/fuzz/fuzz-statefile.c" \
                       "${no_statefile[@]}" "${lib_objs[@]}" -pthread ;;
        *) echo "fuzz: unknown target $t" >&2; exit 2 ;;
    esac
done

# ---- seeds ----
# seed TARGET FILE...: copy into the target's seed dir.
seeds="$out/seeds"
rm -rf "$seeds"
seed () { local t="$1"; shift; mkdir -p "$seeds/$t"; cp "$@" "$seeds/$t/"; }
nbdshadow="$builddir/cli/nbdshadow"
for f in $formats; do seed "import-$f" "$srcdir/tests/data/sample.$f"; done
head -300 "$srcdir/traces/msn_fs_30s_replayer.trace" > "$seeds/msn.replayer"
head -300 "$srcdir/traces/tpcc_small_mqsim.trace" > "$seeds/tpcc.disksim"
seed import-replayer "$seeds/msn.replayer"
seed import-disksim "$seeds/tpcc.disksim"
seed trace-csv "$srcdir/tests/data/sample.csv" "$srcdir/tests/data/sample-expected.csv"
if [ -x "$nbdshadow" ]; then
    "$nbdshadow" import --format replayer "$seeds/msn.replayer" -o "$seeds/msn.csv"
    "$nbdshadow" import --format disksim "$seeds/tpcc.disksim" -o "$seeds/tpcc.csv"
    seed trace-csv "$seeds/msn.csv" "$seeds/tpcc.csv"
    seed import-csv "$seeds/msn.csv"
    # Model payloads: the file minus its 56-byte header.
    mkdir -p "$seeds/model"
    for tr in "$srcdir/tests/data/sample.csv" "$seeds/msn.csv" "$seeds/tpcc.csv"; do
        for bs in 4K 64K; do
            m="$seeds/m.$(basename "$tr").$bs"
            "$nbdshadow" train --trace "$tr" --block-size $bs -o "$m" > /dev/null
            tail -c +57 "$m" > "$seeds/model/$(basename "$m")"
            { printf '\377'; cat "$m"; } > "$seeds/model/$(basename "$m").file"
        done
    done
    cp "$seeds/m.sample.csv.64K" "$out/sample.model"
else
    echo "fuzz: $nbdshadow not built: model seeds skipped"
fi
mkdir -p "$seeds/statefile" "$seeds/statefile.raw"
FUZZ_STATE_SEED="$seeds/statefile.raw" "$out/fuzz-statefile" >/dev/null 2>&1 || :
for s in "$seeds"/statefile.raw/*; do
    [ -f "$s" ] || continue
    { printf '\1'; cat "$s"; } > "$seeds/statefile/$(basename "$s")"
    { printf '\0'; cat "$s"; } > "$seeds/statefile/$(basename "$s").raw"
done
# Inputs that once crashed a target (tests/fuzz/regress/TARGET/): every
# run tries them first.
for t in $targets; do
    if [ -d "$srcdir/tests/fuzz/regress/$t" ]; then
        seed "$t" "$srcdir/tests/fuzz/regress/$t"/*
    fi
done
# Inputs that once crashed a target (tests/fuzz/regress/TARGET/): every
# run tries them first.
for t in $targets; do
    if [ -d "$srcdir/tests/fuzz/regress/$t" ]; then
        seed "$t" "$srcdir/tests/fuzz/regress/$t"/*
    fi
done
mkdir -p "$seeds/params"
printf 'shadow-block-size=64K\nshadow-inflight=64\nshadow-bandwidth=200M\n' > "$seeds/params/sizes"
printf 'shadow-policy=predict\nshadow-policy=sequential\nshadow-timeout=30\n' > "$seeds/params/policy"
printf 'shadow-connections=4\ntls=on\ntls-verify=off\nshadow-block-size=4M\n' > "$seeds/params/tls"
printf 'shadow-file=d.img\nshadow-state=d.state\nshadow-stats=s.json\nshadow-record=r.csv\nshadow-model=m\nuri=nbd://x\n' > "$seeds/params/files"

# ---- run ----
max_len () {
    case "$1" in model) echo 4194304 ;; statefile) echo 262144 ;; *) echo 8192 ;; esac
}
run ()
{
    local t="$1" log="$out/fuzz-$t.log"
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    if nice -n 19 "$out/fuzz-$t" -max_total_time="$seconds" -timeout=20 \
        -rss_limit_mb=2560 -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t/" \
        "$out/corpus/$t" "$seeds/$t" > "$log" 2>&1; then
        echo "ok"
    else
        echo "FAILED"
    fi > "$out/fuzz-$t.status"
}
echo "== fuzz: $seconds s per target: $targets"
jobs_max="${FUZZ_JOBS:-1}"
for t in $targets; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || :; done
    run "$t" &
done
wait
status=0
printf '%-20s %6s %12s %8s %8s %8s\n' target result runs exec/s cov ft
for t in $targets; do
    log="$out/fuzz-$t.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
    ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' "$log" | tail -1)
    res=$(cat "$out/fuzz-$t.status")
    printf '%-20s %6s %12s %8s %8s %8s\n' "$t" "$res" "${runs:--}" "${rate:--}" \
        "${cov:--}" "${ft:--}"
    if [ "$res" != ok ]; then
        status=1
        echo "--- $t: $log"
        grep -E 'ERROR|SUMMARY|Test unit written| #[0-3] ' "$log" | head -8 || :
    fi
done
exit $status
