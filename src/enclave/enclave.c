/*
 * enclave.c - starting and talking to a trusted core in one of three
 * backends (enclave.h).
 *
 * thread and process share the ring code: two rings, inbox (host
 * produces, core consumes) and outbox (core produces, host consumes),
 * laid out back to back in one region: heap memory for threads, a memfd
 * mapped MAP_SHARED for processes.  crossing replaces the rings with a
 * SOCK_SEQPACKET socket pair, so each message is one write and one read
 * system call with the kernel waking the other side.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enclave_int.h"

#define DEFAULT_CAPACITY ((size_t)1 << 20)
#define DEATH_CHECK_MS 20

struct scl_enclave_io {
	enum scl_tee tee;
	struct scl_ring *inbox;		/* consumer side */
	struct scl_ring *outbox;	/* producer side */
	int fd;				/* crossing: the core's socket */
};

struct scl_enclave {
	struct scl_enclave_options opt;
	size_t cap, region_len;
	void *region;			/* both rings */
	struct scl_ring *inbox;		/* host: producer */
	struct scl_ring *outbox;	/* host: consumer */
	int fd;				/* crossing: the host's socket */
	struct scl_enclave_io io;		/* thread/crossing: the core's view */
	pthread_t thread;
	bool thread_started;
	pid_t pid;
	scl_enclave_main_fn fn;
	void *arg;
	bool ended;
	struct scl_enclave_exit exit;
};

const char *
scl_tee_name(enum scl_tee tee)
{
	switch (tee) {
	case SCL_TEE_THREAD: return "thread";
	case SCL_TEE_PROCESS: return "process";
	case SCL_TEE_CROSSING: return "crossing";
	}
	return "?";
}

enum scl_err
scl_tee_parse(enum scl_tee *out, const char *s)
{
	if (strcmp(s, "thread") == 0)
		*out = SCL_TEE_THREAD;
	else if (strcmp(s, "process") == 0)
		*out = SCL_TEE_PROCESS;
	else if (strcmp(s, "crossing") == 0)
		*out = SCL_TEE_CROSSING;
	else
		return scl_err_set(SCL_EINVAL,
		    "unknown TEE backend '%s' (thread, process or crossing)", s);
	return SCL_OK;
}

/* --- the core's calls -------------------------------------------------- */

