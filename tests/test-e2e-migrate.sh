#!/bin/bash -
# A real VM migrates: a Debian 12 guest (tests/e2e/build-image.sh) boots
# under QEMU from the destination's shadow filter while its disk is
# copied from a source behind a 100 Mbit/s, 5 ms link, the copy ordered
# by a model trained on a recorded run of the same workload
# (traces/e2e-WORKLOAD-run1.csv).  The guest must reach multi-user and
# finish its workload with no I/O error; once the copy is complete the
# source is killed; then the shadow's file system is clean (e2fsck -fn),
# the export read back equals the shadow file, and the guest boots again
# from the completed shadow with the source gone.  The point of it all:
# the guest reaches multi-user while its disk is still being copied.
#
# E2E_WORKLOAD (default boot), E2E_POLICY (default predict), E2E_RATE,
# E2E_DELAY choose the run.
. ./functions.sh
. "$abs_top_srcdir/tests/e2e/e2e-lib.sh"
requires qemu-system-x86_64 --version
requires nbdcopy --version
requires e2fsck -V
requires test -x /usr/sbin/debootstrap -o -n "${NBDSHADOW_E2E_CACHE:-}"
e2e_image || { echo "$0: test skipped: the guest image could not be built"; exit 77; }

workload="${E2E_WORKLOAD:-boot}"
policy="${E2E_POLICY:-predict}"
model=()
if [ "$policy" != none ] && [ "$policy" != sequential ]; then
    "$NBDSHADOW" train --trace "$TRACES/e2e-$workload-run1.csv" -o "$tmpdir/model" > /dev/null
    model=(shadow-model="$tmpdir/model")
fi

e2e_migrate vm "$workload" "$policy" "${E2E_RATE:-100M}" "${E2E_DELAY:-5ms}" "${model[@]}"
echo "$0: $workload $policy: $e2e_result"
case "$e2e_result" in
    *multi-user-before-complete=yes*) ;;
    *) echo "$0: FAIL: the guest reached multi-user only after the copy was complete"
       exit 1 ;;
esac
e2e_reboot_from_shadow vm
