/*
 * test_store.c - the LMDB store: appends, atomicity, group commit, the
 * appender pipeline, reopening, and the no-plaintext-on-disk canary.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "helpers.h"

struct fixture {
	char *dir;
	struct scl_store *store;
	struct tcap t;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[4200];

	f->dir = test_tmpdir("store");
	snprintf(path, sizeof(path), "%s/db", f->dir);
	if (scl_store_open(&f->store, path, NULL) != SCL_OK)
		return -1;
	tcap_init(&f->t, SCL_AEAD_AES256GCM, 21);
	if (scl_store_put_meta(f->store, f->t.name,
		scl_buf_slice(&f->t.meta_bytes)) != SCL_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	scl_store_close(f->store);
	tcap_dispose(&f->t);
	test_rmdir(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Seals @n records "payload-<seqno>" into @b with a heartbeat. */
static void
make_batch(struct tcap *t, struct scl_capsule_batch *b, size_t n)
{
	char payload[64];

	scl_capsule_batch_clear(b);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = scl_capsule_writer_head(t->w)->seqno + 1;
		int len = snprintf(payload, sizeof(payload), "payload-%llu",
		    (unsigned long long)s);
		assert_scl_ok(scl_capsule_writer_append(t->w, b,
		    SCL_RECORD_DATA, scl_slice_of(payload, (size_t)len)));
	}
	assert_scl_ok(scl_capsule_writer_seal_batch(t->w, b, 42));
}

static void
verify_all(struct fixture *f, uint64_t head)
{
	struct scl_store_snapshot *snap;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_opener *o;

	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_store_snapshot_begin(&snap, f->store, f->t.name));
	scl_store_snapshot_source(&src, snap);
	assert_scl_ok(scl_capsule_opener_new(&o, f->t.meta.aead, &f->t.keys));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, f->t.name,
	    &f->t.meta, f->t.owner.public_key, head, o));
	assert_int_equal(st.records, head);
	assert_int_equal(st.opened, head);
	scl_capsule_opener_free(o);
	scl_store_snapshot_end(snap);
}

static void
test_store_append_and_read_back(void **state)
{
	struct fixture *f = *state;
	struct scl_capsule_batch b;
	const struct scl_capsule_batch *one[1] = { &b };
	struct scl_store_head head;
	struct scl_buf rec, meta;
	uint8_t writer[32];
	uint64_t seqno;

	scl_capsule_batch_init(&b);
	scl_buf_init(&rec);
	scl_buf_init(&meta);
	make_batch(&f->t, &b, 10);
	assert_scl_ok(scl_store_append(f->store, one, 1));
	assert_scl_ok(scl_store_get_head(f->store, f->t.name,
	    f->t.owner.public_key, &head));
	assert_int_equal(head.seqno, 10);
	assert_int_equal(head.lamport, 10);
	assert_memory_equal(head.hash, b.hashes[9], 32);
	assert_scl_ok(scl_store_get_record(f->store, f->t.name,
	    f->t.owner.public_key, 4, &rec));
	assert_int_equal(rec.len, scl_capsule_batch_record(&b, 3).len);
	assert_memory_equal(rec.ptr, scl_capsule_batch_record(&b, 3).ptr,
	    rec.len);
	/* The hash index names the heartbeat-signed record (the batch's
	 * last), not every record (docs/FORMAT.md "Store"). */
	assert_scl_ok(scl_store_find_hash(f->store, f->t.name, b.hashes[9],
	    writer, &seqno));
	assert_int_equal(seqno, 10);
	assert_memory_equal(writer, f->t.owner.public_key, 32);
	assert_scl_fails(scl_store_find_hash(f->store, f->t.name, b.hashes[6],
	    writer, &seqno), SCL_ENOTFOUND, "not found");
	assert_scl_fails(scl_store_get_record(f->store, f->t.name,
	    f->t.owner.public_key, 11, &rec), SCL_ENOTFOUND, "/11 not found");
	assert_scl_ok(scl_store_get_meta(f->store, f->t.name, &meta));
	assert_int_equal(meta.len, f->t.meta_bytes.len);
	verify_all(f, 10);
	scl_buf_dispose(&rec);
	scl_buf_dispose(&meta);
	scl_capsule_batch_dispose(&b);
}

/* Two batches in one append: if the second conflicts, the first is not
 * stored either. */
