/*
 * seccomp.c - the process backend's system call filter.
 *
 * What a trusted core may do: wait and wake on futexes (the rings), get
 * randomness (keys, nonces), manage memory (its allocator), read clocks,
 * yield, and exit.  No files, no sockets, no process or signal control,
 * no writes anywhere: whatever leaves the core leaves through the rings,
 * where the host sees only what the core chose to send.  Anything else
 * kills the whole core process (SECCOMP_RET_KILL_PROCESS).  The filter
 * is synchronized to every thread the core started before it (TSYNC):
 * its crypto actors are held to the same rules.
 */
#include <seccomp.h>

#include "enclave_int.h"

static const int allowed[] = {
	SCMP_SYS(futex),	/* ring sleep/wake */
	SCMP_SYS(getrandom),	/* libsodium's randomness */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(mprotect),	/* malloc grows thread arenas with it */
	SCMP_SYS(madvise),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(sched_yield),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(sigaltstack),	/* sanitizer runtimes query it at exit */
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

enum scl_err
scl_enclave__seccomp(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = ctx ? 0 : -1;

	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(*allowed);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0)
		return scl_err_set(SCL_EIO, "installing the seccomp filter "
					    "failed (%d)", rc);
	return SCL_OK;
}
