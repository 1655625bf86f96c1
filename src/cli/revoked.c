/*
 * revoked.c - revocations every reader enforces (THREAT_MODEL.md
 * "Revocation"): the owner's REVOKE records, found by verifying the
 * owner's chain, cut each revoked writer's chain after its last valid
 * seqno, whatever the servers that store it did.
 */
#include <stdlib.h>
#include <string.h>

#include "capsule_cli.h"

/* Verifies the owner's chain without keys from the local store. */
static enum scl_err
load_local(struct local *l, struct scl_capsule_verify_stats *st)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_source src;
	struct scl_store_head head;
	enum scl_err e;

	if ((e = scl_store_get_head(l->store, l->name, l->meta.owner,
		 &head)) != SCL_OK ||
	    (e = scl_store_snapshot_begin(&snap, l->store, l->name)) != SCL_OK)
		return e;
	scl_store_snapshot_source(&src, snap);
	e = scl_capsule_verify_chain(st, &src, l->name, &l->meta,
	    l->meta.owner, head.seqno, NULL);
	scl_store_snapshot_end(snap);
	return e;
}

struct owner_verify {
	struct local *l;
	struct scl_capsule_verify_stats *st;
};

static enum scl_err
verify_owner(void *ctx, const struct scl_capsule_source *src,
    const uint8_t *writer, uint64_t seqno)
{
	struct owner_verify *ov = ctx;

	return scl_capsule_verify_chain(ov->st, src, ov->l->name,
	    &ov->l->meta, writer, seqno, NULL);
}

/* ... or from a server that holds the newest head a read quorum knows. */
static enum scl_err
load_remote(struct local *l, struct scl_capsule_verify_stats *st)
{
	struct owner_verify ov = { l, st };
	struct scl_client_heads h;
	enum scl_err e;

	if ((e = scl_client_heads(l->client, l->name, l->meta.owner,
		 scl_capsule_read_quorum(&l->meta, scl_client_count(l->client)),
		 &h)) != SCL_OK)
		return e;
	if (h.best == 0)
		return SCL_OK;
	if ((e = capsule_from_best(l, l->meta.owner, &h, verify_owner, &ov)) !=
	    SCL_OK)
		return scl_err_wrap(e, "cannot verify the owner's chain for "
				       "its revocations: ");
	return SCL_OK;
}

enum scl_err
capsule_revocations_load(struct local *l, struct scl_capsule_revocations *out)
{
	struct scl_capsule_verify_stats st;

	memset(&st, 0, sizeof(st));
	st.revocations = out;
	return l->client ? load_remote(l, &st) : load_local(l, &st);
}

int
capsule_read_limit(struct cli_args *a, struct local *l, const uint8_t *writer,
    uint64_t from, uint64_t *to, bool to_given)
{
	struct scl_capsule_revocations revs = { 0 };
	const struct scl_capsule_revoked *rv;
	char who[17], by[32];
	int rc = CLI_OK;
	enum scl_err e;

	if (memcmp(writer, l->meta.owner, SCL_WRITER_BYTES) == 0)
		return CLI_OK; /* the owner cannot be revoked */
	if ((e = capsule_revocations_load(l, &revs)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if ((rv = scl_capsule_revocations_find(&revs, writer)) == NULL ||
	    *to <= rv->max_seqno)
		goto done;
	scl_hex_encode(who, writer, 8);
	scl_capsule_record_ref(by, l->meta.owner, rv->by_seqno);
	if (to_given || from > rv->max_seqno) {
		rc = cli_fail(a, "REVOKED: the owner revoked writer %s... after "
				 "its record %llu (owner record %s): records "
				 "%llu..%llu are not valid",
		    who, (unsigned long long)rv->max_seqno, by,
		    (unsigned long long)(rv->max_seqno + 1),
		    (unsigned long long)*to);
		goto done;
	}
	fprintf(stderr, "warning: the owner revoked writer %s... after its "
			"record %llu (owner record %s): records %llu..%llu "
			"are not valid and not printed\n",
	    who, (unsigned long long)rv->max_seqno, by,
	    (unsigned long long)(rv->max_seqno + 1), (unsigned long long)*to);
	*to = rv->max_seqno;
done:
	scl_capsule_revocations_dispose(&revs);
	return rc;
}

unsigned
capsule_report_revoked(const struct scl_capsule_revocations *revs,
    const uint8_t *writer, uint64_t head, const char *where)
{
	const struct scl_capsule_revoked *rv =
	    scl_capsule_revocations_find(revs, writer);
	char who[17], by[32];

	if (rv == NULL || head <= rv->max_seqno)
		return 0;
	printf("REVOKED: writer %s... has records %llu..%llu %s past its "
	       "revocation after record %llu (owner record %s): they are "
	       "not valid\n",
	    scl_hex_encode(who, writer, 8),
	    (unsigned long long)(rv->max_seqno + 1), (unsigned long long)head,
	    where, (unsigned long long)rv->max_seqno,
	    scl_capsule_record_ref(by, rv->writer, rv->by_seqno));
	return 1;
}