static void
test_store_append_is_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct scl_capsule_batch a, b;
	const struct scl_capsule_batch *both[2] = { &a, &b };
	struct scl_store_head head;

	scl_capsule_batch_init(&a);
	scl_capsule_batch_init(&b);
	make_batch(&f->t, &a, 3);
	make_batch(&f->t, &b, 3);
	b.first_seqno = 9; /* a gap: must not be stored */
	assert_scl_fails(scl_store_append(f->store, both, 2), SCL_ECONFLICT,
	    "stored chain ends at 3");
	assert_scl_ok(scl_store_get_head(f->store, f->t.name,
	    f->t.owner.public_key, &head));
	assert_int_equal(head.seqno, 0);
	b.first_seqno = 4;
	assert_scl_ok(scl_store_append(f->store, both, 2));
	/* Replaying a stored batch is a conflict, not a duplicate. */
	assert_scl_fails(scl_store_append(f->store, both, 1), SCL_ECONFLICT,
	    NULL);
	verify_all(f, 6);
	scl_capsule_batch_dispose(&a);
	scl_capsule_batch_dispose(&b);
}

struct producer {
	struct fixture *f;
	struct scl_store_committer *c;
	struct tcap t;
	int jobs;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	struct scl_capsule_batch *b = calloc((size_t)p->jobs, sizeof(*b));
	struct scl_store_job *j = calloc((size_t)p->jobs, sizeof(*j));

	for (int i = 0; i < p->jobs; i++) {
		scl_capsule_batch_init(&b[i]);
		make_batch(&p->t, &b[i], 4);
		scl_store_job_single(&j[i], &b[i]);
		assert_scl_ok(scl_store_committer_submit(p->c, &j[i]));
	}
	for (int i = 0; i < p->jobs; i++) {
		assert_scl_ok(scl_store_committer_wait(p->c, &j[i]));
		scl_capsule_batch_dispose(&b[i]);
	}
	free(b);
	free(j);
	return NULL;
}

/* Two writers submit concurrently; all their batches are stored in fewer
 * fsync'd transactions than batches (group commit). */
