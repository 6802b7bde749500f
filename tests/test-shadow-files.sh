#!/usr/bin/env bash
# The files the filter writes about a guest: the stats file is replaced
# through a mkstemp temporary in its directory, so symlinks planted at
# it or at the old fixed temporary name (STATS.tmp) are never followed;
# the record file is never opened through a symlink.  Both are mode 0600
# whatever the umask, or shadow-file-mode.
source ./functions.sh
requires nbdsh --version

umask 022
start_server src pattern 4M
d="$tmpdir/run"
mkdir "$d"
echo precious > "$d/victim"
printf 'ts_us,op,offset,length\n1,R,0,512\n' > "$d/trace.csv"
cp "$d/trace.csv" "$d/trace.orig"

# check NAME MODE: a regular file of MODE; the victims intact.
check ()
{
    if [ "$(cat "$d/victim")" != precious ] || ! cmp -s "$d/trace.csv" "$d/trace.orig"
    then
        echo "$0: a file a symlink pointed to was written"; exit 1
    fi
    if [ -L "$1" ] || [ ! -f "$1" ]; then
        echo "$0: $1 is not a regular file"; ls -la "$d"; exit 1
    fi
    if [ "$(stat -c %a "$1")" != "$2" ]; then
        echo "$0: $1 has mode $(stat -c %a "$1"), expected $2"; exit 1
    fi
}

ln -s victim "$d/s.json"
ln -s victim "$d/s.json.tmp"
start_shadow a src shadow-stats="$d/s.json" shadow-record="$d/rec.csv"
nbdsh -u "$(uri a)" -c 'h.pread(4096, 0)'
wait_json "$d/s.json" state complete
stop_server a
check "$d/s.json" 600
check "$d/rec.csv" 600
[ "$(readlink "$d/s.json.tmp")" = victim ]
if ls -a "$d" | grep -q '^\.s\.json\.'; then
    echo "$0: temporary files left:"; ls -la "$d"; exit 1
fi

# The operator's mode.
start_shadow b src shadow-stats="$d/b.json" shadow-record="$d/b.csv" \
    shadow-file-mode=0640
wait_json "$d/b.json" state complete
stop_server b
check "$d/b.json" 640
check "$d/b.csv" 640

# A record file that is a symlink, even to a trace, is refused.
ln -s trace.csv "$d/link.csv"
rm -f "$tmpdir/p.sock"
if ! nbdkit_refuses "$tmpdir/log" -U "$tmpdir/p.sock" --filter="$FILTER" \
    nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/c.img" \
    shadow-record="$d/link.csv"; then
    cat "$tmpdir/log"; echo "$0: the filter recorded through a symlink"; exit 1
fi
cat "$tmpdir/log"
grep error "$tmpdir/log" | grep -q "shadow-record: $d/link.csv is a symbolic link"
check "$d/trace.csv" 644

# A bad mode is refused with its parameter.
if ! nbdkit_refuses "$tmpdir/log" -U "$tmpdir/p.sock" --filter="$FILTER" \
    nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/c.img" \
    shadow-file-mode=0999; then
    echo "$0: shadow-file-mode=0999 accepted"; exit 1
fi
grep error "$tmpdir/log" | grep -q "shadow-file-mode: '0999' is not an octal file mode"
