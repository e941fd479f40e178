#!/bin/busybox sh
# powercut guest init (PID 1). Built into the initramfs by `powercut image build`.
# 1. mounts the kernel file systems, loads the modules listed in /etc/powercut/modules
# 2. turns the raw NVDIMM namespace into an fsdax (pfn) namespace if it is not one yet
#    (raw pmem does not support DAX on 6.12; the pfn info block lives in the pmem file,
#    so later boots find it)
# 3. brings up user-mode networking and dropbear; the host does the rest over SSH.
# Console lines starting with "powercut:" are read by the host (see harness/src/vm); a line
# starting with "powercut: fatal:" makes the host stop the boot at once with that line.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp /run /mnt /var/log
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 > /proc/sys/kernel/panic_on_oops
hostname powercut

fatal() { echo "powercut: fatal: $*"; }

# Every module listed is needed (the host planned them from the kernel's config).
while read -r m; do
  [ -n "$m" ] || continue
  out=$(insmod "/lib/modules/$m" 2>&1) || fatal "insmod $m failed: $out"
done < /etc/powercut/modules

# Wait for the NVDIMM (nfit and nd_pmem probe asynchronously).
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ ! -b /dev/pmem0 ]; then
  fatal "no /dev/pmem0: the kernel found no NVDIMM (ACPI NFIT, LIBNVDIMM, BLK_DEV_PMEM; -device nvdimm on the QEMU command line?)"
elif [ "$(cat /sys/block/pmem0/queue/dax 2>/dev/null)" != 1 ]; then
  # A raw namespace (fresh pmem file): turn it into fsdax. Later boots on a copy of this
  # file find the pfn info block and come up with DAX directly.
  echo namespace0.0 > /sys/bus/nd/drivers/nd_pmem/unbind 2>/dev/null
  pfn=$(cat /sys/bus/nd/devices/region0/pfn_seed)
  echo 8e3c5a1e-5d3b-4c8a-9a77-1f0c0ffee001 > /sys/bus/nd/devices/$pfn/uuid
  echo 2097152 > /sys/bus/nd/devices/$pfn/align
  echo ram > /sys/bus/nd/devices/$pfn/mode
  echo namespace0.0 > /sys/bus/nd/devices/$pfn/namespace
  echo $pfn > /sys/bus/nd/drivers/nd_pmem/bind || echo "powercut: binding $pfn failed"
  echo "powercut: configured fsdax namespace $pfn (mode ram)"
  i=0
  while [ "$(cat /sys/block/pmem0/queue/dax 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
fi
dax=$(cat /sys/block/pmem0/queue/dax 2>/dev/null)
echo "powercut: pmem0 dax=$dax"
[ ! -b /dev/pmem0 ] || [ "$dax" = 1 ] || fatal "/dev/pmem0 has no DAX (needs FS_DAX, ZONE_DEVICE and NVDIMM_PFN for the fsdax namespace)"

ip link set lo up
[ -e /sys/class/net/eth0 ] || fatal "no network device eth0 (virtio_net and virtio_pci, built in or loaded?): the host cannot reach the guest"
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
chmod 700 /root /root/.ssh
chmod 600 /root/.ssh/authorized_keys
mkdir -p /etc/dropbear
dropbear -R -s -p 22 2>/var/log/dropbear.log || echo "powercut: dropbear failed to start"
echo "powercut: ready"

# PID 1 must never exit; reap orphans and stay up until the host powers us off.
while true; do sleep 3600; done
