// SPDX-License-Identifier: GPL-2.0
/*
 * powercut_mutant - put known DAX durability bugs back into a stock kernel
 *
 * powercut has to show that it catches real crash-consistency bugs, and the
 * stock kernel has none it can find (it must get zero kernel-bug verdicts).
 * This module adds bugs on purpose, while it runs: each "mutant" makes one
 * kernel function return at once, without doing its work, so a write that
 * fsync() said was durable can be lost in a crash.
 *
 *   insmod powercut_mutant.ko mutants=m3          # or mutants=m1,m4
 *   cat  /sys/module/powercut_mutant/parameters/stats
 *   echo 0 > /sys/module/powercut_mutant/parameters/armed   # pass through
 *
 * Technique
 * ---------
 * Debian builds with CONFIG_FUNCTION_ERROR_INJECTION=n, so fail_function,
 * bpf_override_return() and override_function_with_return() are not there.
 * This module does the same thing by hand with a kprobe:
 *
 *  1. The kprobe goes on the function entry (symbol_name, offset 0). On x86
 *     with IBT, kprobes moves it past ENDBR64 to the __fentry__ call site.
 *     With CONFIG_KPROBES_ON_FTRACE it becomes an ftrace-based probe. The
 *     function has not run any instruction yet, so nothing has been pushed
 *     and *(unsigned long *)regs->sp is the caller's return address. The
 *     probe is registered disabled and only enabled after the module has
 *     checked that it really sits at the entry (offset 0, or 4 past ENDBR64).
 *
 *  2. The pre-handler puts the return value in regs->ax, sets regs->ip to
 *     ret_stub (a `ret` below), and returns 1 ("I changed regs->ip, do not
 *     single-step"). The ftrace/int3 exit path resumes at ret_stub, which
 *     pops the caller's return address: the function "returned" at once.
 *     (Changing regs->sp instead is not applied on the ftrace path, so the
 *     stub is needed.) An empty post_handler is set too, so the probe is
 *     never jump-optimized and ftrace knows it modifies the ip.
 *
 *  3. Caller filtering: look up the symbol at the return address with
 *     sprint_symbol_no_offset() (kallsyms). Use ret - 1, so the lookup lands
 *     in the call instruction even when the call is the caller's last
 *     instruction. A mutant fires only when the caller is the one expected.
 *     So a bug is put into one path only (e.g. fsync), and the same function
 *     still works on every other path (mount, journal, other file systems).
 *     A tail call (jmp) leaves no return address of its own, so the "caller"
 *     is then whoever called the function that made the tail call.
 *
 * The mutants (all return 0, i.e. "success")
 * -----------------------------------------
 *  m1  dax_flush(), only when called from dax_writeback_mapping_range()
 *      fsync/msync on a DAX file no longer writes back the CPU cache lines
 *      of data dirtied through mmap (arch_wb_cache_pmem / clwb is skipped).
 *      The data is still in the CPU cache: only the cache crash model, which
 *      tracks cache lines, can lose it.
 *  m2  dax_writeback_mapping_range(), only from ext4_dax_writepages()
 *      DAX writeback does nothing: the dirty tags stay set and no cache line
 *      is flushed. Caught by the cache model only.
 *  m3  ext4_fc_commit(), only from ext4_sync_file()
 *      ext4 fsync returns without the jbd2 commit, so metadata (new file,
 *      size, block map) is only made durable by the next periodic commit
 *      (commit=5 s by default). Caught by the snapshot model if the crash
 *      comes before that commit.
 *  m4  nvdimm_flush(), only from pmem_submit_bio()
 *      REQ_PREFLUSH / REQ_FUA bios on pmem lose their final fence
 *      (pmem_wmb / sfence, and the WPQ flush if there is a flush hint).
 *      Stores can still be in flight. Caught by the cache model only.
 *  m5  ext4_sync_file(), from any caller
 *      ext4 fsync/fdatasync/msync(MS_SYNC) does nothing at all. Caught by
 *      the snapshot model.
 *  m6  xfs_log_force_seq(), only from xfs_file_fsync()
 *      xfs fsync returns without forcing the log: the transactions that
 *      allocated the file's blocks, set its size or created it stay in the
 *      in-memory CIL until the next background push (30 s) or an unrelated
 *      log force. xfs_fsync_flush_log() is the caller in the source; it is
 *      static and inlined into xfs_file_fsync() on 6.12, and is listed in
 *      case another build keeps it out of line. Directory fsync
 *      (xfs_dir_fsync -> xfs_log_force_inode) and sync() (xfs_log_force)
 *      still force the log. Caught by the snapshot model.
 *  m7  xfs_dax_writepages(), from any caller
 *      xfs DAX writeback does nothing: fsync/msync on an xfs DAX file no
 *      longer writes back the CPU cache lines of data dirtied through mmap.
 *      It tail-calls dax_writeback_mapping_range(), so an m2-style caller
 *      filter cannot see xfs; the xfs function itself is the target.
 *      Caught by the cache model only.
 *
 *  m8  ext4_sync_file(), from any caller: runs, but with datasync = 1
 *      ext4 fsync (and an O_SYNC / RWF_SYNC write, which fsyncs through
 *      vfs_fsync_range with datasync = 0) commits only what fdatasync would:
 *      ext4_fsync_journal() waits for i_datasync_tid, not i_sync_tid, so a
 *      chmod, setxattr or utimensat since the last data change stays in the
 *      running transaction until the next periodic commit. This mutant does
 *      not return early: the pre-handler sets the fourth argument register
 *      (rcx, `datasync`) to 1 and lets the function run; `hits` counts the
 *      calls it changed (datasync was 0). Caught by the snapshot model with
 *      a long commit interval (powercut mounts with commit=600).
 *  m9  vfs_fsync_range(), only from ext4_file_write_iter() or
 *      xfs_file_dax_write()
 *      The per-write sync of an O_DSYNC/O_SYNC descriptor or an
 *      RWF_DSYNC/RWF_SYNC pwritev2 (generic_write_sync(), inline, calls
 *      vfs_fsync_range() after the DAX copy) is skipped: the write returns
 *      with its block allocation and size still in the journal / CIL. On
 *      6.12 ext4_dax_write_iter() is inlined into ext4_file_write_iter() and
 *      xfs_file_dax_write() stays out of line; both make a real `call`, not
 *      a tail call (objdump -dr of ext4.ko / xfs.ko). Caught by the snapshot
 *      model when the write allocates.
 *
 * Why the snapshot model (the disk image at the crash point) misses m1, m2
 * and m4: QEMU has no CPU cache model, so every store reaches the backing
 * memory at once, flush or no flush. Those three only show up when a
 * cache-line-accurate model drops the stores that were not flushed.
 *
 * ext4_fc_commit, ext4_sync_file, ext4_dax_writepages live in ext4.ko,
 * xfs_log_force_seq, xfs_file_fsync and xfs_dax_writepages in xfs.ko,
 * pmem_submit_bio in nd_pmem.ko and nvdimm_flush in libnvdimm.ko. Those
 * modules must be loaded before this one, or register_kprobe() fails with
 * -ENOENT. dax_flush and dax_writeback_mapping_range are built in.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/objtool.h>
#include <linux/ratelimit.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/ibt.h>
#include <asm/linkage.h>

/* Linux before 6.2 (Debian 12's 6.1) has no ASM_FUNC_ALIGN. */
#ifndef ASM_FUNC_ALIGN
#define ASM_FUNC_ALIGN ".balign 16"
#endif