enum scl_err
scl_enclave_io_recv(struct scl_enclave_io *io, void *buf, size_t cap, size_t *len,
    int timeout_ms)
{
	ssize_t n;

	if (io->tee != SCL_TEE_CROSSING)
		return scl_ring_recv(io->inbox, buf, cap, len, timeout_ms);
	*len = 0;
	do
		n = recv(io->fd, buf, cap, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return SCL_ECLOSED;
	if (n < 0)
		return scl_err_set(SCL_EIO, "core recv: %s", strerror(errno));
	*len = (size_t)n;
	return SCL_OK;
}

enum scl_err
scl_enclave_io_send(struct scl_enclave_io *io, const void *msg, size_t len)
{
	if (io->tee != SCL_TEE_CROSSING)
		return scl_ring_send(io->outbox, msg, len);
	if (send(io->fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		return scl_err_set(SCL_EIO, "core send: %s", strerror(errno));
	return SCL_OK;
}

/* --- host side ----------------------------------------------------------- */

static void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static void *
core_thread(void *arg)
{
	struct scl_enclave *e = arg;

	if (e->opt.pin)
		pin(e->opt.core_cpu);
	if (e->opt.init)
		e->opt.init(e->arg);
	e->fn(&e->io, e->arg);
	/* Tell the host no more replies will come. */
	if (e->io.tee == SCL_TEE_CROSSING)
		shutdown(e->io.fd, SHUT_WR);
	else
		scl_ring_close(e->io.outbox);
	return NULL;
}

/* Lays out and attaches both rings in e->region. */
static enum scl_err
rings_setup(struct scl_enclave *e, struct scl_enclave_io *core_io, bool format)
{
	size_t one = scl_ring_memory_size(e->cap);
	uint8_t *in = e->region, *out = (uint8_t *)e->region + one;
	enum scl_err r;

	if (format && ((r = scl_ring_format(in, e->cap)) != SCL_OK ||
			  (r = scl_ring_format(out, e->cap)) != SCL_OK))
		return r;
	if (core_io) {
		core_io->tee = e->opt.tee;
		if ((r = scl_ring_attach(&core_io->inbox, in, e->cap,
			 SCL_RING_CONSUMER, &e->opt.ring)) != SCL_OK)
			return r;
		return scl_ring_attach(&core_io->outbox, out, e->cap,
		    SCL_RING_PRODUCER, &e->opt.ring);
	}
	if ((r = scl_ring_attach(&e->inbox, in, e->cap, SCL_RING_PRODUCER,
		 &e->opt.ring)) != SCL_OK)
		return r;
	return scl_ring_attach(&e->outbox, out, e->cap, SCL_RING_CONSUMER,
	    &e->opt.ring);
}

/* The child of the process backend: filter, attach, serve, exit. */
static void
core_process(struct scl_enclave *e)
{
	struct scl_enclave_io io;

	memset(&io, 0, sizeof(io));
	if (e->opt.pin)
		pin(e->opt.core_cpu);
	if (rings_setup(e, &io, false) != SCL_OK)
		_exit(120);
	if (e->opt.init)
		e->opt.init(e->arg);
	if (!e->opt.no_seccomp && scl_enclave__seccomp() != SCL_OK)
		_exit(121);
	e->fn(&io, e->arg);
	scl_ring_close(io.outbox);
	/* _exit: no atexit handlers, no stdio flush; nothing but the
	 * rings leaves the core. */
	_exit(0);
}

static enum scl_err
start_process(struct scl_enclave *e)
{
	int fd = memfd_create("scl-core-rings", MFD_CLOEXEC);
	pid_t parent;

	if (fd < 0)
		return scl_err_set(SCL_EIO, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)e->region_len) != 0) {
		close(fd);
		return scl_err_set(SCL_EIO, "sizing the ring memory: %s",
		    strerror(errno));
	}
	/* MAP_POPULATE: every page of the rings allocated and zeroed now,
	 * not on the hot path the first time a message reaches it (6% of
	 * the CPU of a KVS benchmark went to those faults). */
	e->region = mmap(NULL, e->region_len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (e->region == MAP_FAILED) {
		e->region = NULL;
		return scl_err_set(SCL_EIO, "mapping the rings: %s",
		    strerror(errno));
	}
	if (scl_ring_format(e->region, e->cap) != SCL_OK ||
	    scl_ring_format((uint8_t *)e->region +
		    scl_ring_memory_size(e->cap), e->cap) != SCL_OK)
		return SCL_EINVAL;
	parent = getpid();
	if ((e->pid = fork()) < 0)
		return scl_err_set(SCL_EIO, "fork: %s", strerror(errno));
	if (e->pid == 0) {
		/* A core outlives no host: if the host dies (even by
		 * SIGKILL), so does the core, instead of waiting on its
		 * ring forever.  The check covers a host that died before
		 * the request was made. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != parent)
			_exit(122);
		core_process(e); /* never returns */
	}
	return rings_setup(e, NULL, false);
}

enum scl_err
scl_enclave_start(struct scl_enclave **out,
    const struct scl_enclave_options *opt, scl_enclave_main_fn fn, void *arg)
{
	struct scl_enclave *e;
	enum scl_err r = SCL_OK;
	int sv[2];

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate enclave");
	e->opt = *opt;
	e->fd = -1;
	e->io.fd = -1;
	e->fn = fn;
	e->arg = arg;
	e->cap = opt->ring_capacity ? opt->ring_capacity : DEFAULT_CAPACITY;
	e->region_len = 2 * scl_ring_memory_size(e->cap);
	if (opt->pin)
		pin(opt->host_cpu);
	switch (opt->tee) {
	case SCL_TEE_THREAD:
		if (posix_memalign(&e->region, 64, e->region_len) != 0) {
			r = scl_err_set(SCL_ENOMEM, "cannot allocate rings");
			break;
		}
		if ((r = rings_setup(e, NULL, true)) == SCL_OK)
			r = rings_setup(e, &e->io, false);
		break;
	case SCL_TEE_PROCESS:
		r = start_process(e);
		break;
	case SCL_TEE_CROSSING:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) !=
		    0) {
			r = scl_err_set(SCL_EIO, "socketpair: %s",
			    strerror(errno));
			break;
		}
		e->fd = sv[0];
		e->io.fd = sv[1];
		e->io.tee = SCL_TEE_CROSSING;
		break;
	default:
		r = scl_err_set(SCL_EINVAL, "unknown TEE backend %d", opt->tee);
	}
	if (r == SCL_OK && opt->tee != SCL_TEE_PROCESS) {
		if (pthread_create(&e->thread, NULL, core_thread, e) != 0)
			r = scl_err_set(SCL_ENOMEM, "cannot start core thread");
		else
			e->thread_started = true;
	}
	if (r != SCL_OK) {
		scl_enclave_stop(e, NULL);
		return r;
	}
	*out = e;
	return SCL_OK;
}

