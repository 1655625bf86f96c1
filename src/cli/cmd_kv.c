/*
 * cmd_kv.c - scl kv: poke at a worker's KVS (get, put, delete, scan,
 * status) over its --listen socket, through the library's worker client.
 *
 * A refusal prints the worker's (or its core's) own reason and the code
 * it was made with, e.g. "scl kv put: worker tcp://...: request 1 of 1:
 * value length 1048577 exceeds the limit of 1048576 [ELIMIT]".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scl/kvclient.h"

/* A value read from a file is sent whole up to this, for the worker to
 * judge; a bigger one could not fit in a request frame. */
#define VALUE_FILE_MAX (SCL_KVCLIENT_FRAME_MAX - ((size_t)64 << 10))

/* A client of --worker; prints misuse or failure itself. */
static int
kv_client(struct cli_args *a, struct scl_kvclient **out)
{
	struct scl_kvclient_options o = SCL_KVCLIENT_OPTIONS_INIT;
	const char *ep = cli_get(a, "worker");
	uint64_t timeout_ms;

	if (ep == NULL)
		return cli_misuse(a, "--worker ENDPOINT is required");
	if (!cli_get_u64(a, "timeout-ms", &timeout_ms))
		return CLI_USAGE;
	o.timeout_ms = (unsigned)timeout_ms;
	if (scl_kvclient_new(out, ep, &o) != SCL_OK)
		return cli_fail(a, "%s", scl_err_last());
	return CLI_OK;
}

/* Prints why a request failed: its message and the code's name. */
static int
kv_failed(struct cli_args *a, enum scl_err e, uint8_t flags)
{
	return cli_fail(a, "%s [%s]%s", scl_err_last(), scl_err_name(e),
	    e == SCL_ETIMEOUT && (flags & SCL_KVCLIENT_DURABLE)
		? " (are its servers up?)" : "");
}

/* Runs one request on --worker and decodes its result into @res
 * (borrowed from *@c until it is freed). */
static int
kv_one(struct cli_args *a, struct scl_kvclient **c, const struct scl_kvreq *r,
    uint8_t flags, struct scl_kvres *res)
{
	enum scl_err e;
	int rc;

	if ((rc = kv_client(a, c)) != CLI_OK)
		return rc;
	if ((e = scl_kvclient_one(*c, r, flags, res)) != SCL_OK)
		return kv_failed(a, e, flags);
	return CLI_OK;
}

static struct scl_slice
arg_slice(const char *s)
{
	return scl_slice_of(s, s ? strlen(s) : 0);
}

/* --value-file FILE ('-': standard input) into @out. */
static int
read_value_file(struct cli_args *a, const char *path, struct scl_buf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	enum scl_err e;

	if (f == NULL)
		return cli_fail(a, "cannot open %s: %s", path, strerror(errno));
	e = cli_read_all(f, out, VALUE_FILE_MAX);
	if (f != stdin)
		fclose(f);
	if (e != SCL_OK)
		return cli_fail(a, "%s: %s%s", path, scl_err_last(),
		    e == SCL_ELIMIT ? ": no request can carry it" : "");
	return CLI_OK;
}

/* PUT KEY VALUE (or --value-file) or DELETE KEY, durable unless
 * --no-wait. */
static int
kv_write(struct cli_args *a, enum scl_kvreq_op op)
{
	struct scl_kvreq r = { .op = op };
	struct scl_kvclient *c = NULL;
	const char *file = cli_get_if(a, "value-file");
	struct scl_kvres res;
	struct scl_buf value;
	bool wait = !cli_has(a, "no-wait");
	int rc = CLI_OK;

	scl_buf_init(&value);
	r.key = arg_slice(a->pos[0]);
	if (op == SCL_KVREQ_PUT) {
		if ((a->npos == 2) == (file != NULL))
			return cli_misuse(a, "give the value or --value-file, "
					     "not both");
		if (file)
			rc = read_value_file(a, file, &value);
		r.value = file ? scl_buf_slice(&value) : arg_slice(a->pos[1]);
	}
	if (rc == CLI_OK)
		rc = kv_one(a, &c, &r, wait ? SCL_KVCLIENT_DURABLE : 0, &res);
	if (rc == CLI_OK)
		printf("%s%s\n", op == SCL_KVREQ_PUT ? "ok" : "deleted",
		    wait ? " (durable on a write quorum)"
			 : " (applied; not yet on the servers)");
	scl_kvclient_free(c);
	scl_buf_dispose_secret(&value);
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
	struct scl_kvclient *c = NULL;
	struct scl_kvres res;
	int rc;

	r.key = arg_slice(a->pos[0]);
	rc = kv_one(a, &c, &r, 0, &res);
	if (rc == CLI_OK && !res.ok) {
		rc = cli_fail(a, "no key '%s'", a->pos[0]);
	} else if (rc == CLI_OK) {
		fwrite(res.value.ptr, 1, res.value.len, stdout);
		putchar('\n');
		if (cli_has(a, "version")) {
			char hex[2 * SCL_WRITER_BYTES + 1];
			fprintf(stderr, "version: Lamport %llu, writer %s\n",
			    (unsigned long long)res.version.lamport,
			    scl_hex_encode(hex, res.version.writer,
				SCL_WRITER_BYTES));
		}
	}
	scl_kvclient_free(c);
	return rc;
}

