#!/bin/sh -
# conf/libvirt-domain.xml is a valid libvirt domain (libvirt's own
# schema, virt-xml-validate), and its disk is conf/libvirt-disk.xml's: the
# walk-through in docs/MIGRATING.md points at both.
. ./functions.sh
requires virt-xml-validate --version
conf="$abs_top_srcdir/conf"
virt-xml-validate "$conf/libvirt-domain.xml" domain
disk_of () { sed -n '/<disk /,/<\/disk>/{s/^ *//;p}' "$1"; }
disk_of "$conf/libvirt-disk.xml" > "$tmpdir/disk"
disk_of "$conf/libvirt-domain.xml" > "$tmpdir/domain-disk"
[ -s "$tmpdir/disk" ] && diff "$tmpdir/disk" "$tmpdir/domain-disk"
