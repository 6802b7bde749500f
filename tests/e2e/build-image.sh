#!/usr/bin/env bash
# Build (once per machine) the e2e guest: a small Debian 12 system made
# from Debian packages with debootstrap, in a raw ext4 image with its
# kernel and initramfs beside it for QEMU's direct kernel boot.
#
#   tests/e2e/build-image.sh      prints the directory holding
#                                 disk.img, vmlinuz and initrd.img
#
# The result is cached in $NBDSHADOW_E2E_CACHE (default
# /var/cache/nbdshadow-e2e, or ~/.cache/nbdshadow-e2e when that is not
# writable) under a hash of the recipe: this script, the guest's files and
# the apt mirror.  Changing any of them builds a new image; an unchanged
# recipe costs nothing.  Packages come from the machine's own configured
# apt mirror (read from the apt sources), never a hard-coded host.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
suite=bookworm
image_size=1G
cold_mb_each=64
packages=systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,gcc,libc6-dev,make,sqlite3
# Kernel modules kept in the guest (the rest of the packaged kernel's
# ~400 MB of modules are drivers a virtio guest never loads).
keep_modules="drivers/virtio drivers/block/virtio_blk.ko drivers/char/hw_random fs/ext4 fs/jbd2 fs/mbcache.ko lib crypto arch"

log () { echo "build-image: $*" >&2; }

# apt_mirror: the first configured Debian mirror serving $suite main,
# from deb822 .sources files or one-line sources.list entries.
apt_mirror ()
{
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '
            function flush () {
                if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") &&
                    comps ~ /(^| )main( |$)/ && uri != "") { print uri; found = 1; exit }
                types = suites = comps = uri = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
            /^URIs:/ { uri = $2 }
            END { if (!found) flush() }' "$f"
    done
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || :; } |
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
        awk -v suite="$suite" '$1 == "deb" && $3 == suite {
            for (i = 4; i <= NF; i++) if ($i == "main") print $2 }'
}

mirror="$(apt_mirror | sed -n 1p)"
if [ -z "$mirror" ]; then
    echo "build-image: no apt source for Debian $suite main in /etc/apt/sources.list{,.d}" >&2
    exit 1
fi

recipe_hash="$( { cat "$0"; echo "$mirror"
                  (cd "$here/guest" && find . -type f | LC_ALL=C sort | xargs cat); } |
                sha256sum | cut -c1-16)"
cache="${NBDSHADOW_E2E_CACHE:-/var/cache/nbdshadow-e2e}"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/nbdshadow-e2e"
    mkdir -p "$cache"
fi
out="$cache/$recipe_hash"
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi

# One builder per machine; a second one waits, then finds the image built.
exec 9> "$cache/lock"
flock 9
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi

for tool in debootstrap mkfs.ext4 chroot; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
    command -v "$tool" >/dev/null || { echo "build-image: $tool is missing" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "build-image: debootstrap needs root" >&2; exit 1
fi

work="$(mktemp -d "$cache/build.XXXXXX")"
root="$work/root"
cleanup () { umount "$root/proc" 2>/dev/null || :; rm -rf "$work"; }
trap cleanup EXIT

log "debootstrap $suite from $mirror into $work (recipe $recipe_hash)"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

kver="$(basename "$(ls -d "$root"/lib/modules/* | head -n 1)")"
log "kernel $kver"

# Guest configuration: root is the whole virtio disk; no network; a fixed
# machine id so that every boot of a fresh copy does the same work; timers
# that would fire at random during a run are masked.
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" > "$root/etc/fstab"
echo nbdshadow-guest > "$root/etc/hostname"
echo 3f6d9a2c5b8e4f0a9c1d2e3f4a5b6c7d > "$root/etc/machine-id"
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
            man-db.timer systemd-tmpfiles-clean.timer dpkg-db-backup.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
install -m 0755 "$here/guest/nbdshadow-workload" "$root/usr/local/sbin/nbdshadow-workload"
install -m 0644 "$here/guest/nbdshadow-workload.service" \
    "$root/etc/systemd/system/nbdshadow-workload.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../nbdshadow-workload.service \
    "$root/etc/systemd/system/multi-user.target.wants/nbdshadow-workload.service"
mkdir -p "$root/opt/nbdshadow"
cp -r "$here/guest/src" "$root/opt/nbdshadow/src"
# The unpack workload's archive: many small files, as a package holds.
tar -czf "$root/opt/nbdshadow/payload.tar.gz" -C "$root/usr/share" perl5 zoneinfo
# Cold data no workload reads, as a real disk holds: the background copy
# must move it too, and a good order moves it after what the guest needs.
mkdir -p "$root/srv/archive"
for i in 1 2 3 4 5; do
    head -c "$cold_mb_each"M /dev/urandom > "$root/srv/archive/cold$i.bin"
done

# A small initramfs holding just what finds the root disk.
printf '%s\n' virtio_pci virtio_blk ext4 > "$root/etc/initramfs-tools/modules"
echo MODULES=list > "$root/etc/initramfs-tools/conf.d/nbdshadow"
keep="$work/keep"
mkdir "$keep"
for m in $keep_modules; do
    if [ -e "$root/lib/modules/$kver/kernel/$m" ]; then
        mkdir -p "$keep/$(dirname "$m")"
        mv "$root/lib/modules/$kver/kernel/$m" "$keep/$m"
    fi
done
rm -rf "$root/lib/modules/$kver/kernel"
mv "$keep" "$root/lib/modules/$kver/kernel"
mount -t proc proc "$root/proc"
chroot "$root" depmod -a "$kver"
chroot "$root" update-initramfs -c -k "$kver" > "$work/initramfs.log" 2>&1 ||
    { cat "$work/initramfs.log" >&2; exit 1; }
umount "$root/proc"

mkdir -p "$work/out"
cp "$root/boot/vmlinuz-$kver" "$work/out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/out/initrd.img"
# Drop what the guest never reads: apt's package lists and caches, docs.
rm -rf "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
    "$root/var/lib/apt/lists/"* "$root/usr/share/doc/"* "$root/usr/share/man/"* \
    "$root/boot/"*
truncate -s "$image_size" "$work/out/disk.img"
mkfs.ext4 -q -F -L nbdshadow-e2e -d "$root" "$work/out/disk.img"
e2fsck -fn "$work/out/disk.img" >&2
echo "mirror=$mirror suite=$suite kernel=$kver recipe=$recipe_hash" > "$work/out/recipe"
touch "$work/out/done"
rm -rf "$out"
mv "$work/out" "$out"
# Images of older recipes are never used again.
find "$cache" -mindepth 1 -maxdepth 1 -type d -name '????????????????' \
    ! -name "$recipe_hash" -exec rm -rf {} +
log "built $out ($(du -h --apparent-size "$out/disk.img" | cut -f1) raw," \
    "$(du -h "$out/disk.img" | cut -f1) allocated)"
echo "$out"
