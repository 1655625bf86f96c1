/*
 * seen.c - what a client has seen of a capsule's chains, kept across
 * runs (client.h "What this client has seen").
 *
 * The file is a key file of kind SEEN (docs/FORMAT.md "Key files"), body:
 *   u16 version (1), u16 n, 32 capsule name,
 *   n x (32 writer, u64 seen seqno, 32 seen hash, u64 reserved seqno)
 * in writer order.  It is the client's own memory, not evidence for
 * anyone else: whoever can rewrite it can also delete it.
 */
#include <stdlib.h>
#include <string.h>

#include "scl/client.h"
#include "scl/codec.h"

#define SEEN_VERSION 1
#define ENTRY_BYTES (SCL_WRITER_BYTES + 8 + SCL_HASH_BYTES + 8)
/* A key file body holds at most 64 KiB: about 900 writers. */
#define SEEN_MAX 900

struct seen_entry {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t seqno;
	uint8_t hash[SCL_HASH_BYTES];
	uint64_t reserved;
};

struct scl_client_seen {
	char path[4096];
	uint8_t name[SCL_NAME_BYTES];
	struct seen_entry *e;
	size_t n, cap;
};

static enum scl_err
decode(struct scl_client_seen *s, struct scl_slice body)
{
	uint8_t name[SCL_NAME_BYTES];
	struct scl_dec d;
	uint16_t n;

	scl_dec_init(&d, body, s->path);
	scl_dec_version(&d, SEEN_VERSION);
	n = scl_dec_u16(&d, "entries");
	scl_dec_copy(&d, name, SCL_NAME_BYTES, "capsule");
	if (scl_dec_ok(&d) && memcmp(name, s->name, SCL_NAME_BYTES) != 0)
		return scl_dec_fail(&d, SCL_EVERIFY, "it is another capsule's");
	if (scl_dec_ok(&d) && n > SEEN_MAX)
		return scl_dec_fail(&d, SCL_ELIMIT, "%u writers", n);
	if (scl_dec_ok(&d) && (s->e = calloc(n ? n : 1, sizeof(*s->e))) ==
	    NULL)
		return scl_err_set(SCL_ENOMEM, "seen heads");
	s->cap = n ? n : 1;
	for (uint16_t i = 0; i < n && scl_dec_ok(&d); i++) {
		struct seen_entry *e = &s->e[i];
		scl_dec_copy(&d, e->writer, SCL_WRITER_BYTES, "writer");
		e->seqno = scl_dec_u64(&d, "seen seqno");
		scl_dec_copy(&d, e->hash, SCL_HASH_BYTES, "seen hash");
		e->reserved = scl_dec_u64(&d, "reserved seqno");
		if (scl_dec_ok(&d) && i > 0 &&
		    memcmp(e->writer, s->e[i - 1].writer, SCL_WRITER_BYTES) <=
			0)
			return scl_dec_fail(&d, SCL_EFORMAT,
			    "writers out of order");
		s->n = (size_t)i + 1;
	}
	return scl_dec_finish(&d);
}

enum scl_err
scl_client_seen_open(struct scl_client_seen **out, const char *path,
    const uint8_t name[SCL_NAME_BYTES])
{
	struct scl_client_seen *s;
	struct scl_buf body;
	enum scl_err e;

	*out = NULL;
	if (strlen(path) >= sizeof(s->path))
		return scl_err_set(SCL_EINVAL, "path too long: %s", path);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return scl_err_set(SCL_ENOMEM, "seen heads");
	strcpy(s->path, path);
	memcpy(s->name, name, SCL_NAME_BYTES);
	scl_buf_init(&body);
	e = scl_keyfile_read(&body, path, SCL_KEYFILE_SEEN);
	if (e == SCL_OK)
		e = decode(s, scl_buf_slice(&body));
	else if (e == SCL_ENOTFOUND)
		e = SCL_OK, scl_err_clear();
	scl_buf_dispose(&body);
	if (e != SCL_OK) {
		scl_client_seen_free(s);
		return e;
	}
	*out = s;
	return SCL_OK;
}

void
scl_client_seen_free(struct scl_client_seen *s)
{
	if (s == NULL)
		return;
	free(s->e);
	free(s);
}

/* @writer's entry; with @add, a new zeroed one if none (NULL: no room). */
static struct seen_entry *
find(struct scl_client_seen *s, const uint8_t *writer, bool add)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(s->e[mid].writer, writer, SCL_WRITER_BYTES);
		if (c == 0)
			return &s->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!add || s->n == SEEN_MAX)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct seen_entry *e = realloc(s->e, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		s->e = e;
		s->cap = cap;
	}
	memmove(&s->e[lo + 1], &s->e[lo], (s->n - lo) * sizeof(*s->e));
	memset(&s->e[lo], 0, sizeof(*s->e));
	memcpy(s->e[lo].writer, writer, SCL_WRITER_BYTES);
	s->n++;
	return &s->e[lo];
}