enum scl_err
scl_enclave_send(struct scl_enclave *e, const void *msg, size_t len)
{
	if (e->opt.tee != SCL_TEE_CROSSING)
		return scl_ring_send(e->inbox, msg, len);
	if (send(e->fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		return scl_err_set(SCL_EIO, "send to core: %s", strerror(errno));
	return SCL_OK;
}

enum scl_err
scl_enclave_recv(struct scl_enclave *e, void *buf, size_t cap, size_t *len,
    int timeout_ms)
{
	ssize_t n;

	if (e->opt.tee == SCL_TEE_THREAD)
		return scl_ring_recv(e->outbox, buf, cap, len, timeout_ms);
	if (e->opt.tee == SCL_TEE_PROCESS) {
		/* A dead core never closes its ring: look for its death every
		 * DEATH_CHECK_MS while waiting. */
		for (int left = timeout_ms;;) {
			int slice = left < 0 || left > DEATH_CHECK_MS
			    ? DEATH_CHECK_MS : left;
			enum scl_err r = scl_ring_recv(e->outbox, buf, cap, len,
			    slice);
			if (r != SCL_ETIMEOUT)
				return r;
			if (!scl_enclave_alive(e, NULL))
				return scl_err_set(SCL_ECLOSED,
				    "the core died (signal %d)", e->exit.signal);
			if (left >= 0 && (left -= slice) <= 0)
				return scl_err_set(SCL_ETIMEOUT, "the core did "
				    "not answer within %d ms", timeout_ms);
		}
	}
	*len = 0;
	if (timeout_ms >= 0) {
		struct timeval tv = { timeout_ms / 1000,
			(timeout_ms % 1000) * 1000 };
		setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	do
		n = recv(e->fd, buf, cap, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return scl_err_set(SCL_ECLOSED, "the core closed its end");
	if (n < 0)
		return errno == EAGAIN ? SCL_ETIMEOUT
				       : scl_err_set(SCL_EIO, "recv: %s",
					     strerror(errno));
	*len = (size_t)n;
	return SCL_OK;
}

enum scl_err
scl_enclave_call(struct scl_enclave *e, const void *req, size_t req_len,
    void *reply, size_t cap, size_t *len, int timeout_ms)
{
	enum scl_err r = scl_enclave_send(e, req, req_len);

	return r == SCL_OK ? scl_enclave_recv(e, reply, cap, len, timeout_ms)
			   : r;
}

static void
note_exit(struct scl_enclave *e, int status)
{
	e->ended = true;
	e->exit.exited = WIFEXITED(status);
	e->exit.status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	e->exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

bool
scl_enclave_alive(struct scl_enclave *e, struct scl_enclave_exit *ex)
{
	int status;

	if (e->pid > 0 && !e->ended &&
	    waitpid(e->pid, &status, WNOHANG) == e->pid)
		note_exit(e, status);
	if (ex)
		*ex = e->exit;
	return e->pid > 0 ? !e->ended : true;
}

void
scl_enclave_ring_stats(const struct scl_enclave *e,
    struct scl_ring_stats *to_core, struct scl_ring_stats *from_core)
{
	memset(to_core, 0, sizeof(*to_core));
	memset(from_core, 0, sizeof(*from_core));
	if (e->inbox)
		scl_ring_stats(e->inbox, to_core);
	if (e->outbox)
		scl_ring_stats(e->outbox, from_core);
}

int
scl_enclave_core_pid(const struct scl_enclave *e)
{
	return e->pid;
}

void
scl_enclave_stop(struct scl_enclave *e, struct scl_enclave_exit *ex)
{
	int status;

	if (e == NULL)
		return;
	if (e->inbox)
		scl_ring_close(e->inbox);
	if (e->fd >= 0)
		shutdown(e->fd, SHUT_WR);
	if (e->thread_started) {
		pthread_join(e->thread, NULL);
		e->exit.exited = true;
	}
	if (e->pid > 0 && !e->ended) {
		if (waitpid(e->pid, &status, 0) == e->pid)
			note_exit(e, status);
	}
	if (ex)
		*ex = e->exit;
	scl_ring_detach(e->inbox);
	scl_ring_detach(e->outbox);
	scl_ring_detach(e->io.inbox);
	scl_ring_detach(e->io.outbox);
	if (e->fd >= 0)
		close(e->fd);
	if (e->io.fd >= 0)
		close(e->io.fd);
	if (e->region) {
		if (e->opt.tee == SCL_TEE_PROCESS)
			munmap(e->region, e->region_len);
		else
			free(e->region);
	}
	free(e);
}
