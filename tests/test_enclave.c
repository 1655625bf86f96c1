/*
 * test_enclave.c - the three backends behind one interface: round trips,
 * a core that computes with keys under seccomp, a core killed for a
 * forbidden system call, and clean shutdown.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Echo core: 'e' echoes, 'k' makes an Ed25519 key and returns the public
 * key (malloc + getrandom under seccomp), 'o' opens a file (forbidden). */
static void
test_core(struct scl_enclave_io *io, void *arg)
{
	uint8_t buf[8192];
	size_t len;

	(void)arg;
	while (scl_enclave_io_recv(io, buf, sizeof(buf), &len, -1) == SCL_OK) {
		if (len > 0 && buf[0] == 'k') {
			struct scl_sign_key k;
			scl_sign_keygen(&k);
			if (scl_enclave_io_send(io, k.public_key, 32) != SCL_OK)
				return;
			scl_sign_key_wipe(&k);
		} else if (len > 0 && buf[0] == 'o') {
			int fd = open("/etc/hostname", O_RDONLY);
			if (fd >= 0)
				close(fd);
			if (scl_enclave_io_send(io, "opened", 6) != SCL_OK)
				return;
		} else if (scl_enclave_io_send(io, buf, len) != SCL_OK) {
			return;
		}
	}
}

static void
round_trips(enum scl_tee tee)
{
	struct scl_enclave_options opt;
	struct scl_enclave *e;
	struct scl_enclave_exit ex;
	uint8_t req[4000], rep[8192];
	size_t len;

	memset(&opt, 0, sizeof(opt));
	opt.tee = tee;
	assert_scl_ok(scl_enclave_start(&e, &opt, test_core, NULL));
	for (int i = 0; i < 2000; i++) {
		size_t n = 1 + (size_t)(i * 131) % sizeof(req);
		memset(req, 'a' + i % 20, n);
		req[0] = 'e';
		assert_scl_ok(scl_enclave_call(e, req, n, rep, sizeof(rep),
		    &len, 5000));
		assert_int_equal(len, n);
		assert_memory_equal(rep, req, n);
	}
	assert_scl_ok(scl_enclave_call(e, "k", 1, rep, sizeof(rep), &len,
	    5000));
	assert_int_equal(len, 32);
	scl_enclave_stop(e, &ex);
	assert_true(ex.exited);
	assert_int_equal(ex.status, 0);
	assert_int_equal(ex.signal, 0);
}

static void
test_enclave_thread(void **state)
{
	(void)state;
	round_trips(SCL_TEE_THREAD);
}

static void
test_enclave_process(void **state)
{
	(void)state;
	round_trips(SCL_TEE_PROCESS);
}

static void
test_enclave_crossing(void **state)
{
	(void)state;
	round_trips(SCL_TEE_CROSSING);
}

/* The process core asks the kernel for a file: seccomp kills it with
 * SIGSYS before open() returns, and the host sees it die. */
static void
test_enclave_forbidden_syscall_kills_core(void **state)
{
	struct scl_enclave_options opt;
	struct scl_enclave *e;
	struct scl_enclave_exit ex;
	uint8_t rep[64];
	size_t len;

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.tee = SCL_TEE_PROCESS;
	assert_scl_ok(scl_enclave_start(&e, &opt, test_core, NULL));
	assert_scl_ok(scl_enclave_call(e, "e!", 2, rep, sizeof(rep), &len,
	    5000));
	assert_scl_fails(scl_enclave_call(e, "o", 1, rep, sizeof(rep), &len,
	    3000), SCL_ECLOSED, "the core died");
	assert_false(scl_enclave_alive(e, &ex));
	assert_false(ex.exited);
	assert_int_equal(ex.signal, SIGSYS);
	scl_enclave_stop(e, &ex);
	assert_int_equal(ex.signal, SIGSYS);
	/* Without the filter the same request succeeds: the filter, not
	 * something else, killed it. */
	opt.no_seccomp = true;
	assert_scl_ok(scl_enclave_start(&e, &opt, test_core, NULL));
	assert_scl_ok(scl_enclave_call(e, "o", 1, rep, sizeof(rep), &len,
	    5000));
	assert_int_equal(len, 6);
	scl_enclave_stop(e, &ex);
	assert_int_equal(ex.status, 0);
}

static void
test_enclave_parse(void **state)
{
	enum scl_tee t;

	(void)state;
	assert_scl_ok(scl_tee_parse(&t, "process"));
	assert_int_equal(t, SCL_TEE_PROCESS);
	assert_string_equal(scl_tee_name(SCL_TEE_CROSSING), "crossing");
	assert_scl_fails(scl_tee_parse(&t, "sgx"), SCL_EINVAL,
	    "thread, process or crossing");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enclave_thread),
		cmocka_unit_test(test_enclave_process),
		cmocka_unit_test(test_enclave_crossing),
		cmocka_unit_test(test_enclave_forbidden_syscall_kills_core),
		cmocka_unit_test(test_enclave_parse),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
