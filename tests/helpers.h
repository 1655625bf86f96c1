/*
 * helpers.h - shared test fixtures: an in-memory capsule source, a test
 * capsule that writes into it, temporary directories.
 */
#ifndef SCL_TEST_HELPERS_H
#define SCL_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scl/scl.h"

/* One writer's records and heartbeats, indexed by seqno - 1. */
struct mem_src {
	size_t n, cap;
	struct scl_buf *rec;
	struct scl_buf *hb;	/* len 0: no heartbeat at that seqno */
};

void mem_src_init(struct mem_src *m);
void mem_src_dispose(struct mem_src *m);
/** Copies a signed batch into @m (records must continue it). */
void mem_src_add_batch(struct mem_src *m, const struct scl_capsule_batch *b);
/** A source over @m (any writer id is accepted). */
struct scl_capsule_source mem_src_source(struct mem_src *m);

/* A capsule with one owner-writer, writing into a mem_src. */
struct tcap {
	struct scl_sign_key owner;
	struct scl_capsule_meta meta;
	struct scl_buf meta_bytes;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_keyring keys;
	struct scl_capsule_writer *w;
	struct mem_src src;
};

/** Deterministic from @seed: same seed, same keys (not the salts). */
void tcap_init(struct tcap *t, enum scl_aead_suite suite, uint8_t seed);
void tcap_dispose(struct tcap *t);
/** Appends @n records "payload-<seqno>" with a heartbeat every @batch. */
void tcap_append(struct tcap *t, size_t n, size_t batch);

/** mkdtemp under $TMPDIR or /tmp; returns a static-lifetime copy. */
char *test_tmpdir(const char *tag);
/** rm -rf of a directory made by test_tmpdir. */
void test_rmdir(const char *path);

/** Asserts an SCL call returned SCL_OK, printing the message if not. */
#define assert_scl_ok(expr)                                                   \
	do {                                                                  \
		enum scl_err e_ = (expr);                                     \
		if (e_ != SCL_OK)                                             \
			fail_msg("%s -> %s: %s", #expr, scl_err_name(e_),     \
			    scl_err_last());                                  \
	} while (0)

/** Asserts a call failed with @code and its message contains @needle
 * (NULL: any message). */
#define assert_scl_fails(expr, code, needle)                                  \
	scl_test_check_failure((expr), (code), (needle), #expr, __FILE__,     \
	    __LINE__)

void scl_test_check_failure(enum scl_err got, enum scl_err want,
    const char *needle, const char *expr, const char *file, int line);

#endif
