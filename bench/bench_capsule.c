/*
 * bench_capsule.c - scl bench: SCL's throughput beside the machine's limits,
 * measured in the same run.
 *
 * Machines here are shared and noisy, so absolute numbers drift between
 * runs; each figure is therefore printed with the limit it is bounded by,
 * measured moments earlier in the same process, and their ratio.  Output
 * is one JSON object per line on stdout; progress goes to stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"


typedef void (*op_fn)(void *ctx, unsigned i);

/* Runs @op in rounds of @round until @min_s seconds pass; ops/second. */
static double
rate(op_fn op, void *ctx, unsigned round, double min_s)
{
	double t0 = bench_now(), dt;
	unsigned long n = 0;

	do {
		for (unsigned i = 0; i < round; i++)
			op(ctx, (unsigned)n + i);
		n += round;
		dt = bench_now() - t0;
	} while (dt < min_s);
	return (double)n / dt;
}

struct prim {
	struct scl_aead *aead;
	struct scl_sign_key key;
	uint8_t *in, *out, sig[64], hash[32];
	size_t len;
};

static void
op_seal(void *ctx, unsigned i)
{
	struct prim *p = ctx;
	uint8_t nonce[12] = { 0 };
	memcpy(nonce, &i, sizeof(i));
	SCL_ASSERT(scl_aead_seal(p->aead, p->out, nonce, p->in, 128, p->in,
		       p->len) == SCL_OK);
}

static void
op_hash(void *ctx, unsigned i)
{
	struct prim *p = ctx;
	(void)i;
	scl_hash(p->hash, p->in, p->len);
}

static void
op_sha256(void *ctx, unsigned i)
{
	struct prim *p = ctx;
	(void)i;
	SCL_ASSERT(scl_sha256(p->hash, (struct scl_slice[]){
	    scl_slice_of(p->in, p->len) }, 1) == SCL_OK);
}

static void
op_sign(void *ctx, unsigned i)
{
	struct prim *p = ctx;
	(void)i;
	scl_sign(p->sig, &p->key, p->in, 180);
}

static void
op_verify(void *ctx, unsigned i)
{
	struct prim *p = ctx;
	(void)i;
	SCL_ASSERT(scl_sign_verify(p->sig, p->key.public_key, p->in, 180) ==
	    SCL_OK);
}

struct limits {
	double seal[3][2];	/* [suite][size 100, 1024] ops/s */
	double hash[2];		/* BLAKE2b-256, the record hash of v1 */
	double sha256[2];	/* the record hash of v2, which we write */
	double sign, verify;
};

static const size_t sizes[2] = { 100, 1024 };

static void
measure_limits(struct limits *l, double min_s)
{
	struct prim p;
	uint8_t key[32] = { 9 };

	memset(&p, 0, sizeof(p));
	p.in = calloc(1, 4096);
	p.out = calloc(1, 4096 + 16);
	SCL_ASSERT(p.in && p.out);
	for (int s = 1; s <= 2; s++) {
		SCL_ASSERT(scl_aead_new(&p.aead, (enum scl_aead_suite)s, key) ==
		    SCL_OK);
		for (int z = 0; z < 2; z++) {
			p.len = sizes[z];
			l->seal[s][z] = rate(op_seal, &p, 256, min_s);
			printf("{\"bench\":\"capsule\",\"what\":\"limit\","
			       "\"op\":\"seal\",\"aead\":\"%s\",\"size\":%zu,"
			       "\"ops_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
			    scl_aead_suite_name((enum scl_aead_suite)s),
			    sizes[z], l->seal[s][z],
			    l->seal[s][z] * (double)sizes[z] / 1e6);
		}
		scl_aead_free(p.aead);
	}
	for (int z = 0; z < 2; z++) {
		p.len = sizes[z];
		l->hash[z] = rate(op_hash, &p, 256, min_s);
		printf("{\"bench\":\"capsule\",\"what\":\"limit\",\"op\":"
		       "\"blake2b\",\"size\":%zu,\"ops_per_s\":%.0f,"
		       "\"mb_per_s\":%.1f}\n",
		    sizes[z], l->hash[z], l->hash[z] * (double)sizes[z] / 1e6);
		l->sha256[z] = rate(op_sha256, &p, 256, min_s);
		printf("{\"bench\":\"capsule\",\"what\":\"limit\",\"op\":"
		       "\"sha256\",\"size\":%zu,\"ops_per_s\":%.0f,"
		       "\"mb_per_s\":%.1f,\"over_blake2b\":%.2f}\n",
		    sizes[z], l->sha256[z],
		    l->sha256[z] * (double)sizes[z] / 1e6,
		    l->sha256[z] / l->hash[z]);
	}
	scl_sign_keygen(&p.key);
	l->sign = rate(op_sign, &p, 64, min_s);
	op_sign(&p, 0);
	l->verify = rate(op_verify, &p, 64, min_s);
	printf("{\"bench\":\"capsule\",\"what\":\"limit\",\"op\":\"ed25519_"
	       "sign\",\"ops_per_s\":%.0f}\n"
	       "{\"bench\":\"capsule\",\"what\":\"limit\",\"op\":\"ed25519_"
	       "verify\",\"ops_per_s\":%.0f}\n",
	    l->sign, l->verify);
	scl_sign_key_wipe(&p.key);
	free(p.in);
	free(p.out);
	fflush(stdout);
}