/*
 * The stub the pre-handler sends execution to: a bare return. ASM_RET is
 * `jmp __x86_return_thunk` on this kernel (MITIGATION_RETHUNK), and objtool
 * records it like any other return site. Nothing calls the stub or jumps to
 * it indirectly: the kprobe exit path returns to it. So it has no ENDBR64,
 * and ANNOTATE_NOENDBR tells objtool that is on purpose. (In 7.3, that
 * macro ends in `.popsection` without a newline, so one follows it here.)
 */
void powercut_mutant_ret_stub(void);
asm(".pushsection .text, \"ax\"\n"
    ".type powercut_mutant_ret_stub, @function\n"
    ASM_FUNC_ALIGN "\n"
    "powercut_mutant_ret_stub:\n\t"
    ANNOTATE_NOENDBR "\n\t"
    ASM_RET
    ".size powercut_mutant_ret_stub, .-powercut_mutant_ret_stub\n"
    ".popsection\n");

#define MAX_CALLERS 4

struct mutant {
	const char *name;
	const char *target;		  /* function made to return at once */
	const char *callers[MAX_CALLERS]; /* fire only from these; none: any */
	unsigned long retval;		  /* value put in rax */
	bool force_datasync;		  /* run it, with the 4th argument (rcx) set to 1 */
	const char *effect;