enum scl_err
scl_client_seen_check(const struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    const uint8_t hash[SCL_HASH_BYTES])
{
	const struct seen_entry *e = find((struct scl_client_seen *)s, writer,
	    false);
	char ref[32];

	if (e == NULL || e->seqno == 0)
		return SCL_OK;
	if (seqno < e->seqno)
		return scl_err_set(SCL_ECONFLICT, "ROLLBACK: writer %.8s... is "
		    "served only up to record %llu, but this client saw record "
		    "%s verified before: what serves it was rolled back or "
		    "hides newer records ('scl capsule resolve' once you know "
		    "which)", scl_hex_encode((char[65]){ 0 }, writer, 32),
		    (unsigned long long)seqno,
		    scl_capsule_record_ref(ref, writer, e->seqno));
	if (seqno == e->seqno && memcmp(hash, e->hash, SCL_HASH_BYTES) != 0)
		return scl_err_set(SCL_ECONFLICT, "FORK: the record %s served "
		    "differs from the one this client saw: the writer "
		    "signed two ('scl capsule evidence')",
		    scl_capsule_record_ref(ref, writer, seqno));
	return SCL_OK;
}

enum scl_err
scl_client_seen_note(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    const uint8_t hash[SCL_HASH_BYTES])
{
	struct seen_entry *e;

	if (seqno == 0)
		return SCL_OK;
	if ((e = find(s, writer, true)) == NULL)
		return scl_err_set(SCL_ELIMIT, "more than %d writers seen",
		    SEEN_MAX);
	if (seqno > e->seqno) {
		e->seqno = seqno;
		memcpy(e->hash, hash, SCL_HASH_BYTES);
	}
	return SCL_OK;
}

enum scl_err
scl_client_seen_reserve(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, uint64_t to)
{
	struct seen_entry *e;
	char ref[32];

	if ((e = find(s, writer, true)) == NULL)
		return scl_err_set(SCL_ELIMIT, "more than %d writers seen",
		    SEEN_MAX);
	if (from <= e->reserved)
		return scl_err_set(SCL_ECONFLICT, "ROLLBACK: this client may "
		    "already have signed record %s (it reserved through %llu) "
		    "but the servers serve only up to %llu: they lost "
		    "acknowledged records, or an append of this client never "
		    "reached them; signing %llu again could fork the chain "
		    "('scl capsule resolve' once you know which)",
		    scl_capsule_record_ref(ref, writer, from),
		    (unsigned long long)e->reserved,
		    (unsigned long long)(from - 1), (unsigned long long)from);
	e->reserved = to;
	return scl_client_seen_save(s);
}

enum scl_err
scl_client_seen_release(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t through)
{
	struct seen_entry *e = find(s, writer, false);

	if (e == NULL || e->reserved <= through)
		return SCL_OK;
	e->reserved = through;
	return scl_client_seen_save(s);
}

void
scl_client_seen_get(const struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t *seen, uint64_t *reserved)
{
	const struct seen_entry *e = find((struct scl_client_seen *)s, writer,
	    false);

	*seen = e ? e->seqno : 0;
	*reserved = e ? e->reserved : 0;
}

bool
scl_client_seen_at(const struct scl_client_seen *s, size_t i,
    uint8_t writer[SCL_WRITER_BYTES], uint64_t *seen, uint64_t *reserved)
{
	if (i >= s->n)
		return false;
	memcpy(writer, s->e[i].writer, SCL_WRITER_BYTES);
	*seen = s->e[i].seqno;
	*reserved = s->e[i].reserved;
	return true;
}

enum scl_err
scl_client_seen_forget(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES])
{
	struct seen_entry *e = find(s, writer, false);

	if (e == NULL)
		return SCL_OK;
	memmove(e, e + 1, (size_t)(&s->e[s->n] - (e + 1)) * sizeof(*e));
	s->n--;
	return scl_client_seen_save(s);
}

enum scl_err
scl_client_seen_save(struct scl_client_seen *s)
{
	struct scl_buf body;
	struct scl_enc e;
	enum scl_err r;

	scl_buf_init(&body);
	scl_enc_init(&e, &body);
	scl_enc_u16(&e, SEEN_VERSION);
	scl_enc_u16(&e, (uint16_t)s->n);
	scl_enc_bytes(&e, s->name, SCL_NAME_BYTES);
	for (size_t i = 0; i < s->n; i++) {
		scl_enc_bytes(&e, s->e[i].writer, SCL_WRITER_BYTES);
		scl_enc_u64(&e, s->e[i].seqno);
		scl_enc_bytes(&e, s->e[i].hash, SCL_HASH_BYTES);
		scl_enc_u64(&e, s->e[i].reserved);
	}
	r = e.err;
	if (r == SCL_OK)
		r = scl_keyfile_replace(s->path, SCL_KEYFILE_SEEN,
		    scl_buf_slice(&body));
	scl_buf_dispose(&body);
	return r;
}
