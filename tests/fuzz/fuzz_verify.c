/*
 * fuzz_verify.c - whole-chain verification over hostile storage.  The
 * input is a sequence of entries (u8 kind, u16 length, bytes): kind 0 a
 * record at the next seqno, kind 1 a heartbeat at the current seqno.  The
 * capsule's metadata is fixed, so signatures only verify for corpus
 * entries, whose mutations then exercise the chain logic.
 */
#include <string.h>

#include "fuzz.h"

#define MAX_RECORDS 64

struct src {
	struct scl_slice rec[MAX_RECORDS + 1];
	struct scl_slice hb[MAX_RECORDS + 1];
	uint64_t n;
};

static enum scl_err
rec_fn(void *ctx, const uint8_t *w, uint64_t s, struct scl_buf *out)
{
	struct src *m = ctx;
	(void)w;
	if (s == 0 || s > m->n || m->rec[s].ptr == NULL)
		return scl_err_set(SCL_ENOTFOUND, "none");
	return scl_buf_set(out, m->rec[s]);
}

static enum scl_err
hb_fn(void *ctx, const uint8_t *w, uint64_t s, uint64_t *at,
    struct scl_buf *out)
{
	struct src *m = ctx;
	(void)w;
	for (uint64_t i = s ? s : 1; i <= m->n; i++)
		if (m->hb[i].ptr) {
			*at = i;
			return scl_buf_set(out, m->hb[i]);
		}
	return scl_err_set(SCL_ENOTFOUND, "none");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct src m;
	struct scl_capsule_source s = { &m, rec_fn, hb_fn };
	struct scl_capsule_verify_stats st;
	struct scl_capsule_meta meta;
	struct scl_record r;
	size_t off = 0;

	fuzz_init();
	memset(&m, 0, sizeof(m));
	memset(&meta, 0, sizeof(meta));
	while (off + 3 <= size && m.n <= MAX_RECORDS) {
		uint8_t kind = data[off];
		size_t n = scl_le16_load(data + off + 1);
		off += 3;
		if (n > size - off)
			break;
		if (kind == 0 && m.n < MAX_RECORDS)
			m.rec[++m.n] = scl_slice_of(data + off, n);
		else if (kind == 1 && m.n > 0)
			m.hb[m.n] = scl_slice_of(data + off, n);
		off += n;
	}
	if (m.n == 0 || m.rec[1].ptr == NULL ||
	    scl_capsule_record_decode(&r, m.rec[1]) != SCL_OK)
		return 0;
	/* Trust the first record's claims of capsule and writer: the
	 * verifier must still catch every inconsistency after it. */
	memcpy(meta.owner, r.writer, 32);
	memset(&st, 0, sizeof(st));
	fuzz_discard(scl_capsule_verify_chain(&st, &s, r.capsule, &meta, r.writer, m.n,
	    NULL));
	return 0;
}
