#!/bin/sh -
# import: a number that does not fit (a device placed past the largest
# disk, a sector count whose bytes wrap, a date before 1970, a time near
# 2^63) is refused with its line instead of giving silently wrong
# offsets or times.  Files as distributed import as they are: a header
# line naming the columns and CRLF line ends, in every columnar format.
. ./functions.sh

# expect_error FORMAT INPUT MESSAGE: import must fail saying MESSAGE.
expect_error ()
{
    printf "$2" > "$tmpdir/in"
    if "$NBDSHADOW" import --format "$1" "$tmpdir/in" \
        -o "$tmpdir/out.csv" 2> "$tmpdir/err"; then
        echo "$0: $1: bad input accepted: $2"; cat "$tmpdir/out.csv"
        exit 1
    fi
    if ! grep -qF -- "$3" "$tmpdir/err"; then
        echo "$0: $1: expected \"$3\", got:"; cat "$tmpdir/err"
        exit 1
    fi
}

# expect_csv FORMAT INPUT CSV: import must give exactly CSV.
expect_csv ()
{
    printf "$2" > "$tmpdir/in"
    printf "$3" > "$tmpdir/want"
    if ! "$NBDSHADOW" import --format "$1" "$tmpdir/in" -o "$tmpdir/out.csv"
    then
        echo "$0: $1: refused: $2"; exit 1
    fi
    if ! cmp -s "$tmpdir/want" "$tmpdir/out.csv"; then
        echo "$0: $1: wrong conversion of: $2"
        diff "$tmpdir/want" "$tmpdir/out.csv" || :
        exit 1
    fi
}

# disksim: 65535 devices of 2^62 bytes each do not fit below 2^63.
expect_error disksim '0 0 0 8 1\n10 65535 9007199254740991 8 0\n' \
    'line 2: device 65535 placed at 65535 x 4611686019501129728 bytes'
expect_error disksim '0 0 0 8 1\n10 3 4503599627370496 8 0\n' \
    'line 2: device 3 placed at 3 x'
# blkparse: 2^55 sectors are 2^64 bytes.
expect_error blkparse '  8,0 0 1 0.1 1 Q R 0 + 36028797018963968 [x]\n' \
    'line 1: sector count 36028797018963968 out of range'
expect_error blkparse '  8,0 0 1 0.1 1 Q R 0 + 8 [x]\n  8,0 0 2 0.2 1 Q R 36028797018963968 + 8 [x]\n' \
    'line 2: sector 36028797018963968 out of range'
# nbdkit-log: a second before 1970 is a negative time.
expect_error nbdkit-log '2026-11-25 06:55:55.000000 connection=1 Read id=1 offset=0x0 count=0x200 ...\n1969-12-31 23:59:59.000000 connection=1 Read id=2 offset=0x0 count=0x200 ...\n' \
    'line 2: date out of range (before 1970'
# replayer (ms) and vscsi (s): 2^63 microseconds and more.
expect_error replayer '1 0 0 8 1\n9223372036854775.808 0 0 8 1\n' \
    'line 2: bad time "9223372036854775.808"'
expect_error vscsi '2,0.1,28,4096,0\n2,9300000000000,28,4096,0\n' \
    'line 2: bad time "9300000000000"'
expect_error replayer '1 0 0 8 1\n1e400 0 0 8 1\n' 'line 2: bad time "1e400"'
expect_error vscsi '2,inf,28,4096,0\n' 'line 1: bad time "inf"'
# Requests and times past 2^63 - 1 in the canonical format itself.
expect_error csv '0,R,9223372036854775807,512\n' \
    'line 1: request at 9223372036854775807 + 512 ends beyond 2^63 - 1 bytes'
expect_error csv '9223372036854775808,R,0,512\n' \
    'line 1: timestamp 9223372036854775808 beyond 2^63 - 1 us'
# Strict numbers: no sign, no blank, nothing after the digits.
expect_error csv '1,R,+5,512\n' 'line 1: bad offset "+5"'
expect_error msr '128166372000000000,hm,0,Read, 7,4096,100\n' 'line 1: bad offset " 7"'

# Headers and CRLF, in every columnar format.
want='ts_us,op,offset,length\n100000,R,0,4096\n200000,W,4096,4096\n'
expect_csv vscsi 'version,time,op,size,lbn\r\n2,0.1,28,4096,0\r\n2,0.2,2a,4096,8\r\n' "$want"
expect_csv replayer 'time_ms disk offset size rw\r\n100 0 0 8 1\r\n200 0 8 8 0\r\n' "$want"
expect_csv disksim 'arrival_ns device lba sectors type\r\n100000000 0 0 8 1\r\n200000000 0 8 8 0\r\n' "$want"
expect_csv csv 'ts_us,op,offset,length\r\n100000,R,0,4096\r\n200000,W,4096,4096\r\n' "$want"
expect_csv msr 'Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime\r\n1000000,hm,0,Read,0,4096,1\r\n2000000,hm,0,Write,4096,4096,1\r\n' "$want"
# ... and a UTF-8 byte-order mark before the header.
expect_csv vscsi '\357\273\277version,time,op,size,lbn\r\n2,0.1,28,4096,0\r\n2,0.2,2a,4096,8\r\n' "$want"
# A header is only the first line; names anywhere else, or a first line
# with too few names, are garbage, refused with the line.
expect_error vscsi '2,0.1,28,4096,0\nversion,time,op,size,lbn\n' 'line 2: bad time "time"'
expect_error disksim 'hello world\n1 0 0 8 1\n' 'line 1: expected 5 fields'
expect_error replayer 'time disk offset size rw\ntime disk offset size rw\n' \
    'line 2: bad time "time"'

# Options take whole numbers only.
printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,65536,512\n' > "$tmpdir/t.csv"
for opt in "--bandwidth-ratio 5abc" "--bandwidth-ratio inf" \
           "--bandwidth-ratio nan" "--bandwidth-ratio 0x10" "--rtt 1abc" \
           "--rtt inf" "--rtt -1ms"; do
    if "$NBDSHADOW" simulate --history "$tmpdir/t.csv" --future "$tmpdir/t.csv" \
        --policy sequential $opt > /dev/null 2> "$tmpdir/err"; then
        echo "$0: simulate accepted $opt"; exit 1
    fi
    grep -qF -- "${opt%% *}: expected" "$tmpdir/err"
done
"$NBDSHADOW" simulate --history "$tmpdir/t.csv" --future "$tmpdir/t.csv" \
    --policy sequential --bandwidth-ratio 2.5 --rtt 2ms > /dev/null

# A history late on the clock (times near 2^63 us, spanning most of it)
# trains: the rerun train scores runs on its own clock, not after it.
{
    echo ts_us,op,offset,length
    for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
        echo "$((4611686018427387904 + i * 1000)),R,$((i % 3 * 65536)),4096"
    done
    for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
        echo "$((9223372036854000000 + i * 1000)),R,$((i % 5 * 65536)),4096"
    done
} > "$tmpdir/late.csv"
"$NBDSHADOW" train --trace "$tmpdir/late.csv" -o "$tmpdir/late.model" \
    > /dev/null
