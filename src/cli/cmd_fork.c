/*
 * cmd_fork.c - scl capsule evidence and check-evidence: equivocation
 * evidence (docs/FORMAT.md "Equivocation evidence"), fetched from where
 * it is kept and checked with nothing but the capsule name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capsule_cli.h"

/* Prints what a piece of evidence convicts, and how. */
static void
print_conviction(FILE *f, const uint8_t name[SCL_NAME_BYTES],
    const struct scl_capsule_proof_result *a,
    const struct scl_capsule_proof_result *b)
{
	char hex[2 * SCL_HASH_BYTES + 1], ref[32];

	fprintf(f, "writer %s equivocated at record %llu of capsule %s:\n",
	    scl_hex_encode(hex, a->writer, SCL_WRITER_BYTES),
	    (unsigned long long)a->seqno, scl_hex_short(ref, name));
	fprintf(f, "  it signed record %s with hash %s",
	    scl_capsule_record_ref(ref, a->writer, a->seqno),
	    scl_hex_encode(hex, a->hash, SCL_HASH_BYTES));
	fprintf(f, " (heartbeat at %llu)\n",
	    (unsigned long long)a->heartbeat_seqno);
	fprintf(f, "  and also with hash %s",
	    scl_hex_encode(hex, b->hash, SCL_HASH_BYTES));
	fprintf(f, " (heartbeat at %llu)\n",
	    (unsigned long long)b->heartbeat_seqno);
}

struct found {
	const uint8_t *name;
	struct scl_buf first;		/* the first piece, to write out */
	unsigned n;
	const struct scl_client *c;	/* NULL: the local store */
};

static void
found_piece(void *ctx, size_t server, const struct scl_capsule_proof_result *a,
    const struct scl_capsule_proof_result *b, struct scl_slice ev)
{
	struct found *f = ctx;

	if (f->n++ == 0 && scl_buf_set(&f->first, ev) != SCL_OK)
		scl_err_clear();
	if (f->c)
		fprintf(stderr, "server %s keeps evidence: ",
		    scl_client_addr(f->c, server));
	print_conviction(stderr, f->name, a, b);
}

static int
found_stored(void *ctx, const uint8_t *writer, uint64_t seqno,
    struct scl_slice ev)
{
	struct found *f = ctx;
	struct scl_capsule_proof_result *r = malloc(2 * sizeof(*r));

	(void)writer, (void)seqno;
	if (r == NULL)
		return 1;
	if (scl_capsule_evidence_check(&r[0], &r[1], f->name, ev) == SCL_OK)
		found_piece(f, 0, &r[0], &r[1], ev);
	scl_err_clear();
	free(r);
	return 0;
}

/* scl capsule evidence NAME: the equivocation evidence kept on the
 * capsule's servers (or in the local store), the first piece written
 * out for anyone to check. */
int
capsule_evidence(struct cli_args *a)
{
	const char *out = cli_get(a, "out");
	struct found f = { 0 };
	struct local l;
	size_t answered = 0;
	FILE *o = NULL;
	int rc;
	enum scl_err e;

	scl_buf_init(&f.first);
	if ((rc = capsule_open(&l, a, a->pos[0], false, false)) != CLI_OK)
		goto done;
	f.name = l.name;
	f.c = l.client;
	e = l.client ? scl_client_evidence(l.client, l.name, found_piece, &f,
			   &answered)
		     : scl_store_each_evidence(l.store, l.name, found_stored,
			   &f);
	if (e != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if (f.n == 0) {
		printf("no evidence of equivocation%s\n",
		    l.client ? " on any server that answered" : "");
		rc = CLI_OK;
		goto done;
	}
	if (out == NULL && isatty(STDOUT_FILENO)) {
		rc = cli_fail(a, "%u pieces of evidence; give --out FILE or "
				 "redirect stdout to keep the first", f.n);
		goto done;
	}
	o = out ? fopen(out, "wb") : stdout;
	if (o == NULL || fwrite(f.first.ptr, 1, f.first.len, o) !=
		f.first.len ||
	    fflush(o) != 0)
		rc = cli_fail(a, "writing the evidence: %s", strerror(errno));
	else
		rc = CLI_OK;
done:
	if (o && o != stdout)
		fclose(o);
	scl_buf_dispose(&f.first);
	capsule_close(&l);
	return rc;
}

/* scl capsule check-evidence NAME < evidence: with the name alone. */
int
capsule_check_evidence(struct cli_args *a)
{
	const char *file = cli_get(a, "file");
	struct scl_capsule_proof_result *r = calloc(2, sizeof(*r));
	uint8_t name[SCL_NAME_BYTES];
	struct scl_buf ev;
	FILE *in = stdin;
	int rc = CLI_FAIL;
	enum scl_err e;

	scl_buf_init(&ev);
	if (r == NULL)
		return cli_fail(a, "out of memory");
	if (!cli_parse_name(a, a->pos[0], name)) {
		free(r);
		return CLI_USAGE;
	}
	if (file && (in = fopen(file, "rb")) == NULL) {
		free(r);
		return cli_fail(a, "cannot open %s: %s", file, strerror(errno));
	}
	if ((e = cli_read_all(in, &ev, 4 * (size_t)SCL_PAYLOAD_MAX)) !=
	    SCL_OK) {
		rc = cli_fail_err(a, e);
	} else if ((e = scl_capsule_evidence_check(&r[0], &r[1], name,
			scl_buf_slice(&ev))) != SCL_OK) {
		rc = cli_fail(a, "INVALID: %s", scl_err_last());
	} else {
		printf("ok: ");
		print_conviction(stdout, name, &r[0], &r[1]);
		printf("  both proofs check against the capsule name alone\n");
		rc = CLI_OK;
	}
	if (in != stdin)
		fclose(in);
	scl_buf_dispose(&ev);
	free(r);
	return rc;
}