/* A fresh capsule in its own store directory under @root. */
struct bench_capsule {
	char dir[PATH_MAX];
	struct scl_store *store;
	struct scl_sign_key owner;
	struct scl_capsule_meta meta;
	struct scl_buf meta_bytes;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_keyring keys;
};

static enum scl_err
bench_capsule_new(struct bench_capsule *c, const char *root, int id,
    enum scl_aead_suite suite, bool no_sync)
{
	struct scl_store_options opt = { 0, no_sync };
	enum scl_err e;

	memset(c, 0, sizeof(*c));
	scl_buf_init(&c->meta_bytes);
	if ((size_t)snprintf(c->dir, sizeof(c->dir), "%s/capsule-%d", root,
		id) >= sizeof(c->dir))
		return scl_err_set(SCL_EINVAL, "bench directory path too long");
	scl_sign_keygen(&c->owner);
	memcpy(c->meta.owner, c->owner.public_key, 32);
	c->meta.created_us = cli_now_us();
	c->meta.aead = (uint8_t)suite;
	c->meta.replicas = c->meta.write_quorum = 1;
	snprintf(c->meta.label, sizeof(c->meta.label), "bench %d", id);
	if ((e = scl_capsule_meta_encode(&c->meta_bytes, &c->meta,
		 &c->owner)) != SCL_OK)
		return e;
	scl_capsule_name(c->name, scl_buf_slice(&c->meta_bytes));
	memcpy(c->keys.capsule, c->name, SCL_NAME_BYTES);
	c->keys.n_epochs = 1;
	c->keys.epochs[0].epoch = 1;
	scl_random(c->keys.epochs[0].key, 32);
	if ((e = scl_store_open(&c->store, c->dir, &opt)) != SCL_OK)
		return e;
	return scl_store_put_meta(c->store, c->name,
	    scl_buf_slice(&c->meta_bytes));
}

static void
bench_capsule_free(struct bench_capsule *c)
{
	char cmd[PATH_MAX + 16];
	scl_store_close(c->store);
	scl_buf_dispose(&c->meta_bytes);
	scl_sign_key_wipe(&c->owner);
	scl_capsule_keyring_wipe(&c->keys);
	if ((size_t)snprintf(cmd, sizeof(cmd), "%s/data.mdb", c->dir) <
	    sizeof(cmd))
		unlink(cmd);
	if ((size_t)snprintf(cmd, sizeof(cmd), "%s/lock.mdb", c->dir) <
	    sizeof(cmd))
		unlink(cmd);
	rmdir(c->dir);
}

struct append_result {
	double seconds;
	uint64_t commits;
};

static enum scl_err
run_append(struct append_result *out, struct bench_capsule *c,
    size_t payload, size_t batch, uint64_t records)
{
	struct scl_capsule_head head;
	struct scl_capsule_writer *w = NULL;
	struct scl_store_committer *com = NULL;
	struct scl_store_appender *app = NULL;
	struct scl_store_committer_stats st;
	uint8_t *data = malloc(payload);
	enum scl_err e;
	double t0;

	memset(&head, 0, sizeof(head));
	memset(out, 0, sizeof(*out));
	if (data == NULL)
		return scl_err_set(SCL_ENOMEM, "payload");
	scl_random(data, payload);
	if ((e = scl_capsule_writer_new(&w, c->name, c->meta.aead, &c->owner,
		 1, c->keys.epochs[0].key, &head)) != SCL_OK ||
	    (e = scl_store_committer_new(&com, c->store, 0)) != SCL_OK ||
	    (e = scl_store_appender_new(&app, com, w, batch)) != SCL_OK)
		goto done;
	t0 = bench_now();
	for (uint64_t i = 0; i < records && e == SCL_OK; i++) {
		data[0] = (uint8_t)i;
		e = scl_store_appender_add(app, scl_slice_of(data, payload));
		if (e == SCL_OK && (i + 1) % batch == 0)
			e = scl_store_appender_submit(app);
	}
	if (e == SCL_OK)
		e = scl_store_appender_finish(app);
	out->seconds = bench_now() - t0;
	scl_store_committer_stats(com, &st);
	out->commits = st.commits;
done:
	scl_store_appender_free(app);
	scl_store_committer_free(com);
	scl_capsule_writer_free(w);
	free(data);
	return e;
}