static int
kv_scan(struct cli_args *a)
{
	struct scl_kvreq r = { .op = SCL_KVREQ_SCAN };
	struct scl_kvclient *c = NULL;
	struct scl_kvres res;
	struct scl_slice k, v;
	uint64_t limit;
	int rc;

	if (!cli_get_u64(a, "limit", &limit))
		return CLI_USAGE;
	r.prefix = arg_slice(cli_get(a, "prefix"));
	r.start = arg_slice(cli_get(a, "from"));
	r.end = arg_slice(cli_get(a, "to"));
	r.limit = (uint32_t)limit;
	if ((rc = kv_one(a, &c, &r, 0, &res)) == CLI_OK) {
		while (scl_kvres_scan_next(&res.entries, &k, &v))
			printf("%.*s\t%.*s\n", (int)k.len, (const char *)k.ptr,
			    (int)v.len, (const char *)v.ptr);
		fflush(stdout);
		fprintf(stderr, "%u keys\n", res.n);
	}
	scl_kvclient_free(c);
	return rc;
}

static int
kv_status(struct cli_args *a)
{
	struct scl_kvclient *c = NULL;
	struct scl_slice json;
	enum scl_err e;
	int rc;

	if ((rc = kv_client(a, &c)) != CLI_OK)
		return rc;
	if ((e = scl_kvclient_status(c, &json)) != SCL_OK)
		rc = kv_failed(a, e, 0);
	else
		printf("%.*s\n", (int)json.len, (const char *)json.ptr);
	scl_kvclient_free(c);
	return rc;
}

#define WORKER_OPTS                                                          \
	{ "worker", "ENDPOINT", "the worker's --listen endpoint", NULL,      \
	    { false, 0, 0, 0 } },                                            \
	{ "timeout-ms", "MS", "how long to wait for the answer", NULL,       \
	    CLI_NUM(SCL_KVCLIENT_TIMEOUT_MS_DEFAULT, 1, 3600000) }

static const struct cli_opt put_opts[] = {
	{ "no-wait", NULL, "answer once applied, before the servers hold it",
	    NULL },
	{ "value-file", "FILE", "the value is FILE's bytes ('-': standard "
				"input), instead of VALUE", NULL },
	WORKER_OPTS,
	CLI_OPTS_END,
};

static const struct cli_opt delete_opts[] = {
	{ "no-wait", NULL, "answer once applied, before the servers hold it",
	    NULL },
	WORKER_OPTS,
	CLI_OPTS_END,
};

static const struct cli_opt get_opts[] = {
	{ "version", NULL, "also print the value's version (to stderr)", NULL },
	WORKER_OPTS,
	CLI_OPTS_END,
};

static const struct cli_opt scan_opts[] = {
	{ "from", "KEY", "first key (inclusive)", "the first" },
	{ "limit", "N", "at most N keys", "no limit",
	    CLI_NUM(0, 0, UINT32_MAX) },
	{ "prefix", "P", "only keys starting with P", "" },
	{ "to", "KEY", "stop before this key", "no end" },
	WORKER_OPTS,
	CLI_OPTS_END,
};

static const struct cli_opt status_opts[] = {
	WORKER_OPTS,
	CLI_OPTS_END,
};

static const struct cli_cmd kv_cmds[] = {
	{ "kv put", "KEY [VALUE] --worker ENDPOINT", "set a key",
	    "Puts KEY = VALUE (or the bytes of --value-file) in the worker's "
	    "KVS.  It\napplies at once; the answer waits until the capsule's "
	    "write quorum of\nservers holds the sealed batch (unless "
	    "--no-wait).  Peers see it within\nmilliseconds through the "
	    "router.  A value that starts with '-' follows '--'.\nA refusal "
	    "says the worker's reason and its code, e.g. [ELIMIT] for a key\n"
	    "over 1024 bytes or a value over 1 MiB.",
	    put_opts, 1, 2,
	    "  scl kv put color blue --worker tcp://127.0.0.1:7700\n"
	    "  scl kv put delta --worker tcp://127.0.0.1:7700 -- -1\n"
	    "  scl kv put photo --value-file photo.jpg --worker "
	    "tcp://127.0.0.1:7700\n",
	    kv_put },
	{ "kv get", "KEY --worker ENDPOINT", "print a key's value",
	    "Prints the value of KEY as this worker's replica holds it "
	    "(eventually\nconsistent); exits 1 if there is none.",
	    get_opts, 1, 1, "  scl kv get color --worker tcp://127.0.0.1:7700\n",
	    kv_get },
	{ "kv delete", "KEY --worker ENDPOINT", "delete a key",
	    "Deletes KEY (a tombstone, which wins over older puts everywhere).",
	    delete_opts, 1, 1,
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
