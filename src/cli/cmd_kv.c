/*
 * cmd_kv.c - scl kv: poke at a worker's KVS (get, put, delete, scan,
 * status) over its --listen socket.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scl/codec.h"

/* One request, one reply; the reply's body borrows from @reply.
 * Returns CLI_OK or prints the failure. */
static int
kv_roundtrip(struct cli_args *a, uint8_t kind, uint8_t flags, uint32_t n,
    struct scl_slice ops, struct scl_buf *reply, struct scl_slice *body)
{
	const char *ep = cli_get(a, "worker");
	struct scl_buf frame;
	uint64_t timeout_ms, id = 1, got_id;
	bool ok;
	int rc = CLI_FAIL;
	enum scl_err e;

	if (ep == NULL)
		return cli_misuse(a, "--worker ENDPOINT is required");
	if (!cli_get_u64(a, "timeout-ms", 10000, 1, 3600000, &timeout_ms))
		return CLI_USAGE;
	scl_buf_init(&frame);
	if ((e = scl_kvclient_request(&frame, kind, id, flags, n, ops)) !=
		SCL_OK ||
	    (e = cli_zmq_request(ep, scl_buf_slice(&frame), (int)timeout_ms,
		 reply)) != SCL_OK)
		rc = cli_fail(a, "worker %s%s", scl_err_last(),
		    e == SCL_ETIMEOUT && (flags & SCL_KVCLIENT_DURABLE)
			? " (are its servers up?)" : "");
	else if (scl_kvclient_reply(scl_buf_slice(reply), &got_id, &ok,
		     body) != SCL_OK ||
	    got_id != id)
		rc = cli_fail(a, "worker %s sent a malformed reply", ep);
	else if (!ok)
		rc = cli_fail(a, "worker %s: %.*s", ep, (int)body->len,
		    (const char *)body->ptr);
	else
		rc = CLI_OK;
	scl_buf_dispose(&frame);
	return rc;
}

/* Runs a single request and decodes its result. */
static int
kv_one(struct cli_args *a, const struct scl_kvreq *r, uint8_t flags,
    struct scl_buf *reply, struct scl_kvres *res)
{
	struct scl_buf ops;
	struct scl_slice body;
	struct scl_dec d;
	int rc;

	scl_buf_init(&ops);
	if (scl_kvreq_encode(&ops, r) != SCL_OK) {
		scl_buf_dispose(&ops);
		return cli_fail(a, "%s", scl_err_last());
	}
	rc = kv_roundtrip(a, SCL_KVCLIENT_OPS, flags, 1, scl_buf_slice(&ops),
	    reply, &body);
	scl_buf_dispose(&ops);
	if (rc != CLI_OK)
		return rc;
	scl_dec_init(&d, body, "result");
	if (scl_kvres_decode(&d, r->op, res) != SCL_OK)
		return cli_fail(a, "malformed result: %s", scl_err_last());
	return CLI_OK;
}

static struct scl_slice
arg_slice(const char *s)
{
	return scl_slice_of(s, s ? strlen(s) : 0);
}

/* PUT KEY VALUE or DELETE KEY, durable unless --no-wait. */
static int
kv_write(struct cli_args *a, enum scl_kvreq_op op)
{
	struct scl_kvreq r = { .op = op };
	struct scl_kvres res;
	struct scl_buf reply;
	bool wait = !cli_has(a, "no-wait");
	int rc;

	r.key = arg_slice(a->pos[0]);
	if (op == SCL_KVREQ_PUT)
		r.value = arg_slice(a->pos[1]);
	scl_buf_init(&reply);
	rc = kv_one(a, &r, wait ? SCL_KVCLIENT_DURABLE : 0, &reply, &res);
	if (rc == CLI_OK && !res.ok)
		rc = cli_fail(a, "%.*s", (int)res.error.len,
		    (const char *)res.error.ptr);
	else if (rc == CLI_OK)
		printf("%s%s\n", op == SCL_KVREQ_PUT ? "ok" : "deleted",
		    wait ? " (durable on a write quorum)"
			 : " (applied; not yet on the servers)");
	scl_buf_dispose(&reply);
	return rc;
}

static int
kv_put(struct cli_args *a)
{
	return kv_write(a, SCL_KVREQ_PUT);
}

static int
kv_delete(struct cli_args *a)
{
	return kv_write(a, SCL_KVREQ_DELETE);
}

static int
kv_get(struct cli_args *a)
{
	struct scl_kvreq r = { .op = SCL_KVREQ_GET };
	struct scl_kvres res;
	struct scl_buf reply;
	int rc;

	r.key = arg_slice(a->pos[0]);
	scl_buf_init(&reply);
	rc = kv_one(a, &r, 0, &reply, &res);
	if (rc == CLI_OK && !res.ok) {
		rc = cli_fail(a, "no key '%s'", a->pos[0]);
	} else if (rc == CLI_OK) {
		fwrite(res.value.ptr, 1, res.value.len, stdout);
		putchar('\n');
		if (cli_has(a, "version")) {
			char hex[65];
			fprintf(stderr, "version: Lamport %llu, writer %s\n",
			    (unsigned long long)res.lamport,
			    scl_hex_encode(hex, res.writer, 32));
		}
	}
	scl_buf_dispose(&reply);
	return rc;
}

