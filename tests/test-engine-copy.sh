#!/usr/bin/env bash
# The engine copies a whole 1 GiB random disk in the background with no
# client at all, switches over, and the export then serves without the
# source.
source ./functions.sh
requires nbdcopy --version

size=${ENGINE_COPY_SIZE:-1G}
head -c "$size" /dev/urandom > "$tmpdir/src.img"
start_server src file "$tmpdir/src.img"
start_shadow sh src
wait_json "$tmpdir/sh.json" state complete 240
wait_json "$tmpdir/sh.json" source detached 10
cmp "$tmpdir/src.img" "$tmpdir/sh.img"

# Everything came from background pulls, nothing was fetched on demand.
bytes=$(stat -c %s "$tmpdir/src.img")
test "$(json_get "$tmpdir/sh.json" bytes_pulled)" -eq "$bytes"
test "$(json_get "$tmpdir/sh.json" bytes_fetched)" -eq 0
test "$(json_get "$tmpdir/sh.json" policy)" = sequential

# The source is gone: the shadow alone serves a new client.
stop_server src
nbdcopy "$(uri sh)" "$tmpdir/out.img"
cmp "$tmpdir/src.img" "$tmpdir/out.img"
