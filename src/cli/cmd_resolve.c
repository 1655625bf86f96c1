/*
 * cmd_resolve.c - what this client has seen of a capsule's chains
 * (client.h "What this client has seen", THREAT_MODEL.md "Rollback"):
 * the checks reads, verifies and appends make against it, and
 * scl capsule resolve, which shows it beside what is served now and, when
 * the owner decides to, accepts what is served.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "capsule_cli.h"

int
capsule_seen_open(struct local *l, struct cli_args *a)
{
	char path[PATH_MAX + 96];
	int rc;

	if ((rc = cli_capsule_file(a, "seen", "SCL_SEEN_DIR", l->name,
		 ".seen", path, sizeof(path))) != CLI_OK)
		return rc;
	if (scl_client_seen_open(&l->seen, path, l->name) != SCL_OK)
		return cli_fail(a, "what this client saw of the capsule is "
				   "unreadable: %s (remove %s to start over, "
				   "without the rollback checks it held)",
		    scl_err_last(), path);
	return CLI_OK;
}

enum scl_err
capsule_seen_check(struct local *l, const uint8_t *writer, uint64_t seqno,
    const uint8_t *hash)
{
	uint64_t seen, reserved;
	enum scl_err e;

	if (l->seen == NULL)
		return SCL_OK;
	if ((e = scl_client_seen_check(l->seen, writer, seqno, hash)) != SCL_OK)
		return e;
	scl_client_seen_get(l->seen, writer, &seen, &reserved);
	if (seqno <= seen)
		return SCL_OK;
	if ((e = scl_client_seen_note(l->seen, writer, seqno, hash)) != SCL_OK)
		return e;
	return scl_client_seen_save(l->seen);
}

enum scl_err
capsule_seen_reserve(struct local *l, const struct scl_capsule_batch *b,
    uint64_t ahead, uint64_t *reserved)
{
	uint64_t last = b->first_seqno + b->n - 1;
	enum scl_err e;

	if (l->seen == NULL || b->n == 0 || last <= *reserved)
		return SCL_OK;
	/* Batches may not end where the last reservation did. */
	if ((e = scl_client_seen_reserve(l->seen, b->writer,
		 *reserved ? *reserved + 1 : b->first_seqno, last + ahead)) ==
	    SCL_OK)
		*reserved = last + ahead;
	return e;
}

enum scl_err
capsule_seen_release(struct local *l, const uint8_t *writer,
    uint64_t signed_through)
{
	if (l->seen == NULL)
		return SCL_OK;
	return scl_client_seen_release(l->seen, writer, signed_through);
}

enum scl_err
capsule_seen_wrote(struct local *l, const struct scl_capsule_writer *w)
{
	const struct scl_capsule_head *h = scl_capsule_writer_head(w);

	return capsule_seen_check(l, scl_capsule_writer_id(w), h->seqno,
	    h->level[0]);
}

unsigned
capsule_seen_missing(struct local *l,
    const uint8_t (*writers)[SCL_WRITER_BYTES], size_t n)
{
	uint8_t w[SCL_WRITER_BYTES];
	uint64_t seen, reserved;
	unsigned missing = 0;
	char hex[17];

	for (size_t i = 0;
	     l->seen && scl_client_seen_at(l->seen, i, w, &seen, &reserved);
	     i++) {
		size_t k = 0;
		while (k < n && memcmp(writers[k], w, SCL_WRITER_BYTES) != 0)
			k++;
		if (k < n || seen == 0)
			continue;
		printf("ROLLBACK: writer %s... has no records here, but this "
		       "client saw its record %llu verified before ('scl "
		       "capsule resolve' once you know why)\n",
		    scl_hex_encode(hex, w, 8), (unsigned long long)seen);
		missing++;
	}
	return missing;
}

/* --- resolve ----------------------------------------------------------- */

/* What is served now of @writer: the newest head any server proves,
 * asking every server (or the local store's head). */
