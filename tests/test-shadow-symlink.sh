#!/usr/bin/env bash
# Files are never written through a symbolic link planted in a shared
# directory: a shadow or state that is a link is refused, and a link at
# the name the old code used for its temporary state file is not
# followed.  The state file is private (mode 0600).
source ./functions.sh

start_server src pattern 8M
echo "victim" > "$tmpdir/victim"

# The state file used to be written as STATE.tmp, then renamed.
ln -s "$tmpdir/victim" "$tmpdir/s.state.tmp"
start_shadow s src shadow-policy=none
stop_server s
[ "$(cat "$tmpdir/victim" | tr -d '\0')" = victim ] ||
    { echo "FAIL: the planted link was followed: the victim was overwritten"; exit 1; }
test -L "$tmpdir/s.state.tmp"
test ! -L "$tmpdir/s.state"
test "$(stat -c %a "$tmpdir/s.state")" = 600
test "$(stat -c %a "$tmpdir/s.img")" = 600
ls "$tmpdir" | grep -qE '^s\.state\.[A-Za-z0-9]{6}$' && { echo "FAIL: temporary files left"; ls "$tmpdir"; exit 1; }

for what in file state; do
    rm -f "$tmpdir/link.img" "$tmpdir/link.state"
    if [ $what = file ]; then
        ln -s "$tmpdir/victim" "$tmpdir/link.img"
    else
        ln -s "$tmpdir/s.state" "$tmpdir/link.state"
        cp "$tmpdir/s.img" "$tmpdir/link.img"
    fi
    nbdkit_refuses "$tmpdir/err" -U "$tmpdir/l.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/link.img" \
        shadow-state="$tmpdir/link.state" ||
        { cat "$tmpdir/err"; echo "FAIL: a $what symlink was accepted"; exit 1; }
    cat "$tmpdir/err"
    grep -q "error: shadow-$what: .* is a symbolic link" "$tmpdir/err"
done
test "$(cat "$tmpdir/victim")" = victim
echo OK
