#!/bin/sh -
# Files the CLI writes (import -o and --split, train -o, simulate --plot)
# replace their target through a temporary file made by mkstemp in the
# same directory: a symlink planted at the target or at the old fixed
# temporary name (TARGET.tmp) is not followed, so another file is never
# overwritten; the result is mode 0600 whatever the umask (they describe
# a guest's accesses), or the --mode asked for.
. ./functions.sh

d="$tmpdir/shared"
mkdir "$d"
cd "$d"
umask 022
sample="$abs_top_srcdir/tests/data/sample.csv"
echo precious > victim

# plant NAME: NAME and NAME.tmp are symlinks to the victim.
plant () { ln -sf victim "$1"; ln -sf victim "$1.tmp"; }

# check NAME MODE: NAME is a regular file of MODE, the victim intact.
check ()
{
    if [ "$(cat victim)" != precious ]; then
        echo "$0: writing $1 overwrote the file a symlink pointed to"; exit 1
    fi
    if [ -L "$1" ] || [ ! -f "$1" ]; then
        echo "$0: $1 is not a regular file"; ls -l; exit 1
    fi
    if [ "$(stat -c %a "$1")" != "$2" ]; then
        echo "$0: $1 has mode $(stat -c %a "$1"), expected $2"; exit 1
    fi
}

plant out.csv
"$NBDSHADOW" import --format csv "$sample" -o out.csv
check out.csv 600
cmp out.csv "$sample"

plant h.csv; plant f.csv
"$NBDSHADOW" import --format csv "$sample" -o all.csv --split h.csv f.csv
check h.csv 600; check f.csv 600; check all.csv 600

plant m.model
"$NBDSHADOW" train --trace "$sample" -o m.model > /dev/null
check m.model 600

plant p.svg
"$NBDSHADOW" simulate --history "$sample" --future "$sample" \
    --policy sequential --plot p.svg > /dev/null
check p.svg 600
grep -q '</svg>' p.svg

# The operator may ask for another mode.
"$NBDSHADOW" import --format csv "$sample" -o shared.csv --mode 0644
check shared.csv 644
"$NBDSHADOW" train --trace "$sample" -o shared.model --mode 640 > /dev/null
check shared.model 640
"$NBDSHADOW" simulate --history "$sample" --future "$sample" \
    --policy sequential --plot shared.svg --mode 0604 > /dev/null
check shared.svg 604
if "$NBDSHADOW" import --format csv "$sample" -o x.csv --mode 0999 2> err; then
    echo "$0: --mode 0999 accepted"; exit 1
fi
grep -qF -- '--mode: expected an octal file mode' err

# No temporary file is left behind, and the planted .tmp links are
# untouched.
if ls -a | grep -q '^\..*\.[A-Za-z0-9]\{6\}$'; then
    echo "$0: temporary files left:"; ls -a; exit 1
fi
[ "$(readlink out.csv.tmp)" = victim ]