	/* run-time state */
	bool registered;
	struct kprobe kp;
	atomic_long_t calls;		  /* every entry into target */
	atomic_long_t hits;		  /* entries that were skipped */
	struct ratelimit_state fire_rs;	  /* "fired" log lines */
	struct ratelimit_state pass_rs;	  /* "passed" log lines (verbose) */
};

static struct mutant mutant_table[] = {
	{
		.name = "m1", .target = "dax_flush",
		/*
		 * dax_writeback_one() is the real caller in the source. It is
		 * static, is only called from dax_writeback_mapping_range(),
		 * and is inlined there on 6.12. It is listed in case another
		 * build keeps it out of line.
		 */
		.callers = { "dax_writeback_mapping_range", "dax_writeback_one" },
		.effect = "DAX fsync/msync skips CPU-cache writeback of mmap-dirtied data",
	},
	{
		.name = "m2", .target = "dax_writeback_mapping_range",
		.callers = { "ext4_dax_writepages" },
		.effect = "ext4 DAX writeback is a no-op (dirty tags stay, nothing flushed)",
	},
	{
		.name = "m3", .target = "ext4_fc_commit",
		.callers = { "ext4_sync_file" },
		.effect = "ext4 fsync returns without the jbd2 commit",
	},
	{
		.name = "m4", .target = "nvdimm_flush",
		.callers = { "pmem_submit_bio" },
		.effect = "pmem PREFLUSH/FUA lose the final fence (pmem_wmb)",
	},
	{
		.name = "m5", .target = "ext4_sync_file",
		.callers = { },
		.effect = "ext4 fsync/msync is a no-op",
	},
	{
		.name = "m6", .target = "xfs_log_force_seq",
		/*
		 * xfs_fsync_flush_log() is the caller in the source: static,
		 * only called from xfs_file_fsync(), and inlined there on 6.12.
		 */
		.callers = { "xfs_file_fsync", "xfs_fsync_flush_log" },
		.effect = "xfs fsync returns without forcing the log",
	},
	{
		.name = "m7", .target = "xfs_dax_writepages",
		.callers = { },
		.effect = "xfs DAX writeback is a no-op (dirty tags stay, nothing flushed)",
	},
	{
		.name = "m8", .target = "ext4_sync_file",
		.callers = { },
		.force_datasync = true,
		.effect = "ext4 fsync commits only what fdatasync does (metadata-only changes stay uncommitted)",
	},
	{
		.name = "m9", .target = "vfs_fsync_range",
		/*
		 * generic_write_sync() is inline; ext4_dax_write_iter() is
		 * static and inlined into ext4_file_write_iter() on 6.12, and
		 * xfs_file_dax_write() is out of line. The other two names
		 * cover builds that inline differently.
		 */
		.callers = { "ext4_file_write_iter", "ext4_dax_write_iter",
			     "xfs_file_dax_write", "xfs_file_write_iter" },
		.effect = "O_DSYNC/O_SYNC and RWF_DSYNC/RWF_SYNC writes skip their sync",
	},
};

static char *mutants = "";
module_param(mutants, charp, 0444);
MODULE_PARM_DESC(mutants, "comma-separated list of mutants to arm: m1..m9 (e.g. \"m3\" or \"m1,m4\")");

static bool armed = true;
module_param(armed, bool, 0644);
MODULE_PARM_DESC(armed, "run-time switch: 0 = probes only count calls, 1 = mutants fire (default 1)");

static bool verbose;
module_param(verbose, bool, 0644);
MODULE_PARM_DESC(verbose, "also log probe placement and the calls that were let through (rate-limited)");

/* Fire lines, and pass-through lines, each: at most 5 per 5 s per mutant. */
#define LOG_INTERVAL	(5 * HZ)
#define LOG_BURST	5

static bool caller_matches(const struct mutant *m, unsigned long ret)
{
	char sym[KSYM_SYMBOL_LEN];
	int i;

	/* "name" or "name [module]"; gcc clones look like "name.isra.0" */
	sprint_symbol_no_offset(sym, ret - 1);
	for (i = 0; i < MAX_CALLERS && m->callers[i]; i++) {
		size_t n = strlen(m->callers[i]);

		if (!strncmp(sym, m->callers[i], n) &&
		    (sym[n] == '\0' || sym[n] == ' ' || sym[n] == '.'))
			return true;
	}
	return false;
}

