/*
 * helpers.c - test fixtures (see helpers.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

void
mem_src_init(struct mem_src *m)
{
	memset(m, 0, sizeof(*m));
}

void
mem_src_dispose(struct mem_src *m)
{
	for (size_t i = 0; i < m->n; i++) {
		scl_buf_dispose(&m->rec[i]);
		scl_buf_dispose(&m->hb[i]);
	}
	free(m->rec);
	free(m->hb);
	memset(m, 0, sizeof(*m));
}

static void
mem_src_grow(struct mem_src *m)
{
	if (m->n < m->cap)
		return;
	m->cap = m->cap ? 2 * m->cap : 64;
	m->rec = realloc(m->rec, m->cap * sizeof(*m->rec));
	m->hb = realloc(m->hb, m->cap * sizeof(*m->hb));
	assert_non_null(m->rec);
	assert_non_null(m->hb);
}

void
mem_src_add_batch(struct mem_src *m, const struct scl_capsule_batch *b)
{
	assert_int_equal(b->first_seqno, m->n + 1);
	for (size_t i = 0; i < b->n; i++) {
		mem_src_grow(m);
		scl_buf_init(&m->rec[m->n]);
		scl_buf_init(&m->hb[m->n]);
		assert_scl_ok(scl_buf_set(&m->rec[m->n],
		    scl_capsule_batch_record(b, i)));
		m->n++;
	}
	if (b->heartbeat.len)
		assert_scl_ok(scl_buf_set(&m->hb[m->n - 1],
		    scl_buf_slice(&b->heartbeat)));
}

static enum scl_err
mem_record(void *ctx, const uint8_t *writer, uint64_t seqno,
    struct scl_buf *out)
{
	struct mem_src *m = ctx;
	(void)writer;
	if (seqno == 0 || seqno > m->n || m->rec[seqno - 1].len == 0)
		return scl_err_set(SCL_ENOTFOUND, "no record %llu",
		    (unsigned long long)seqno);
	return scl_buf_set(out, scl_buf_slice(&m->rec[seqno - 1]));
}

static enum scl_err
mem_heartbeat_from(void *ctx, const uint8_t *writer, uint64_t seqno,
    uint64_t *at, struct scl_buf *out)
{
	struct mem_src *m = ctx;
	(void)writer;
	for (uint64_t s = seqno ? seqno : 1; s <= m->n; s++)
		if (m->hb[s - 1].len) {
			*at = s;
			return scl_buf_set(out, scl_buf_slice(&m->hb[s - 1]));
		}
	return scl_err_set(SCL_ENOTFOUND, "no heartbeat at or above %llu",
	    (unsigned long long)seqno);
}

struct scl_capsule_source
mem_src_source(struct mem_src *m)
{
	struct scl_capsule_source s = { m, mem_record, mem_heartbeat_from };
	return s;
}

void
tcap_init(struct tcap *t, enum scl_aead_suite suite, uint8_t seed)
{
	uint8_t s[32];
	struct scl_capsule_head head;

	memset(t, 0, sizeof(*t));
	assert_scl_ok(scl_init());
	memset(s, seed, sizeof(s));
	scl_sign_key_from_seed(&t->owner, s);
	memcpy(t->meta.owner, t->owner.public_key, 32);
	t->meta.created_us = 1764000000000000ull + seed;
	t->meta.aead = (uint8_t)suite;
	t->meta.replicas = 1;
	t->meta.write_quorum = 1;
	snprintf(t->meta.label, sizeof(t->meta.label), "test capsule %u",
	    seed);
	scl_buf_init(&t->meta_bytes);
	assert_scl_ok(scl_capsule_meta_encode(&t->meta_bytes, &t->meta,
	    &t->owner));
	scl_capsule_name(t->name, scl_buf_slice(&t->meta_bytes));
	memcpy(t->keys.capsule, t->name, 32);
	t->keys.has_owner = true;
	memcpy(t->keys.owner_seed, s, 32);
	memcpy(t->keys.writer_seed, s, 32);
	t->keys.n_epochs = 1;
	t->keys.epochs[0].epoch = 1;
	memset(t->keys.epochs[0].key, seed ^ 0x5a, 32);
	memset(&head, 0, sizeof(head));
	assert_scl_ok(scl_capsule_writer_new(&t->w, t->name, suite, &t->owner,
	    1, t->keys.epochs[0].key, &head));
	mem_src_init(&t->src);
}

void
tcap_dispose(struct tcap *t)
{
	scl_capsule_writer_free(t->w);
	mem_src_dispose(&t->src);
	scl_buf_dispose(&t->meta_bytes);
	scl_capsule_keyring_wipe(&t->keys);
	scl_sign_key_wipe(&t->owner);
}

void
tcap_append(struct tcap *t, size_t n, size_t batch)
{
	struct scl_capsule_batch b;
	char payload[64];

	scl_capsule_batch_init(&b);
	for (size_t i = 0; i < n; i++) {
		uint64_t seqno = scl_capsule_writer_head(t->w)->seqno + 1;
		int len = snprintf(payload, sizeof(payload), "payload-%llu",
		    (unsigned long long)seqno);
		assert_scl_ok(scl_capsule_writer_append(t->w, &b,
		    SCL_RECORD_DATA, scl_slice_of(payload, (size_t)len)));
		if (b.n == batch || i + 1 == n) {
			assert_scl_ok(scl_capsule_writer_seal_batch(t->w, &b,
			    1764000000000000ull + seqno));
			mem_src_add_batch(&t->src, &b);
			scl_capsule_batch_clear(&b);
		}
	}
	scl_capsule_batch_dispose(&b);
}

char *
test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p = malloc(4096);

	assert_non_null(p);
	snprintf(p, 4096, "%s/scl-test-%s-XXXXXX", base, tag);
	assert_non_null(mkdtemp(p));
	return p;
}

void
test_rmdir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char sub[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			test_rmdir(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

void
scl_test_check_failure(enum scl_err got, enum scl_err want, const char *needle,
    const char *expr, const char *file, int line)
{
	if (got != want) {
		print_error("%s -> %s (%s), expected %s\n", expr,
		    scl_err_name(got), scl_err_last(), scl_err_name(want));
		_fail(file, line);
	}
	if (needle != NULL && strstr(scl_err_last(), needle) == NULL) {
		print_error("%s: message '%s' lacks '%s'\n", expr,
		    scl_err_last(), needle);
		_fail(file, line);
	}
}