static enum scl_err
served_head(struct local *l, const uint8_t *writer, uint64_t *seqno,
    uint8_t hash[SCL_HASH_BYTES])
{
	struct scl_client_heads h;
	struct scl_store_head sh;
	enum scl_err e;

	if (l->client == NULL) {
		if ((e = scl_store_get_head(l->store, l->name, writer, &sh)) !=
		    SCL_OK)
			return e;
		*seqno = sh.seqno;
		memcpy(hash, sh.hash, SCL_HASH_BYTES);
		return SCL_OK;
	}
	if ((e = scl_client_heads(l->client, l->name, writer, 0, &h)) !=
	    SCL_OK)
		return e;
	*seqno = h.best;
	memcpy(hash, h.hash[h.best_server], SCL_HASH_BYTES);
	return SCL_OK;
}

/* Prints one writer's line; returns whether it is in conflict. */
static bool
resolve_show(struct local *l, const uint8_t *writer, uint64_t seen,
    uint64_t reserved, uint64_t served, const uint8_t *hash)
{
	enum scl_err e = scl_client_seen_check(l->seen, writer, served, hash);
	bool lost = reserved > served;
	char hex[17];

	printf("writer %s...: seen %llu", scl_hex_encode(hex, writer, 8),
	    (unsigned long long)seen);
	if (reserved)
		printf(", signed up to %llu", (unsigned long long)reserved);
	printf("; %s %llu: %s\n",
	    l->client ? "the servers serve" : "the store holds",
	    (unsigned long long)served,
	    e != SCL_OK ? scl_err_last()
	    : lost      ? "UNACKNOWLEDGED: records this client signed are "
			  "not served: an append failed, or servers lost or "
			  "hide them"
			: "ok");
	scl_err_clear();
	return e != SCL_OK || lost;
}

int
capsule_resolve(struct cli_args *a)
{
	const char *only = cli_get(a, "writer");
	uint8_t pick[SCL_WRITER_BYTES], w[SCL_WRITER_BYTES];
	uint8_t hash[SCL_HASH_BYTES];
	uint64_t seen, reserved, served;
	unsigned conflicts = 0, accepted = 0;
	struct local l;
	int rc;
	enum scl_err e = SCL_OK;

	if ((rc = capsule_open(&l, a, a->pos[0], false, false)) != CLI_OK)
		goto done;
	rc = CLI_USAGE;
	if (only && scl_hex_decode(pick, SCL_WRITER_BYTES, only) != SCL_OK) {
		cli_misuse(a, "--writer must be 64 hex digits: %s",
		    scl_err_last());
		goto done;
	}
	rc = CLI_FAIL;
	for (size_t i = 0; scl_client_seen_at(l.seen, i, w, &seen, &reserved);
	     i++) {
		if (only && memcmp(w, pick, SCL_WRITER_BYTES) != 0)
			continue;
		if ((e = served_head(&l, w, &served, hash)) !=
		    SCL_OK)
			break;
		if (!resolve_show(&l, w, seen, reserved, served, hash))
			continue;
		conflicts++;
		if (!cli_has(a, "accept"))
			continue;
		/* Forget, then take what is served as seen: later reads
		 * check against it.  The entry moves, so look again. */
		if ((e = scl_client_seen_forget(l.seen, w)) != SCL_OK ||
		    (e = capsule_seen_check(&l, w, served, hash)) != SCL_OK)
			break;
		accepted++;
		i = (size_t)-1;
	}
	if (e != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if (accepted)
		printf("accepted what is served now for %u writer%s: this "
		       "client checks against it from here on\n",
		    accepted, accepted == 1 ? "" : "s");
	else if (conflicts)
		printf("%u writer%s in conflict; 'scl capsule resolve %s "
		       "--accept' takes what is served now as the chain\n",
		    conflicts, conflicts == 1 ? "" : "s", a->pos[0]);
	else
		printf("ok: everything this client saw or signed is served\n");
	rc = conflicts && !accepted ? CLI_FAIL : CLI_OK;
done:
	capsule_close(&l);
	return rc;
}