static int mutant_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct mutant *m = container_of(kp, struct mutant, kp);
	/* Probe is at function entry: the top of the stack is the return address. */
	unsigned long ret = *(unsigned long *)regs->sp;
	const char *why;
	long hit;

	atomic_long_inc(&m->calls);

	if (!READ_ONCE(armed))
		why = "disarmed";
	else if (m->callers[0] && !caller_matches(m, ret))
		why = "other caller";
	else
		why = NULL;

	if (why) {
		if (READ_ONCE(verbose) && __ratelimit(&m->pass_rs))
			pr_info("%s passed: %s() ran normally (%s), caller %pB\n",
				m->name, m->target, why, (void *)ret);
		return 0;	/* let the function run */
	}

	if (m->force_datasync) {
		/* Run the function; only a call with datasync = 0 is changed. */
		if (regs->cx == 0) {
			hit = atomic_long_inc_return(&m->hits);
			if (__ratelimit(&m->fire_rs))
				pr_info("%s fired #%ld: %s() runs with datasync=1, caller %pB\n",
					m->name, hit, m->target, (void *)ret);
			regs->cx = 1;
		}
		return 0;
	}

	hit = atomic_long_inc_return(&m->hits);
	if (__ratelimit(&m->fire_rs))
		pr_info("%s fired #%ld: %s() skipped, caller %pB\n",
			m->name, hit, m->target, (void *)ret);

	regs->ax = m->retval;
	regs->ip = (unsigned long)powercut_mutant_ret_stub;
	return 1;	/* regs->ip was changed: do not resume the function */
}
NOKPROBE_SYMBOL(mutant_pre);

/*
 * Empty on purpose. Having a post_handler (1) keeps kprobes from turning the
 * probe into a jump-optimized one, which would ignore the new regs->ip, and
 * (2) makes an ftrace-based probe use ftrace ops with IPMODIFY set, which
 * tells ftrace that this probe changes the ip. See "Changing Execution Path"
 * and "Optimization" in Documentation/trace/kprobes.rst. It only runs when
 * the pre-handler returned 0 (call let through).
 */
static void mutant_post(struct kprobe *kp, struct pt_regs *regs, unsigned long flags)
{
}
NOKPROBE_SYMBOL(mutant_post);

/* /sys/module/powercut_mutant/parameters/stats: "m1 calls=N hits=N" per armed mutant */
static int stats_get(char *buf, const struct kernel_param *kp)
{
	int i, len = 0;

	for (i = 0; i < ARRAY_SIZE(mutant_table); i++) {
		struct mutant *m = &mutant_table[i];

		if (!m->registered)
			continue;
		len += scnprintf(buf + len, PAGE_SIZE - len, "%s calls=%ld hits=%ld\n",
				 m->name, atomic_long_read(&m->calls),
				 atomic_long_read(&m->hits));
	}
	return len;
}

static const struct kernel_param_ops stats_ops = {
	.get = stats_get,
};
module_param_cb(stats, &stats_ops, NULL, 0444);
MODULE_PARM_DESC(stats, "read-only: one line \"mN calls=N hits=N\" per armed mutant");

static struct mutant *find_mutant(const char *name)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(mutant_table); i++)
		if (!strcmp(name, mutant_table[i].name))
			return &mutant_table[i];
	return NULL;
}

static void describe_callers(const struct mutant *m, char *buf, size_t size)
{
	int i, len = 0;

	if (!m->callers[0]) {
		scnprintf(buf, size, "any caller");
		return;
	}
	for (i = 0; i < MAX_CALLERS && m->callers[i]; i++)
		len += scnprintf(buf + len, size - len, "%s%s",
				 i ? " or " : "", m->callers[i]);
}

/*
 * The pre-handler reads the return address at *regs->sp. That only works if
 * the probe is at the function entry, before any push. So the probe may be
 * only at +0, or at +ENDBR_INSN_SIZE when kprobes stepped over ENDBR64.
 */