static enum scl_err
run_verify(double *seconds, uint64_t *records, struct bench_capsule *c)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_opener *o = NULL;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;
	struct scl_store_head head;
	enum scl_err e;
	double t0;

	memset(&st, 0, sizeof(st));
	if ((e = scl_store_get_head(c->store, c->name, c->owner.public_key,
		 &head)) != SCL_OK ||
	    (e = scl_store_snapshot_begin(&snap, c->store, c->name)) != SCL_OK ||
	    (e = scl_capsule_opener_new(&o, c->meta.aead, &c->keys)) != SCL_OK)
		goto done;
	scl_store_snapshot_source(&src, snap);
	t0 = bench_now();
	e = scl_capsule_verify_chain(&st, &src, c->name, &c->meta,
	    c->owner.public_key, head.seqno, o);
	*seconds = bench_now() - t0;
	*records = st.records;
	if (e == SCL_OK && st.opened != head.seqno)
		e = scl_err_set(SCL_EVERIFY, "verified %llu of %llu",
		    (unsigned long long)st.opened,
		    (unsigned long long)head.seqno);
done:
	scl_capsule_opener_free(o);
	scl_store_snapshot_end(snap);
	return e;
}

static int
bench_capsule(struct cli_args *a)
{
	static const size_t batches[4] = { 1, 16, 64, 256 };
	struct bench_capsule *c = NULL;
	struct limits lim;
	char root[PATH_MAX];
	const char *dir = cli_get(a, "dir");
	enum scl_aead_suite suite;
	uint64_t records;
	double min_s = cli_has(a, "quick") ? 0.05 : 0.3;
	int rc = CLI_FAIL, id = 0;
	enum scl_err e = SCL_OK;

	if (!cli_get_u64(a, "records", &records))
		return CLI_USAGE;
	if (cli_get(a, "aead")) {
		if (scl_aead_suite_parse(&suite, cli_get(a, "aead")) != SCL_OK)
			return cli_misuse(a, "%s", scl_err_last());
	} else {
		suite = 0;
	}
	if ((size_t)snprintf(root, sizeof(root), "%s/scl-bench-XXXXXX",
		dir ? dir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp")) >=
	    sizeof(root))
		return cli_misuse(a, "--dir path too long");
	if (mkdtemp(root) == NULL)
		return cli_fail(a, "cannot create %s: %s", root,
		    strerror(errno));
	fprintf(stderr, "bench capsule: measuring limits...\n");
	measure_limits(&lim, min_s);
	if (suite == 0)
		suite = lim.seal[1][1] >= lim.seal[2][1] ? SCL_AEAD_AES256GCM
							 : SCL_AEAD_CHACHA20POLY1305;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto done;
	for (int z = 0; z < 2 && e == SCL_OK; z++) {
		double limit = 1.0 / (1.0 / lim.seal[suite][z] +
					 1.0 / lim.sha256[z]);
		for (int b = 0; b < 4 && e == SCL_OK; b++) {
			struct append_result r = { 0, 0 };
			/* Batch 1 signs every record: fewer records keep the
			 * run short without changing the rate. */
			uint64_t n = batches[b] == 1 ? records / 4 : records;
			double per_s;
			fprintf(stderr, "bench capsule: append %zu B x %llu, "
					"batch %zu...\n",
			    sizes[z], (unsigned long long)n, batches[b]);
			if ((e = bench_capsule_new(c, root, id++, suite,
				 cli_has(a, "no-sync"))) !=
			    SCL_OK ||
			    (e = run_append(&r, c, sizes[z], batches[b], n)) !=
				SCL_OK)
				break;
			per_s = (double)n / r.seconds;
			printf("{\"bench\":\"capsule\",\"what\":\"append\","
			       "\"aead\":\"%s\",\"payload\":%zu,\"batch\":%zu,"
			       "\"records\":%llu,\"appends_per_s\":%.0f,"
			       "\"mb_per_s\":%.1f,\"sigs_per_payload\":%.4f,"
			       "\"%s\":%llu,"
			       "\"limit_seal_hash_per_s\":%.0f,"
			       "\"ratio_to_limit\":%.3f}\n",
			    scl_aead_suite_name(suite), sizes[z], batches[b],
			    (unsigned long long)n, per_s,
			    per_s * (double)sizes[z] / 1e6,
			    1.0 / (double)batches[b],
			    cli_has(a, "no-sync") ? "unsynced_commits"
						  : "fsync_commits",
			    (unsigned long long)r.commits, limit, per_s / limit);
			fflush(stdout);
			if (sizes[z] == 1024 && batches[b] == 64) {
				double secs;
				uint64_t nrec;
				double vlimit = 1.0 / (1.0 / lim.seal[suite][z] +
				    1.0 / lim.sha256[z] + 1.0 / 64 / lim.verify);
				if ((e = run_verify(&secs, &nrec, c)) != SCL_OK)
					break;
				printf("{\"bench\":\"capsule\",\"what\":\"verify\","
				       "\"payload\":%zu,\"batch\":64,\"records\":"
				       "%llu,\"verifies_per_s\":%.0f,"
				       "\"limit_open_hash_per_s\":%.0f,"
				       "\"ratio_to_limit\":%.3f}\n",
				    sizes[z], (unsigned long long)nrec,
				    (double)nrec / secs, vlimit,
				    (double)nrec / secs / vlimit);
			}
			bench_capsule_free(c);
		}
	}
	if (e != SCL_OK) {
		rc = cli_fail_err(a, e);
		bench_capsule_free(c);
		goto done;
	}
	rc = CLI_OK;
done:
	free(c);
	rmdir(root);
	return rc;
}

static const struct cli_opt capsule_opts[] = {
	{ "aead", "NAME", "aes-256-gcm or chacha20-poly1305",
	    "the faster one here" },
	{ "no-sync", NULL, "skip fsync: the CPU cost alone, not durable",
	    NULL },
	{ "quick", NULL, "shorter limit measurements (for tests)", NULL },
	{ "records", "N", "records per append run", NULL,
	    CLI_NUM(65536, 256, 1u << 26) },
	CLI_OPTS_END,
};

int bench_server(struct cli_args *a);
int bench_boundary(struct cli_args *a);
int bench_actors(struct cli_args *a);
int bench_kv(struct cli_args *a);

static const struct cli_opt kv_opts[] = {
	{ "batch", "N", "the workers' --batch (puts per record)", NULL,
	    CLI_NUM(SCL_KV_BATCH_PUTS_DEFAULT, 1, 65536) },
	{ "batch-delay-us", "US", "the workers' --batch-delay-us", NULL,
	    CLI_NUM(SCL_WORKER_BATCH_DELAY_US_DEFAULT, 50, 1000000) },
	{ "clients", "N", "client threads (each pipelines 4 x 64 ops; at "
			     "least one per worker)", NULL,
	    CLI_NUM(2, 1, 16) },
	{ "keep", NULL, "keep the deployment's directory (logs)", NULL },
	{ "no-redis", NULL, "skip the Redis peer", NULL },
	{ "quick", NULL, "1 s per run, 10000 records (for tests)", NULL },
	{ "ratio-pairs", "N", "paranoid/plain YCSB-A round pairs per worker "
			      "count; the ratios are their medians", NULL,
	    CLI_NUM(1, 1, BENCH_KV_RATIO_PAIRS_MAX) },
	{ "records", "N", "keys loaded before the runs", "100000" },
	{ "seal-clock-max", "N", "the workers' --seal-clock-max", NULL,
	    CLI_NUM(0, 0, UINT32_MAX) },
	{ "seal-gap-us", "US", "the workers' --seal-gap-us", NULL,
	    CLI_NUM(SCL_WORKER_SEAL_GAP_US_DEFAULT, 100, 1000000) },
	{ "seconds", "S", "length of each run", "5" },
	{ "server-nice", "N", "the servers' --nice", NULL,
	    CLI_NUM(0, 0, 19) },
	{ "store-delay-us", "US", "the workers' --store-delay-us", NULL,
	    CLI_NUM(SCL_WORKER_STORE_DELAY_US_DEFAULT, 0, 1000000) },
	{ "visibility-load", "PCT", "load during the visibility probe, in % "
				    "of the peak YCSB-A rate", NULL,
	    CLI_NUM(50, 1, 100) },
	{ "workers", "N", "only the rounds with N workers (1 or 3; 0: both)",
	    NULL, CLI_NUM(0, 0, 3) },
	CLI_OPTS_END,
};

static const struct cli_opt boundary_opts[] = {
	{ "quick", NULL, "a tenth of the iterations (for tests)", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt server_opts[] = {
	{ "batches", "N", "batches of 64 x 1 KiB per configuration", NULL,
	    CLI_NUM(1000, 10, 1000000) },
	{ "grow-mb", "MB", "instead: grow one server's store to MB with "
			   "KVS-sized appends, printing its CPU per append "
			   "as it fills", NULL, CLI_NUM(0, 0, 1 << 20) },
	CLI_OPTS_END,
};

static const struct cli_cmd bench_cmds[] = {
	{ "bench capsule", "[options]",
	    "append and verify throughput against crypto limits",
	    "Measures, in one run: the raw limits (AEAD seal per suite, "
	    "BLAKE2b and\nSHA-256, Ed25519 sign and verify), then durable "
	    "appends of 100 B and 1 KiB\npayloads at batch 1, 16, 64 and "
	    "256 through the group committer (fsync'd\nLMDB), and full "
	    "verification with decryption.  Each figure is printed as\n"
	    "JSON with its ratio to the seal+hash limit (SHA-256, which "
	    "records v2 and v3\nhash).  Stores go in a temporary directory "
	    "under --dir, $TMPDIR or /var/tmp,\nremoved afterwards.",
	    capsule_opts, 0, 0,
	    "  scl bench capsule > capsule.jsonl\n", bench_capsule },
	{ "bench server", "[options]",
	    "acknowledged appends through real servers, N=1 and N=3 W=2",
	    "Starts real 'scl server' processes on loopback and appends "
	    "1 KiB payloads in\nbatches of 64 (32 batches in flight) to N=1 "
	    "and to N=3 with W=2, printing\nacknowledged records/s and batch "
	    "latency p50/p99 under load and idle; and,\nin the same run, the "
	    "raw rate of fsync'd LMDB commits of one record each.\nStores go "
	    "under --dir, $TMPDIR or /var/tmp and are removed afterwards.",
	    server_opts, 0, 0, "  scl bench server > server.jsonl\n",
	    bench_server },
	{ "bench boundary", "[options]",
	    "host-core round trips: rings vs one kernel crossing per call",
	    "Measures round-trip latency (p50/p99) and one-way messages/s for "
	    "64 B and\n4 KiB messages between the host and a trusted core: "
	    "rings in the thread\nand process backends, hot (spinning) and "
	    "blocking (futex) regimes, against\nthe crossing backend (one "
	    "kernel round trip per message), with host and core\npinned to "
	    "the same CPU and to different CPUs.  Ratios in the summary "
	    "lines.",
	    boundary_opts, 0, 0, "  scl bench boundary > boundary.jsonl\n",
	    bench_boundary },
	{ "bench actors", "[options]",
	    "batched puts on the crypto actors vs one record per put",
	    "Turns 100-byte puts into sealed, chained, signed records: batched "
	    "1024 to a\nrecord on the crypto actor pool (one writer per actor "
	    "thread), against one\nrecord and one signature per put on one "
	    "thread; then verifies them as a\nreceiver would (signature, hash, "
	    "decryption), batched on the pool against\nper put.  Prints puts/s "
	    "and the ratio of each pair.",
	    boundary_opts, 0, 0, "  scl bench actors > actors.jsonl\n",
	    bench_actors },
	{ "bench kv", "[options]",
	    "YCSB A, B, C on the KVS vs plain and vs Redis, and visibility",
	    "Starts a deployment on loopback (3 servers with N=3 W=2, a "
	    "router, the key\nbroker, and 1 or 3 workers with their cores in "
	    "the process backend), loads\n--records keys with 100-byte values "
	    "and runs YCSB A (50% updates), B (5%)\nand C (reads only) with "
	    "zipfian keys, clients pipelining 4 requests of 64\noperations.  "
	    "In the same run: the KVS with encryption, signatures and\n"
	    "replication off (--plain), redis-server pipelined the same way, "
	    "and the\nput->visible-at-a-peer latency at half the peak YCSB-A "
	    "load.\nA paranoid round's rate counts until the servers hold "
	    "everything it took (a\ndurable put per worker after the load: "
	    "the servers_lag lines).  Each round also\nprints the CPU the "
	    "deployment (or redis-server) spent per operation,\nclients "
	    "excluded, and the summary compares paranoid and plain by it "
	    "too.\nThe PSL paper's figures (A 89k, C 95k ops/s) are quoted "
	    "in the summary line.",
	    kv_opts, 0, 0, "  scl bench kv > kv.jsonl\n", bench_kv },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int
cmd_bench(int argc, char **argv)
{
	return cli_dispatch("bench", bench_cmds, argc, argv);
}
