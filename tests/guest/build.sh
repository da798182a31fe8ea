#!/bin/sh
# Build the test guest's base image from Debian packages only, without root mounts:
#   OUT/base.qcow2  a FAT "superfloppy" that BIOS boots through syslinux into Debian's kernel
#                   and a busybox initramfs running tests/guest/init.
# usage: build.sh OUT   (needs linux-image-amd64's package, busybox-static, syslinux, mtools,
#                        dosfstools, cpio, qemu-utils; see tests/guest/run.sh)
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Debian's kernel, unpacked rather than installed (nothing lands in /boot). The package
# contains no modules.dep: busybox's depmod writes it.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'
}
KPKG=$(kernel_package)
[ -n "$KPKG" ] || { apt-get update -qq && KPKG=$(kernel_package); }
# Up to date while built from this kernel package and these scripts.
SCRIPTS=$(cat "$HERE/build.sh" "$HERE/init" | md5sum | cut -d' ' -f1)
if [ -f "$OUT/base.qcow2" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$KPKG $SCRIPTS" ]; then
  echo "guest image up to date ($OUT/base.qcow2)"
  exit 0
fi
KROOT=$OUT/kernel/$KPKG
if [ ! -f "$KROOT/done" ]; then
  rm -rf "$OUT/kernel" && mkdir -p "$KROOT"
  # Stale package lists name a kernel the mirror no longer has: refresh them once.
  (cd "$OUT/kernel" && apt-get download -qq "$KPKG" 2>/dev/null) || {
    apt-get update -qq
    KPKG=$(kernel_package)
    KROOT=$OUT/kernel/$KPKG
    mkdir -p "$KROOT"
    (cd "$OUT/kernel" && apt-get download -qq "$KPKG" 2>/dev/null)
  }
  dpkg-deb -x "$OUT/kernel/$KPKG"_*.deb "$KROOT"
  rm -f "$OUT/kernel/$KPKG"_*.deb
  busybox depmod -b "$KROOT" "$(ls "$KROOT/lib/modules")"
  touch "$KROOT/done"
fi
MODULES=$(echo "$KROOT"/lib/modules/*)

# The modules the guest needs (seed cdrom on SATA, its filesystem, network, balloon, power
# button, disk) and all they depend on, dependencies first: modules.dep lists a module's
# dependencies in full, so a module is ready to load once every one it lists is loaded.
WANT="ahci sr_mod isofs virtio_pci virtio_net virtio_blk virtio_balloon button evdev"
ORDER=$(awk -v want="$WANT" '
  { name = $1; sub(":$", "", name); path[base(name)] = name; deps[base(name)] = ""
    for (i = 2; i <= NF; i++) deps[base(name)] = deps[base(name)] " " base($i) }
  function base(p) { sub(".*/", "", p); sub("\\.ko.*", "", p); return p }
  function add(m,   n, d, i) { if ((m in need) || !(m in path)) return; need[m] = 1
    n = split(deps[m], d, " "); for (i = 1; i <= n; i++) add(d[i]) }
  END {
    n = split(want, w, " "); for (i = 1; i <= n; i++) add(w[i])
    do { progress = 0
      for (m in need) { if (m in done) continue; ok = 1
        k = split(deps[m], d, " "); for (j = 1; j <= k; j++) if (!(d[j] in done)) ok = 0
        if (ok) { done[m] = 1; progress = 1; print path[m] } }
    } while (progress)
  }' "$MODULES/modules.dep")

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/root/bin" "$W/root/lib/modules" "$W/root/proc" "$W/root/sys" "$W/root/dev"
cp /bin/busybox "$W/root/bin/busybox"
cp "$HERE/init" "$W/root/init"
chmod 755 "$W/root/init"
for module in $ORDER; do
  cp "$MODULES/$module" "$W/root/lib/modules/"
  basename "$module" >>"$W/root/lib/modules/load-order"
done
(cd "$W/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.gz"

# The boot disk: FAT on the whole disk (no partition table), syslinux in its boot sector,
# written with mtools so nothing is mounted.
cat >"$W/syslinux.cfg" <<'CFG'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 quiet panic=-1
CFG
mkfs.vfat -C -n VPSGUEST "$W/disk.raw" 32768 >/dev/null
syslinux --install "$W/disk.raw"
cp "$KROOT"/boot/vmlinuz-* "$W/vmlinuz"
mcopy -i "$W/disk.raw" "$W/vmlinuz" "$W/initrd.gz" "$W/syslinux.cfg" ::/
qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$OUT/base.qcow2.new"
mv "$OUT/base.qcow2.new" "$OUT/base.qcow2"
echo "$KPKG $SCRIPTS" >"$OUT/stamp"
echo "built $OUT/base.qcow2 ($KPKG; modules: $(echo "$ORDER" | wc -l))"
