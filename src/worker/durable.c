/*
 * durable.c - how far the servers hold each writer, asked by the fetcher
 * thread every DURABLE_POLL_MS: the main loop hands the W-th highest head
 * of each to the core, which frees what it retained for hand-on by it
 * (kv.h "Hand-on"); and a server that serves less of a writer than it
 * served before is a rollback, logged and counted.
 */
#include <stdlib.h>
#include <string.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/proto.h"
#include "worker_int.h"

/* Every writer's seqnos as each server reports them: this poll's (w),
 * and the last each server served (served, kept across polls). */
struct scl_worker_durable {
	struct host *h;
	struct scl_client *c;
	size_t n, n_served;
	struct {
		uint8_t writer[SCL_WRITER_BYTES];
		uint64_t seqno[SCL_CLIENT_SERVERS_MAX];
	} w[SCL_CORE_DURABLE_MAX], served[SCL_CORE_DURABLE_MAX];
};

/*
 * A server never serves less of a writer than it served before: chains
 * are append-only.  Less is a rollback of that server (a restored
 * backup, a disk that lost its last writes), logged once per drop: what
 * only it held is lost, and writes this worker was told are durable may
 * be too.
 */
static void
check_served(struct scl_worker_durable *d, size_t server,
    const struct scl_heartbeat *hb)
{
	char hex[2 * SCL_WRITER_BYTES + 1];
	uint64_t *last;
	size_t k;

	for (k = 0; k < d->n_served; k++)
		if (memcmp(d->served[k].writer, hb->writer, SCL_WRITER_BYTES) ==
		    0)
			break;
	if (k == d->n_served) {
		if (k == SCL_CORE_DURABLE_MAX)
			return;
		memcpy(d->served[k].writer, hb->writer, SCL_WRITER_BYTES);
		d->n_served++;
	}
	last = &d->served[k].seqno[server];
	if (hb->seqno < *last) {
		atomic_fetch_add(&d->h->rollbacks_seen, 1);
		scl_log(&d->h->w->opt.log, SCL_LOG_WARN, "worker",
		    "ROLLBACK: server %s serves writer %.16s only through "
		    "record %llu after it served %llu: it was restored from a "
		    "backup or lost writes; what only it held is lost",
		    scl_client_addr(d->c, server),
		    scl_hex_encode(hex, hb->writer, SCL_WRITER_BYTES),
		    (unsigned long long)hb->seqno, (unsigned long long)*last);
	}
	*last = hb->seqno;
}

static void
keep_head(void *ctx, size_t server, const struct scl_heartbeat *hb)
{
	struct scl_worker_durable *d = ctx;
	size_t k;

	for (k = 0; k < d->n; k++)
		if (memcmp(d->w[k].writer, hb->writer, SCL_WRITER_BYTES) == 0)
			break;
	if (k == d->n) {
		if (k == SCL_CORE_DURABLE_MAX)
			return;
		memset(&d->w[k], 0, sizeof(d->w[k]));
		memcpy(d->w[k].writer, hb->writer, SCL_WRITER_BYTES);
		d->n++;
	}
	if (server < SCL_CLIENT_SERVERS_MAX) {
		d->w[k].seqno[server] = hb->seqno;
		check_served(d, server, hb);
	}
}

static int
cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

struct scl_worker_durable *
scl_worker__durable_new(struct host *h, struct scl_client *c)
{
	struct scl_worker_durable *d = calloc(1, sizeof(*d));

	if (d != NULL) {
		d->h = h;
		d->c = c;
	}
	return d;
}

void
scl_worker__durable_poll(struct scl_worker_durable *d, void *s)
{
	struct host *h = d->h;
	struct scl_client *c = d->c;
	unsigned w = h->opt.write_quorum ? h->opt.write_quorum : 1;
	struct scl_buf body;

	d->n = 0;
	if (scl_client_each_head(c, h->name, w, keep_head, d) != SCL_OK) {
		scl_err_clear(); /* fewer than W answered: nothing is known */
		return;
	}
	scl_buf_init(&body);
	for (size_t k = 0; k < d->n; k++) {
		uint8_t seqno[8];
		qsort(d->w[k].seqno, h->opt.n_servers, sizeof(uint64_t),
		    cmp_desc);
		scl_le64_store(seqno, d->w[k].seqno[w - 1]);
		if (scl_buf_append(&body, d->w[k].writer, SCL_WRITER_BYTES) !=
			SCL_OK ||
		    scl_buf_append(&body, seqno, sizeof(seqno)) != SCL_OK)
			break;
	}
	if (d->n && body.len == d->n * FETCH_DURABLE_ENTRY_BYTES)
		(void)scl_worker__pipe_send(s, FETCH_DURABLE,
		    scl_buf_slice(&body), 0);
	scl_err_clear();
	scl_buf_dispose(&body);
}
