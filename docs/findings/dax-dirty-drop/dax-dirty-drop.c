// SPDX-License-Identifier: MIT
/*
 * dax-dirty-drop: store through a shared DAX mapping, run one file operation that does not
 * touch the stored pages, then ask for durability; around the durability call it writes
 * markers into the ftrace buffer, so a function trace shows whether the kernel wrote the
 * stored cache lines back (dax_writeback_mapping_range -> dax_flush) or did nothing.
 *
 *   dax-dirty-drop [--map-sync] FILE TRIGGER [OP]
 *
 * FILE is created on a -o dax mount and ftruncated to 256 KiB; 8 KiB at 64 KiB are stored
 * with 0xab through mmap(MAP_SHARED) (--map-sync: MAP_SHARED_VALIDATE|MAP_SYNC, after an
 * fsync of the new file, so the store faults allocate blocks synchronously).
 * TRIGGER: none | ftruncate-up (to 300000) | ftruncate-down (to 192 KiB) |
 *          punch-hole | zero-range | allocate (fallocate of [160 KiB, +4 KiB)).
 * OP: fsync (default) | fdatasync | msync (MS_SYNC of the stored range) | sync.
 * Markers: "dax-dirty-drop: OP begin" and "... end" in /sys/kernel/debug/tracing/trace_marker.
 * Exit 0 when every call succeeded (EOPNOTSUPP of a trigger is reported, exit 3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

enum { FILE_SIZE = 256 << 10, STORE_OFF = 64 << 10, STORE_LEN = 8 << 10, MAP_LEN = 320 << 10 };

static void marker(const char *op, const char *what)
{
	char line[128];
	int fd = open("/sys/kernel/debug/tracing/trace_marker", O_WRONLY);

	if (fd < 0)
		return; /* not traced: the program still runs */
	snprintf(line, sizeof(line), "dax-dirty-drop: %s %s\n", op, what);
	if (write(fd, line, strlen(line)) < 0)
		perror("trace_marker");
	close(fd);
}

static int fail(const char *what)
{
	fprintf(stderr, "dax-dirty-drop: %s: %s\n", what, strerror(errno));
	return errno == EOPNOTSUPP ? 3 : 1;
}

static int trigger(int fd, const char *t)
{
	off_t hole = 160 << 10;

	if (!strcmp(t, "none"))
		return 0;
	if (!strcmp(t, "ftruncate-up"))
		return ftruncate(fd, 300000);
	if (!strcmp(t, "ftruncate-down"))
		return ftruncate(fd, 192 << 10);
	if (!strcmp(t, "punch-hole"))
		return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, hole, 4096);
	if (!strcmp(t, "zero-range"))
		return fallocate(fd, FALLOC_FL_ZERO_RANGE, hole, 4096);
	if (!strcmp(t, "allocate"))
		return fallocate(fd, 0, hole, 4096);
	fprintf(stderr, "dax-dirty-drop: unknown trigger %s\n", t);
	exit(2);
}

int main(int argc, char **argv)
{
	int map_sync = argc > 1 && !strcmp(argv[1], "--map-sync");
	char **arg = argv + 1 + map_sync;
	int nargs = argc - 1 - map_sync;
	const char *op;
	char *p;
	int fd, r;

	if (nargs < 2 || nargs > 3) {
		fprintf(stderr, "usage: dax-dirty-drop [--map-sync] FILE TRIGGER [fsync|fdatasync|msync|sync]\n");
		return 2;
	}
	op = nargs == 3 ? arg[2] : "fsync";
	if (strcmp(op, "fsync") && strcmp(op, "fdatasync") && strcmp(op, "msync") && strcmp(op, "sync")) {
		fprintf(stderr, "dax-dirty-drop: unknown op %s\n", op);
		return 2;
	}
	fd = open(arg[0], O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd < 0)
		return fail("open");
	if (ftruncate(fd, FILE_SIZE))
		return fail("ftruncate");
	if (map_sync && fsync(fd))
		return fail("fsync of the new file");
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE,
		 map_sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	memset(p + STORE_OFF, 0xab, STORE_LEN);
	if (trigger(fd, arg[1]))
		return fail(arg[1]);
	marker(op, "begin");
	if (!strcmp(op, "fsync"))
		r = fsync(fd);
	else if (!strcmp(op, "fdatasync"))
		r = fdatasync(fd);
	else if (!strcmp(op, "msync"))
		r = msync(p + STORE_OFF, STORE_LEN, MS_SYNC);
	else
		r = (sync(), 0);
	marker(op, "end");
	if (r)
		return fail(op);
	printf("stored [%d, %d) %s, %s, %s: ok\n", STORE_OFF, STORE_OFF + STORE_LEN,
	       map_sync ? "through MAP_SYNC" : "through MAP_SHARED", arg[1], op);
	return 0;
}
