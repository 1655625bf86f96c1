/*
 * enclave.h - the boundary between the untrusted host and the trusted
 * core, behind one interface with three backends (DESIGN §6):
 *
 *   thread    the core runs on a thread of the host process, talking over
 *             two shared-memory rings (tests, development);
 *   process   the core runs in its own process; the rings live in a memfd
 *             mapped by both; a seccomp filter kills the core on any
 *             system call beyond what the rings and its allocator need;
 *   crossing  the core runs on a thread, and every message crosses the
 *             kernel (a write and a read on a socket pair), the way an
 *             SGX ecall/ocall crosses the boundary: the baseline that
 *             message passing is measured against.
 *
 * The core sees only its two rings (inbox, outbox); it never follows a
 * pointer into host memory: requests are copied in and replies copied
 * out.  Real TEE backends (TDX, SEV-SNP) are to slot in behind this
 * interface.
 */
#ifndef SCL_ENCLAVE_H
#define SCL_ENCLAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/err.h"
#include "scl/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

enum scl_tee {
	SCL_TEE_THREAD = 1,
	SCL_TEE_PROCESS = 2,
	SCL_TEE_CROSSING = 3,
};

const char *scl_tee_name(enum scl_tee tee);
SCL_NODISCARD enum scl_err scl_tee_parse(enum scl_tee *out, const char *s);

/** The core's side of the boundary. */
struct scl_enclave_io;

/** Next request for the core (copied into @buf); see scl_ring_recv. */
SCL_NODISCARD enum scl_err scl_enclave_io_recv(struct scl_enclave_io *io, void *buf,
    size_t cap, size_t *len, int timeout_ms);
/** A reply or event from the core to the host (copied). */
SCL_NODISCARD enum scl_err scl_enclave_io_send(struct scl_enclave_io *io,
    const void *msg, size_t len);

/**
 * The core's main function: serve requests until scl_enclave_io_recv() reports
 * SCL_ECLOSED, then return.  In the process backend it runs in the child
 * under seccomp: it may compute, allocate, use the rings and getrandom(),
 * nothing else (no files, no sockets, no writes to stderr).
 */
typedef void (*scl_enclave_main_fn)(struct scl_enclave_io *io, void *arg);

/**
 * Runs in the core before its main function and, in the process backend,
 * before the seccomp filter: the place to start threads (the filter is
 * then applied to every thread of the core).  Gets the main's @arg.
 */
typedef void (*scl_enclave_init_fn)(void *arg);

struct scl_enclave_options {
	enum scl_tee tee;
	size_t ring_capacity;		/* per direction; 0: 1 MiB */
	struct scl_ring_options ring;	/* spinning policy of both sides */
	int host_cpu, core_cpu;		/* pin to a CPU, or -1 (default 0:
					   set pin = true to use them) */
	bool pin;
	bool no_seccomp;		/* process backend: skip the filter */
	scl_enclave_init_fn init;		/* may be NULL */
};

struct scl_enclave;

/** Starts a core running @fn(@io, @arg).  Owned: scl_enclave_stop(). */
SCL_NODISCARD enum scl_err scl_enclave_start(struct scl_enclave **out,
    const struct scl_enclave_options *opt, scl_enclave_main_fn fn, void *arg);

/** Host to core (copied).  Blocks while the core's inbox is full. */
SCL_NODISCARD enum scl_err scl_enclave_send(struct scl_enclave *e,
    const void *msg, size_t len);

/** Core to host (copied into @buf); see scl_ring_recv. */
SCL_NODISCARD enum scl_err scl_enclave_recv(struct scl_enclave *e, void *buf,
    size_t cap, size_t *len, int timeout_ms);

/** send then recv: one round trip. */
SCL_NODISCARD enum scl_err scl_enclave_call(struct scl_enclave *e,
    const void *req, size_t req_len, void *reply, size_t cap, size_t *len,
    int timeout_ms);

/** How the core ended (process backend: its exit status or signal). */
struct scl_enclave_exit {
	bool exited;		/* returned from its main function */
	int status;		/* exit status when exited */
	int signal;		/* signal that killed it, or 0 */
};

/**
 * Whether the core is still running; when it is not, *@ex says how it
 * ended (a core killed by seccomp shows SIGSYS).
 */
bool scl_enclave_alive(struct scl_enclave *e, struct scl_enclave_exit *ex);

/**
 * The host's side of the rings: what sending to the core (@to_core) and
 * waiting for its answers (@from_core) cost so far; zeros for the
 * crossing backend, which has no rings.
 */
void scl_enclave_ring_stats(const struct scl_enclave *e,
    struct scl_ring_stats *to_core, struct scl_ring_stats *from_core);

/** The core process's pid (process backend), else 0. */
int scl_enclave_core_pid(const struct scl_enclave *e);

/** Closes the core's inbox, waits for it to finish, frees everything.
 * @ex (may be NULL) receives how it ended. */
void scl_enclave_stop(struct scl_enclave *e, struct scl_enclave_exit *ex);

#ifdef __cplusplus
}
#endif
#endif
