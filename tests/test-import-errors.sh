#!/bin/sh -
# Bad input is refused with the line number and the reason.
. ./functions.sh

# expect_error FORMAT INPUT MESSAGE: import must fail saying MESSAGE.
expect_error ()
{
    printf "$2" > "$tmpdir/in"
    if "$NBDSHADOW" import --format "$1" "$tmpdir/in" \
        -o "$tmpdir/out.csv" 2> "$tmpdir/err"; then
        echo "$0: $1: bad input accepted: $2"
        exit 1
    fi
    if ! grep -qF -- "$3" "$tmpdir/err"; then
        echo "$0: $1: expected \"$3\", got:"
        cat "$tmpdir/err"
        exit 1
    fi
}

expect_error csv 'ts_us,op,offset,length\n1,R,0,512\n2,X,0,512\n' \
    'line 3: op must be one of R W T Z F'
expect_error csv 'ts_us,op,offset,length\n1,R,-4,512\n' \
    'line 2: bad offset "-4"'
expect_error replayer '0.1 5 0 8 1\n0.2 5 0 8 1\n0.3 5 0 8 7\n' \
    'line 3: type must be 1 (read) or 0 (write), got "7"'
expect_error replayer '0.1 5 0 8\n' \
    'line 1: expected 5 fields (time_ms disk offset size rw), got 4'
expect_error disksim '100 0 0 8 1\nabc 0 0 8 1\n' \
    'line 2: bad arrival time "abc"'
expect_error vscsi '2,0.1,28,4096,0\n2,0.2,99,4096,0\n' \
    'line 2: unknown SCSI opcode 0x99'
expect_error msr '128166372000000000,hm,0,Read,0,4096,100\n128166372000000001,hm,0,Erase,0,4096,1\n' \
    'line 2: type must be Read or Write, got "Erase"'
expect_error blkparse '  8,0 0 1 zero 1 Q R 0 + 8 [x]\n' \
    'line 1: bad time "zero"'
expect_error blkparse '  8,0 0 1 0.1 1 Q R 0 [x]\n' \
    'line 1: Q event without "SECTOR + NSECT"'
expect_error nbdkit-log '2026-11-25 06:55:55.000000 connection=1 Read id=1 offset=0x0 count=0x200 ...\nnot a log line\n' \
    'line 2: expected a "YYYY-MM-DD HH:MM:SS.uuuuuu" timestamp'
expect_error nbdkit-log '2026-11-25 06:55:55.000000 connection=1 Read id=1 offset=0xZZ count=0x200 ...\n' \
    'line 1: bad offset=0xZZ'
expect_error replayer '' 'no requests found in 0 lines'
expect_error pcap '1\n' 'unknown format "pcap"'

# simulate and train refuse malformed canonical traces with the line too.
printf 'ts_us,op,offset,length\n1,R,0,512\n2,R,0\n' > "$tmpdir/bad.csv"
if "$NBDSHADOW" train --trace "$tmpdir/bad.csv" -o "$tmpdir/m" 2> "$tmpdir/err"
then
    echo "$0: train accepted a bad trace"; exit 1
fi
grep -qF 'bad.csv: line 3: bad offset' "$tmpdir/err"
