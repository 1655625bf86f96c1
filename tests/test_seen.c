/*
 * test_seen.c - what a client has seen (client.h): rollbacks and forks
 * against the heads it saw, reservations that keep it from signing a
 * seqno twice, and a seen file that survives reopening and is refused
 * when it is damaged or another capsule's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

struct fixture {
	char *dir;
	char path[4200];
	uint8_t name[SCL_NAME_BYTES];
	uint8_t w1[SCL_WRITER_BYTES], w2[SCL_WRITER_BYTES];
	uint8_t h[3][SCL_HASH_BYTES];
};

static int
setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.dir = test_tmpdir("seen");
	snprintf(f.path, sizeof(f.path), "%s/x.seen", f.dir);
	memset(f.name, 0x11, sizeof(f.name));
	memset(f.w1, 0xa1, sizeof(f.w1));
	memset(f.w2, 0x02, sizeof(f.w2));	/* sorts before w1 */
	for (int i = 0; i < 3; i++)
		memset(f.h[i], 0x30 + i, SCL_HASH_BYTES);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	test_rmdir(f->dir);
	free(f->dir);
	return 0;
}

static void
test_seen_rollback_and_fork(void **state)
{
	struct fixture *f = *state;
	struct scl_client_seen *s;
	uint64_t seen, reserved;

	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	/* Nothing seen: anything passes, even an empty chain. */
	assert_scl_ok(scl_client_seen_check(s, f->w1, 0, f->h[0]));
	assert_scl_ok(scl_client_seen_note(s, f->w1, 10, f->h[0]));
	assert_scl_ok(scl_client_seen_note(s, f->w1, 7, f->h[1]));
	scl_client_seen_get(s, f->w1, &seen, &reserved);
	assert_int_equal(seen, 10);	/* an older head does not replace it */
	assert_scl_ok(scl_client_seen_check(s, f->w1, 10, f->h[0]));
	assert_scl_ok(scl_client_seen_check(s, f->w1, 11, f->h[2]));
	assert_scl_fails(scl_client_seen_check(s, f->w1, 9, f->h[0]),
	    SCL_ECONFLICT, "ROLLBACK");
	assert_scl_fails(scl_client_seen_check(s, f->w1, 0, f->h[0]),
	    SCL_ECONFLICT, "ROLLBACK");
	assert_scl_fails(scl_client_seen_check(s, f->w1, 10, f->h[1]),
	    SCL_ECONFLICT, "FORK");
	/* Another writer is judged on its own. */
	assert_scl_ok(scl_client_seen_check(s, f->w2, 1, f->h[1]));
	scl_client_seen_free(s);
}

static void
test_seen_reserve(void **state)
{
	struct fixture *f = *state;
	struct scl_client_seen *s;
	uint64_t seen, reserved;

	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	assert_scl_ok(scl_client_seen_reserve(s, f->w1, 1, 64));
	assert_scl_ok(scl_client_seen_reserve(s, f->w1, 65, 65));
	assert_scl_fails(scl_client_seen_reserve(s, f->w1, 65, 70),
	    SCL_ECONFLICT, "may already have signed record");
	assert_scl_fails(scl_client_seen_reserve(s, f->w1, 3, 3),
	    SCL_ECONFLICT, "through 65");
	scl_client_seen_free(s);
	/* The reservation was saved before reserve returned. */
	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	scl_client_seen_get(s, f->w1, &seen, &reserved);
	assert_int_equal(reserved, 65);
	assert_scl_fails(scl_client_seen_reserve(s, f->w1, 65, 65),
	    SCL_ECONFLICT, "ROLLBACK");
	assert_scl_ok(scl_client_seen_forget(s, f->w1));
	assert_scl_ok(scl_client_seen_reserve(s, f->w1, 65, 65));
	scl_client_seen_free(s);
}

