#!/bin/sh -
# The nbdshadow(1) man page and --help agree: every subcommand the
# program lists has a section in cli/nbdshadow.pod, and every option a
# subcommand's --help names is documented in that section.
. ./functions.sh

pod="$abs_top_srcdir/cli/nbdshadow.pod"
podchecker "$pod" 2> "$tmpdir/podchecker" || {
    cat "$tmpdir/podchecker"; exit 1
}

commands=$("$NBDSHADOW" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p')
test -n "$commands"
for cmd in import train simulate replay migrate status verify; do
    echo "$commands" | grep -qx "$cmd"
done

# section CMD: the text of the =head2 section for CMD ("=head2 nbdshadow
# CMD", or one naming several commands: "=head2 nbdshadow A, CMD, B") up
# to the next =head1/=head2.
section ()
{
    awk -v cmd="$1" '
        /^=head2 nbdshadow / {
            n = split(substr($0, 18), names, /, */)
            on = 0
            for (i = 1; i <= n; i++) if (names[i] == cmd) on = 1
            if (on) { print; next }
        }
        on && /^=head[12] / { exit }
        on { print }' "$pod"
}

status=0
for cmd in $commands; do
    section "$cmd" > "$tmpdir/section"
    if ! [ -s "$tmpdir/section" ]; then
        echo "$0: $cmd: no =head2 section for $cmd in nbdshadow.pod"
        status=1; continue
    fi
    "$NBDSHADOW" "$cmd" --help > "$tmpdir/help"
    grep -q "^usage: nbdshadow $cmd" "$tmpdir/help"
    # The options of the usage lines (up to the first prose line).
    sed -n '1,/^[A-Z]/p' "$tmpdir/help" | grep -o -- '--[a-z][a-z-]*' |
        sort -u > "$tmpdir/options"
    while read -r opt; do
        [ "$opt" = --help ] && continue
        if ! grep -q -- "$opt\\b" "$tmpdir/section"; then
            echo "$0: $cmd: $opt is in --help but not in its man page section"
            status=1
        fi
    done < "$tmpdir/options"
done
exit $status
