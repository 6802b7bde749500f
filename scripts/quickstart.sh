#!/usr/bin/env bash
# nbdshadow quick start: install what is needed (Debian 12, as root),
# build, then either run a demonstration migration or the test suite.
#
#   scripts/quickstart.sh demo    install, build, migrate a demo disk
#   scripts/quickstart.sh test    install, build, run the whole test suite
#                                 (plain, a short run of each fuzz target,
#                                 under ASan+UBSan, valgrind, and a real
#                                 guest migrating)
#
# Set NBDSHADOW_SKIP_INSTALL=1 to skip the apt-get step.
set -euo pipefail

cd "$(dirname "$0")/.."
what="${1:-}"
case "$what" in
    demo|test) ;;
    -h|--help)
        sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *)
        echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

# Build and test dependencies, all Debian 12 packages.
packages=(
    build-essential autoconf automake libtool pkg-config perl
    nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin python3-libnbd
    libev-dev libhiredis-dev libsvm-dev libssl-dev
    redis-server qemu-utils fio gnutls-bin valgrind
    clang libclang-rt-14-dev
    debootstrap qemu-system-x86 e2fsprogs libvirt-clients iproute2
)

install_deps ()
{
    if [ -n "${NBDSHADOW_SKIP_INSTALL:-}" ]; then return; fi
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing: ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
            echo "$0: installing packages needs root (or set NBDSHADOW_SKIP_INSTALL=1)" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

build ()
{
    echo "== building"
    [ -x configure ] || ./autogen.sh >/dev/null
    [ -f Makefile ] || ./configure -q
    make -j"$(nproc)" >/dev/null
}

install_deps
build
case "$what" in
    demo) exec scripts/demo.sh ;;
    test)
        echo "== make check"
        make -j"$(nproc)" check
        echo "== make fuzz (each libFuzzer target for 12 s)"
        make fuzz FUZZ_SECONDS=12 FUZZ_JOBS="$(nproc)"
        echo "== make check-sanitizers (ASan + UBSan)"
        make check-sanitizers
        echo "== make check-valgrind (the filter's integration tests)"
        make check-valgrind
        echo "== make check-e2e (a Debian guest under QEMU migrates)"
        make check-e2e
        ;;
esac