static int
kv_scan(struct cli_args *a)
{
	struct scl_kvreq r = { .op = SCL_KVREQ_SCAN };
	struct scl_kvres res;
	struct scl_buf reply;
	struct scl_slice k, v;
	uint64_t limit;
	int rc;

	if (!cli_get_u64(a, "limit", 0, 0, UINT32_MAX, &limit))
		return CLI_USAGE;
	r.prefix = arg_slice(cli_get(a, "prefix"));
	r.start = arg_slice(cli_get(a, "from"));
	r.end = arg_slice(cli_get(a, "to"));
	r.limit = (uint32_t)limit;
	scl_buf_init(&reply);
	if ((rc = kv_one(a, &r, 0, &reply, &res)) == CLI_OK) {
		while (scl_kvres_scan_next(&res.entries, &k, &v))
			printf("%.*s\t%.*s\n", (int)k.len, (const char *)k.ptr,
			    (int)v.len, (const char *)v.ptr);
		fflush(stdout);
		fprintf(stderr, "%u keys\n", res.n);
	}
	scl_buf_dispose(&reply);
	return rc;
}

static int
kv_status(struct cli_args *a)
{
	struct scl_buf reply;
	struct scl_slice body;
	int rc;

	scl_buf_init(&reply);
	rc = kv_roundtrip(a, SCL_KVCLIENT_STATUS, 0, 0, scl_slice_of(NULL, 0),
	    &reply, &body);
	if (rc == CLI_OK)
		printf("%.*s\n", (int)body.len, (const char *)body.ptr);
	scl_buf_dispose(&reply);
	return rc;
}

#define WORKER_OPT                                                            \
	{ "worker", "ENDPOINT", "the worker's --listen endpoint", NULL },     \
	{ "timeout-ms", "MS", "how long to wait for the answer", "10000" }

static const struct cli_opt write_opts[] = {
	{ "no-wait", NULL, "answer once applied, before the servers hold it",
	    NULL },
	WORKER_OPT,
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_opt get_opts[] = {
	{ "version", NULL, "also print the value's version (to stderr)", NULL },
	WORKER_OPT,
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_opt scan_opts[] = {
	{ "from", "KEY", "first key (inclusive)", "the first" },
	{ "limit", "N", "at most N keys", "no limit" },
	{ "prefix", "P", "only keys starting with P", "" },
	{ "to", "KEY", "stop before this key", "no end" },
	WORKER_OPT,
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_opt status_opts[] = {
	WORKER_OPT,
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_cmd kv_cmds[] = {
	{ "kv put", "KEY VALUE --worker ENDPOINT", "set a key",
	    "Puts KEY = VALUE in the worker's KVS.  It applies at once; the "
	    "answer waits\nuntil the capsule's write quorum of servers holds "
	    "the sealed batch (unless\n--no-wait).  Peers see it within "
	    "milliseconds through the router.",
	    write_opts, 2, 2,
	    "  scl kv put color blue --worker tcp://127.0.0.1:7700\n", kv_put },
	{ "kv get", "KEY --worker ENDPOINT", "print a key's value",
	    "Prints the value of KEY as this worker's replica holds it "
	    "(eventually\nconsistent); exits 1 if there is none.",
	    get_opts, 1, 1, "  scl kv get color --worker tcp://127.0.0.1:7700\n",
	    kv_get },
	{ "kv delete", "KEY --worker ENDPOINT", "delete a key",
	    "Deletes KEY (a tombstone, which wins over older puts everywhere).",
	    write_opts, 1, 1,
	    "  scl kv delete color --worker tcp://127.0.0.1:7700\n", kv_delete },
	{ "kv scan", "--worker ENDPOINT [options]", "list keys in order",
	    "Prints live keys and values, tab-separated, in bytewise key "
	    "order.",
	    scan_opts, 0, 0,
	    "  scl kv scan --prefix user/ --worker tcp://127.0.0.1:7700\n",
	    kv_scan },
	{ "kv status", "--worker ENDPOINT", "print the replica's counters",
	    "Prints the worker's KVS counters as JSON: keys, writers, batches "
	    "in and out,\nrejected messages, fetches, the state digest (equal "
	    "digests: equal state),\nand how far the servers hold its writes.",
	    status_opts, 0, 0,
	    "  scl kv status --worker tcp://127.0.0.1:7700\n", kv_status },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int
cmd_kv(int argc, char **argv)
{
	return cli_dispatch("kv", kv_cmds, argc, argv);
}