static int check_probe_at_entry(const struct mutant *m)
{
	char sym[KSYM_SYMBOL_LEN];
	unsigned long off = ULONG_MAX;
	const char *plus;

	/* "name+0x4/0x2f0 [module]"; a bare hex address if there is no symbol */
	sprint_symbol(sym, (unsigned long)m->kp.addr);
	plus = strchr(sym, '+');
	if (!plus || sscanf(plus, "+%lx", &off) != 1)
		off = ULONG_MAX;
	if (off > ENDBR_INSN_SIZE) {
		pr_err("%s: probe landed at %s, not at the entry of %s(): refusing to arm\n",
		       m->name, sym, m->target);
		return -EINVAL;
	}
	if (verbose)
		pr_info("%s: %s kprobe at %s; effect: %s\n", m->name,
			(m->kp.flags & KPROBE_FLAG_FTRACE) ? "ftrace" : "int3", sym,
			m->effect);
	return 0;
}

static void unregister_all(void)
{
	bool any = false;
	int i;

	for (i = 0; i < ARRAY_SIZE(mutant_table); i++) {
		struct mutant *m = &mutant_table[i];

		if (!m->registered)
			continue;
		unregister_kprobe(&m->kp);
		m->registered = false;
		any = true;
	}
	/*
	 * A task can be preempted after the pre-handler returned but before it
	 * ran the `ret` in powercut_mutant_ret_stub. RCU-tasks waits until every
	 * task has switched context voluntarily, so none is still on the stub
	 * when the module text is freed.
	 */
	if (any)
		synchronize_rcu_tasks();
}

static int arm_mutant(struct mutant *m)
{
	char callers[128];
	int ret;

	memset(&m->kp, 0, sizeof(m->kp));
	m->kp.symbol_name = m->target;
	m->kp.pre_handler = mutant_pre;
	m->kp.post_handler = mutant_post;
	m->kp.flags = KPROBE_FLAG_DISABLED;	/* enabled once its placement is checked */
	atomic_long_set(&m->calls, 0);
	atomic_long_set(&m->hits, 0);
	ratelimit_state_init(&m->fire_rs, LOG_INTERVAL, LOG_BURST);
	ratelimit_state_init(&m->pass_rs, LOG_INTERVAL, LOG_BURST);

	ret = register_kprobe(&m->kp);
	if (ret) {
		pr_err("%s: register_kprobe(%s) failed: %d%s\n", m->name, m->target, ret,
		       ret == -ENOENT ?
		       " (symbol not found: is its module - ext4, xfs, nd_pmem, libnvdimm - loaded?)" : "");
		return ret;
	}
	m->registered = true;

	ret = check_probe_at_entry(m);
	if (ret)
		return ret;	/* the caller unregisters everything */
	ret = enable_kprobe(&m->kp);
	if (ret) {
		pr_err("%s: enable_kprobe(%s) failed: %d\n", m->name, m->target, ret);
		return ret;
	}

	describe_callers(m, callers, sizeof(callers));
	pr_info("armed %s (%s from %s)\n", m->name, m->target, callers);
	return 0;
}

static int __init powercut_mutant_init(void)
{
	char *list, *cur, *tok;
	int ret = 0, count = 0;

	list = kstrdup(mutants ? mutants : "", GFP_KERNEL);
	if (!list)
		return -ENOMEM;

	cur = list;
	while ((tok = strsep(&cur, ",")) != NULL) {
		struct mutant *m;

		tok = strim(tok);
		if (!*tok)
			continue;
		m = find_mutant(tok);
		if (!m) {
			pr_err("unknown mutant '%s' in mutants=\"%s\" (known: m1..m9)\n",
			       tok, mutants);
			ret = -EINVAL;
			goto out;
		}
		if (m->registered)
			continue;	/* listed twice */
		ret = arm_mutant(m);
		if (ret)
			goto out;
		count++;
	}

	if (!count) {
		pr_err("no mutant selected: load with mutants=m1..m9 (comma-separated)\n");
		ret = -EINVAL;
	}
out:
	kfree(list);
	if (ret)
		unregister_all();
	return ret;
}

static void __exit powercut_mutant_exit(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(mutant_table); i++) {
		struct mutant *m = &mutant_table[i];

		if (m->registered)
			pr_info("disarmed %s: calls=%ld hits=%ld missed=%lu\n", m->name,
				atomic_long_read(&m->calls), atomic_long_read(&m->hits),
				m->kp.nmissed);
	}
	unregister_all();
}

module_init(powercut_mutant_init);
module_exit(powercut_mutant_exit);

/* GPL: register_kprobe, sprint_symbol and synchronize_rcu_tasks are GPL-only exports. */
MODULE_LICENSE("GPL");
MODULE_AUTHOR("powercut");
MODULE_DESCRIPTION("powercut: re-introduce DAX durability bugs (mutants m1..m9) with kprobes");