static void
test_store_group_commit(void **state)
{
	struct fixture *f = *state;
	struct scl_store_committer *c;
	struct scl_store_committer_stats st;
	struct producer p[2];
	pthread_t th[2];
	struct scl_store_head head;

	assert_scl_ok(scl_store_committer_new(&c, f->store, 0));
	for (int i = 0; i < 2; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].f = f;
		p[i].c = c;
		p[i].jobs = 200;
		tcap_init(&p[i].t, SCL_AEAD_AES256GCM, (uint8_t)(30 + i));
		assert_scl_ok(scl_store_put_meta(f->store, p[i].t.name,
		    scl_buf_slice(&p[i].t.meta_bytes)));
		pthread_create(&th[i], NULL, produce, &p[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	scl_store_committer_stats(c, &st);
	assert_int_equal(st.batches, 400);
	print_message("group commit: 400 batches in %llu transactions\n",
	    (unsigned long long)st.commits);
	assert_true(st.commits < 400);
	for (int i = 0; i < 2; i++) {
		assert_scl_ok(scl_store_get_head(f->store, p[i].t.name,
		    p[i].t.owner.public_key, &head));
		assert_int_equal(head.seqno, 800);
		tcap_dispose(&p[i].t);
	}
	scl_store_committer_free(c);
}

/* The fraction of @path's pages in the page cache. */
static double
resident_fraction(const char *path)
{
	struct stat st;
	unsigned char *vec;
	size_t pages, in = 0;
	long psz = sysconf(_SC_PAGESIZE);
	int fd = open(path, O_RDONLY);
	void *map;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	pages = ((size_t)st.st_size + (size_t)psz - 1) / (size_t)psz;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	assert_non_null(vec = malloc(pages));
	assert_int_equal(mincore(map, (size_t)st.st_size, vec), 0);
	for (size_t i = 0; i < pages; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(map, (size_t)st.st_size);
	close(fd);
	return (double)in / (double)pages;
}

/* Records the committer made durable leave the page cache (the store is
 * write-mostly; store.c says why), and still read back whole. */
static void
test_store_committer_drops_written_pages(void **state)
{
	enum { JOBS = 80, RECORDS = 4, PAYLOAD = 64 * 1024 };
	struct fixture *f = *state;
	struct scl_store_committer *c;
	struct scl_capsule_batch b[JOBS];
	struct scl_store_job j[JOBS];
	uint8_t *data = malloc(PAYLOAD);
	char path[4200];
	double resident = 1;

	assert_non_null(data);
	scl_random(data, PAYLOAD);
	snprintf(path, sizeof(path), "%s/db/data.mdb", f->dir);
	assert_scl_ok(scl_store_committer_new(&c, f->store, 0));
	for (int i = 0; i < JOBS; i++) {
		scl_capsule_batch_init(&b[i]);
		for (int r = 0; r < RECORDS; r++)
			assert_scl_ok(scl_capsule_writer_append(f->t.w, &b[i],
			    SCL_RECORD_DATA, scl_slice_of(data, PAYLOAD)));
		assert_scl_ok(scl_capsule_writer_seal_batch(f->t.w, &b[i], 42));
		/* One at a time, so no transaction is larger than a job
		 * and what stays cached at the end is bounded. */
		scl_store_job_single(&j[i], &b[i]);
		assert_scl_ok(scl_store_committer_submit(c, &j[i]));
		assert_scl_ok(scl_store_committer_wait(c, &j[i]));
	}
	/* 20 MiB were written; the releaser drops them in the background
	 * every 8 MiB, so at most the last 8 MiB may stay. */
	for (int t = 0; t < 100 && (resident = resident_fraction(path)) > 0.6;
	     t++)
		usleep(20000);
	print_message("page cache after 20 MiB of commits: %.0f%% of the "
		      "store resident\n", resident * 100);
	assert_true(resident <= 0.6);
	scl_store_committer_free(c);
	verify_all(f, JOBS * RECORDS);
	for (int i = 0; i < JOBS; i++)
		scl_capsule_batch_dispose(&b[i]);
	free(data);
}

/* A job that conflicts fails alone; the jobs around it commit. */
static void
test_store_committer_isolates_failures(void **state)
{
	struct fixture *f = *state;
	struct scl_store_committer *c;
	struct scl_capsule_batch b[3];
	struct scl_store_job j[3];
	struct scl_store_head head;

	assert_scl_ok(scl_store_committer_new(&c, f->store, 0));
	for (int i = 0; i < 3; i++) {
		scl_capsule_batch_init(&b[i]);
		make_batch(&f->t, &b[i], 2);
	}
	b[2].first_seqno = 99;
	for (int i = 0; i < 3; i++) {
		scl_store_job_single(&j[i], &b[i]);
		assert_scl_ok(scl_store_committer_submit(c, &j[i]));
	}
	assert_scl_ok(scl_store_committer_wait(c, &j[0]));
	assert_scl_ok(scl_store_committer_wait(c, &j[1]));
	assert_scl_fails(scl_store_committer_wait(c, &j[2]), SCL_ECONFLICT,
	    "starts at record");
	assert_scl_ok(scl_store_get_head(f->store, f->t.name,
	    f->t.owner.public_key, &head));
	assert_int_equal(head.seqno, 4);
	for (int i = 0; i < 3; i++)
		scl_capsule_batch_dispose(&b[i]);
	scl_store_committer_free(c);
}

static void
test_store_appender_pipeline(void **state)
{
	struct fixture *f = *state;
	struct scl_store_committer *c;
	struct scl_store_appender *a;
	struct scl_store_appender_stats st;
	char payload[64];

	assert_scl_ok(scl_store_committer_new(&c, f->store, 0));
	assert_scl_ok(scl_store_appender_new(&a, c, f->t.w, 10));
	for (int i = 1; i <= 1000; i++) {
		int n = snprintf(payload, sizeof(payload), "payload-%d", i);
		assert_scl_ok(scl_store_appender_add(a,
		    scl_slice_of(payload, (size_t)n)));
		if (i % 100 == 0)
			assert_scl_ok(scl_store_appender_submit(a));
	}
	assert_scl_ok(scl_store_appender_finish(a));
	scl_store_appender_stats(a, &st);
	assert_int_equal(st.records_stored, 1000);
	assert_int_equal(st.heartbeats_stored, 100);
	assert_int_equal(st.first_seqno, 1);
	scl_store_appender_free(a);
	scl_store_committer_free(c);
	verify_all(f, 1000);
}

/* Added but not submitted: dropped on free, nothing stored. */
static void
test_store_appender_drops_unsubmitted(void **state)
{
	struct fixture *f = *state;
	struct scl_store_committer *c;
	struct scl_store_appender *a;
	struct scl_store_head head;

	assert_scl_ok(scl_store_committer_new(&c, f->store, 0));
	assert_scl_ok(scl_store_appender_new(&a, c, f->t.w, 4));
	for (int i = 0; i < 9; i++)
		assert_scl_ok(scl_store_appender_add(a, scl_slice_of("x", 1)));
	scl_store_appender_free(a);
	scl_store_committer_free(c);
	assert_scl_ok(scl_store_get_head(f->store, f->t.name,
	    f->t.owner.public_key, &head));
	assert_int_equal(head.seqno, 0);
}

static void
test_store_reopen_and_version_check(void **state)
{
	struct fixture *f = *state;
	struct scl_capsule_batch b;
	const struct scl_capsule_batch *one[1] = { &b };
	struct scl_store_head head;
	char path[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 7, "version" }, v;
	uint8_t bad[4] = { 99, 0, 0, 0 };

	scl_capsule_batch_init(&b);
	make_batch(&f->t, &b, 5);
	assert_scl_ok(scl_store_append(f->store, one, 1));
	scl_store_close(f->store);
	snprintf(path, sizeof(path), "%s/db", f->dir);
	assert_scl_ok(scl_store_open(&f->store, path, NULL));
	assert_scl_ok(scl_store_get_head(f->store, f->t.name,
	    f->t.owner.public_key, &head));
	assert_int_equal(head.seqno, 5);
	verify_all(f, 5);
	scl_store_close(f->store);
	f->store = NULL;
	/* A store written by a future format is refused, not misread. */
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "info", 0, &dbi), 0);
	v.mv_size = 4;
	v.mv_data = bad;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_scl_fails(scl_store_open(&f->store, path, NULL), SCL_EVERSION,
	    "format version 99");
	scl_capsule_batch_dispose(&b);
}

/* Searches every file under @dir for @needle. */
static int
dir_contains(const char *dir, const void *needle, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	assert_non_null(d);
	while (!found && (de = readdir(d)) != NULL) {
		char path[4200];
		FILE *fp;
		long size;
		uint8_t *data;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((fp = fopen(path, "rb")) == NULL)
			continue;
		fseek(fp, 0, SEEK_END);
		size = ftell(fp);
		rewind(fp);
		data = malloc((size_t)size + 1);
		assert_int_equal(fread(data, 1, (size_t)size, fp), size);
		fclose(fp);
		found = memmem(data, (size_t)size, needle, n) != NULL;
		free(data);
	}
	closedir(d);
	return found;
}

/* The store holds ciphertext only: a canary in every payload never
 * appears in its files, while the (public) label does, which shows the
 * search would find it. */
static void
test_store_no_plaintext_on_disk(void **state)
{
	struct fixture *f = *state;
	static const char canary[] = "CANARY-7d3f0c1e-plaintext-must-not-leak";
	struct scl_capsule_batch b;
	const struct scl_capsule_batch *one[1] = { &b };
	char path[4200];

	scl_capsule_batch_init(&b);
	for (int i = 0; i < 50; i++)
		assert_scl_ok(scl_capsule_writer_append(f->t.w, &b,
		    SCL_RECORD_DATA, scl_slice_of(canary, sizeof(canary) - 1)));
	assert_scl_ok(scl_capsule_writer_seal_batch(f->t.w, &b, 1));
	assert_scl_ok(scl_store_append(f->store, one, 1));
	scl_store_close(f->store);
	f->store = NULL;
	snprintf(path, sizeof(path), "%s/db", f->dir);
	assert_false(dir_contains(path, canary, sizeof(canary) - 1));
	assert_false(dir_contains(path, f->t.keys.epochs[0].key, 32));
	assert_true(dir_contains(path, f->t.meta.label,
	    strlen(f->t.meta.label)));
	scl_capsule_batch_dispose(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_append_and_read_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_append_is_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_committer_isolates_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_committer_drops_written_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_appender_pipeline,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_appender_drops_unsubmitted, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_reopen_and_version_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_no_plaintext_on_disk,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