static void
test_seen_survives_reopening(void **state)
{
	struct fixture *f = *state;
	struct scl_client_seen *s;
	uint8_t w[SCL_WRITER_BYTES];
	uint64_t seen, reserved;

	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	assert_scl_ok(scl_client_seen_note(s, f->w1, 42, f->h[0]));
	assert_scl_ok(scl_client_seen_note(s, f->w2, 5, f->h[1]));
	assert_scl_ok(scl_client_seen_save(s));
	scl_client_seen_free(s);

	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	assert_true(scl_client_seen_at(s, 0, w, &seen, &reserved));
	assert_memory_equal(w, f->w2, SCL_WRITER_BYTES);	/* in order */
	assert_int_equal(seen, 5);
	assert_true(scl_client_seen_at(s, 1, w, &seen, &reserved));
	assert_int_equal(seen, 42);
	assert_false(scl_client_seen_at(s, 2, w, &seen, &reserved));
	assert_scl_fails(scl_client_seen_check(s, f->w1, 41, f->h[0]),
	    SCL_ECONFLICT, "record a1a1a1a1/42");
	scl_client_seen_free(s);
}

static void
test_seen_refuses_bad_files(void **state)
{
	struct fixture *f = *state;
	struct scl_client_seen *s = NULL;
	uint8_t other[SCL_NAME_BYTES];
	uint8_t body[4 + SCL_NAME_BYTES + 2 * 80];
	FILE *fp;
	long size;

	/* Another capsule's file. */
	assert_scl_ok(scl_client_seen_open(&s, f->path, f->name));
	assert_scl_ok(scl_client_seen_note(s, f->w1, 1, f->h[0]));
	assert_scl_ok(scl_client_seen_save(s));
	scl_client_seen_free(s);
	memset(other, 0x22, sizeof(other));
	assert_scl_fails(scl_client_seen_open(&s, f->path, other),
	    SCL_EVERIFY, "another capsule");
	assert_null(s);

	/* A flipped byte: the key file's checksum catches it. */
	assert_non_null(fp = fopen(f->path, "r+b"));
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_int_equal(fseek(fp, size - 5, SEEK_SET), 0);
	assert_int_equal(fputc(0x5a, fp), 0x5a);
	assert_int_equal(fclose(fp), 0);
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EVERIFY, "checksum");

	/* Well-formed key files with bad bodies. */
	memset(body, 0, sizeof(body));
	body[0] = 1;			/* version 1, little-endian */
	body[2] = 2;			/* two entries */
	memcpy(body + 4, f->name, SCL_NAME_BYTES);
	memcpy(body + 4 + SCL_NAME_BYTES, f->w1, SCL_WRITER_BYTES);
	memcpy(body + 4 + SCL_NAME_BYTES + 80, f->w2, SCL_WRITER_BYTES);
	assert_scl_ok(scl_keyfile_replace(f->path, SCL_KEYFILE_SEEN,
	    scl_slice_of(body, sizeof(body))));
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EFORMAT, "out of order");
	assert_scl_ok(scl_keyfile_replace(f->path, SCL_KEYFILE_SEEN,
	    scl_slice_of(body, sizeof(body) - 1)));
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EFORMAT, NULL);
	body[2] = 1;			/* one entry, then trailing bytes */
	assert_scl_ok(scl_keyfile_replace(f->path, SCL_KEYFILE_SEEN,
	    scl_slice_of(body, sizeof(body))));
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EFORMAT, NULL);
	body[0] = 2;			/* a version from the future */
	assert_scl_ok(scl_keyfile_replace(f->path, SCL_KEYFILE_SEEN,
	    scl_slice_of(body, 4 + SCL_NAME_BYTES + 80)));
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EVERSION, "version 2");
	/* A keyring is not a seen file. */
	assert_scl_ok(scl_keyfile_replace(f->path, SCL_KEYFILE_KEYRING,
	    scl_slice_of(body, 8)));
	assert_scl_fails(scl_client_seen_open(&s, f->path, f->name),
	    SCL_EINVAL, "holds a capsule keyring");
	assert_null(s);
	assert_int_equal(remove(f->path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seen_rollback_and_fork,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_reserve, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_seen_survives_reopening,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_refuses_bad_files,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
