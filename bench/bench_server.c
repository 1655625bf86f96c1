/*
 * bench_server.c - scl bench server: acknowledged appends through real
 * server processes on loopback, N=1 and N=3/W=2, beside the raw rate of
 * fsync'd LMDB commits measured in the same run.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench.h"
#include "scl/client.h"

/* fsync'd commits of one 1 KiB put each, for @secs seconds. */
static double
lmdb_commit_rate(const char *dir, double secs)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	uint8_t val[1024] = { 1 };
	uint64_t key = 0, n = 0;
	double t0;

	if (mkdir(dir, 0700) != 0 || mdb_env_create(&env) != 0)
		return 0;
	mdb_env_set_mapsize(env, (size_t)1 << 30);
	if (mdb_env_open(env, dir, 0, 0600) != 0)
		return 0;
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_txn_commit(txn);
	t0 = bench_now();
	while (bench_now() - t0 < secs) {
		MDB_val k = { sizeof(key), &key }, v = { sizeof(val), val };
		key++;
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
		    mdb_put(txn, dbi, &k, &v, 0) != 0 || mdb_txn_commit(txn) != 0)
			break;
		n++;
	}
	t0 = bench_now() - t0;
	mdb_env_close(env);
	return (double)n / t0;
}

struct cluster {
	int n;
	pid_t pid[3];
	char addr[3][64];
	char data[3][PATH_MAX];
};

static int
cluster_start(struct cluster *c, int n, const char *root, const char *tag)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len < 0)
		return -1;
	self[len] = '\0';
	c->n = n;
	for (int i = 0; i < n; i++)
		snprintf(c->addr[i], sizeof(c->addr[i]), "tcp://127.0.0.1:%d",
		    bench_free_port());
	for (int i = 0; i < n; i++) {
		char *data = c->data[i], ready[PATH_MAX], peers[256] = "";
		size_t k = 0;
		for (int j = 0; j < n; j++)
			if (j != i)
				k += (size_t)snprintf(peers + k,
				    sizeof(peers) - k, "%s%s", k ? "," : "",
				    c->addr[j]);
		if ((size_t)snprintf(data, sizeof(c->data[i]), "%s/%s-s%d",
			root, tag, i) >= sizeof(c->data[i]) ||
		    (size_t)snprintf(ready, sizeof(ready), "%s/%s-r%d", root,
			tag, i) >= sizeof(ready))
			return -1;
		if ((c->pid[i] = fork()) == 0) {
			char *argv[] = { self, "server", "--listen", c->addr[i],
				"--data", data, "--log-level", "error",
				"--ready-file", ready, n > 1 ? "--peers" : NULL,
				peers, NULL };
			execv(self, argv);
			_exit(127);
		}
		for (int t = 0; t < 200; t++) {
			struct stat st;
			if (stat(ready, &st) == 0 && st.st_size > 0)
				break;
			usleep(20000);
		}
	}
	return 0;
}

static void
cluster_stop(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->pid[i] > 0) {
			kill(c->pid[i], SIGTERM);
			waitpid(c->pid[i], NULL, 0);
		}
}

struct load_result {
	double records_per_s, p50_ms, p99_ms;
	uint64_t records;
	uint64_t commits;	/* fsync'd commits on server 0 during the run */
};

/* The "commits" counter from server 0's status. */
static uint64_t
server_commits(struct scl_client *c)
{
	struct scl_buf text;
	uint64_t n = 0;
	const char *p;

	scl_buf_init(&text);
	if (scl_client_status(c, 0, &text) == SCL_OK &&
	    scl_buf_append(&text, "", 1) == SCL_OK &&
	    (p = strstr((const char *)text.ptr, "\"commits\":")) != NULL)
		n = strtoull(p + 10, NULL, 10);
	scl_buf_dispose(&text);
	return n;
}

/* A capsule on a cluster's servers and its one writer, with a batch to
 * seal into: what the loads below share.  Owns everything in it. */
struct bench_cap {
	struct scl_client *c;
	struct scl_capsule_writer *w;
	struct scl_capsule_batch b;
	uint8_t *data;		/* a random payload of `payload` bytes */
	size_t payload;
};

static void
cap_close(struct bench_cap *k)
{
	scl_capsule_writer_free(k->w);
	scl_client_free(k->c);
	scl_capsule_batch_dispose(&k->b);
	free(k->data);
	memset(k, 0, sizeof(*k));
}

/* Creates a capsule on @cl with @quorum and opens its writer. */
static enum scl_err
cap_open(struct bench_cap *k, struct cluster *cl, unsigned quorum,
    size_t payload)
{
	const char *addrs[3] = { cl->addr[0], cl->addr[1], cl->addr[2] };
	struct scl_capsule_meta m;
	struct scl_capsule_head head;
	struct scl_sign_key owner;
	struct scl_buf meta;
	uint8_t name[32], key[32];
	enum scl_err e;

	memset(k, 0, sizeof(*k));
	memset(&m, 0, sizeof(m));
	memset(&head, 0, sizeof(head));
	scl_capsule_batch_init(&k->b);
	scl_buf_init(&meta);
	if ((k->data = malloc(payload)) == NULL)
		return scl_err_set(SCL_ENOMEM, "bench payload");
	k->payload = payload;
	scl_random(k->data, payload);
	scl_random(key, sizeof(key));
	scl_sign_keygen(&owner);
	memcpy(m.owner, owner.public_key, 32);
	m.created_us = cli_now_us();
	m.aead = SCL_AEAD_AES256GCM;
	m.replicas = m.n_servers = (uint8_t)cl->n;
	m.write_quorum = (uint8_t)quorum;
	for (int i = 0; i < cl->n; i++)
		snprintf(m.servers[i], sizeof(m.servers[i]), "%s", cl->addr[i]);
	if ((e = scl_capsule_meta_encode(&meta, &m, &owner)) == SCL_OK &&
	    (e = scl_client_new(&k->c, addrs, (size_t)cl->n, NULL)) ==
		SCL_OK) {
		scl_capsule_name(name, scl_buf_slice(&meta));
		if ((e = scl_client_create(k->c, scl_buf_slice(&meta),
			 (unsigned)cl->n)) == SCL_OK)
			e = scl_capsule_writer_new(&k->w, name,
			    SCL_AEAD_AES256GCM, &owner, 1, key, &head);
	}
	scl_sign_key_wipe(&owner);
	scl_wipe(key, sizeof(key));
	scl_buf_dispose(&meta);
	if (e != SCL_OK)
		cap_close(k);
	return e;
}

/* Seals @n records of the payload (each with its own first byte) into
 * k->b and sends them as one append; its ticket goes to @ticket. */
static enum scl_err
cap_append(struct bench_cap *k, size_t n, unsigned quorum, unsigned window,
    uint64_t *ticket)
{
	enum scl_err e = SCL_OK;

	scl_capsule_batch_clear(&k->b);
	for (size_t r = 0; r < n && e == SCL_OK; r++) {
		k->data[0] = (uint8_t)r;
		e = scl_capsule_writer_append(k->w, &k->b, SCL_RECORD_DATA,
		    scl_slice_of(k->data, k->payload));
	}
	if (e == SCL_OK)
		e = scl_capsule_writer_seal_batch(k->w, &k->b, cli_now_us());
	if (e == SCL_OK)
		e = scl_client_append_submit(k->c, &k->b, quorum, window,
		    ticket);
	return e;
}

/* Seals @batches batches of @batch x @payload and appends them with up
 * to @window in flight; latency is submit-to-quorum per batch. */
static enum scl_err
run_load(struct load_result *out, struct cluster *cl, unsigned quorum,
    size_t payload, size_t batch, size_t batches, unsigned window)
{
	struct bench_cap k;
	uint64_t *tickets = calloc(batches, sizeof(*tickets));
	double *sent = calloc(batches, sizeof(*sent));
	double *lat = calloc(batches, sizeof(*lat)), t0;
	size_t done = 0;
	enum scl_err e;

	if (!tickets || !sent || !lat) {
		e = scl_err_set(SCL_ENOMEM, "bench buffers");
		goto done;
	}
	if ((e = cap_open(&k, cl, quorum, payload)) != SCL_OK)
		goto done;
	out->commits = server_commits(k.c);
	t0 = bench_now();
	for (size_t i = 0; i < batches && e == SCL_OK; i++) {
		if (i >= window) {
			size_t j = i - window;
			if ((e = scl_client_append_wait(k.c, tickets[j],
				 NULL)) != SCL_OK)
				break;
			lat[done++] = bench_now() - sent[j];
		}
		sent[i] = bench_now();
		e = cap_append(&k, batch, quorum, window, &tickets[i]);
	}
	for (size_t j = done; j < batches && e == SCL_OK; j++) {
		if ((e = scl_client_append_wait(k.c, tickets[j], NULL)) !=
		    SCL_OK)
			break;
		lat[done++] = bench_now() - sent[j];
	}
	if (e == SCL_OK) {
		double secs = bench_now() - t0;
		out->records = (uint64_t)(batches * batch);
		out->records_per_s = (double)out->records / secs;
		out->p50_ms = bench_quantile(lat, done, 0.5) * 1e3;
		out->p99_ms = bench_quantile(lat, done, 0.99) * 1e3;
		out->commits = server_commits(k.c) - out->commits;
	}
	cap_close(&k);
done:
	free(tickets);
	free(sent);
	free(lat);
	return e;
}

/* One server, KVS-shaped appends (4 records of 64 KiB each, 2 in flight,
 * as a worker's appender sends them) until the store holds @grow_mb,
 * printing every @step_mb what an append costs the server: its CPU per
 * append, the rate, the latency and the store's file size.  A server
 * whose cost grows with its store would show here. */
static enum scl_err
run_growth(struct cluster *cl, uint64_t grow_mb, uint64_t step_mb)
{
	enum { PAYLOAD = 64 * 1024, PER_APPEND = 4, WINDOW = 2 };
	size_t per_step = (size_t)(step_mb << 20) / (PAYLOAD * PER_APPEND);
	size_t steps = (size_t)(grow_mb / step_mb);
	struct bench_cap k;
	uint64_t tickets[WINDOW] = { 0 }, sent = 0, acked = 0;
	double when[WINDOW] = { 0 }, *lat = calloc(per_step, sizeof(*lat));
	char store[PATH_MAX + 32];
	enum scl_err e;

	if (lat == NULL)
		return scl_err_set(SCL_ENOMEM, "bench buffers");
	if ((e = cap_open(&k, cl, 1, PAYLOAD)) != SCL_OK) {
		free(lat);
		return e;
	}
	snprintf(store, sizeof(store), "%s/store/data.mdb", cl->data[0]);
	for (size_t step = 0; step < steps && e == SCL_OK; step++) {
		double t0 = bench_now(), cpu0 = bench_cpu_secs(cl->pid[0]);
		size_t n = 0;
		struct stat st;

		while (n < per_step && e == SCL_OK) {
			if (sent - acked == WINDOW) {
				size_t j = acked % WINDOW;
				if ((e = scl_client_append_wait(k.c, tickets[j],
					 NULL)) != SCL_OK)
					break;
				lat[n++] = bench_now() - when[j];
				acked++;
			}
			when[sent % WINDOW] = bench_now();
			e = cap_append(&k, PER_APPEND, 1, WINDOW,
			    &tickets[sent++ % WINDOW]);
		}
		if (e != SCL_OK)
			break;
		t0 = bench_now() - t0;
		printf("{\"bench\":\"server\",\"what\":\"growth\","
		       "\"stored_mb\":%llu,\"file_mb\":%.0f,"
		       "\"appends_per_s\":%.1f,\"server_cpu_ms_per_append\":"
		       "%.3f,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
		    (unsigned long long)((step + 1) * step_mb),
		    stat(store, &st) == 0 ? (double)st.st_size / (1 << 20) : 0,
		    (double)n / t0,
		    (bench_cpu_secs(cl->pid[0]) - cpu0) * 1e3 / (double)n,
		    bench_quantile(lat, n, 0.5) * 1e3,
		    bench_quantile(lat, n, 0.99) * 1e3);
		fflush(stdout);
	}
	while (acked < sent && e == SCL_OK)
		e = scl_client_append_wait(k.c, tickets[acked++ % WINDOW],
		    NULL);
	cap_close(&k);
	free(lat);
	return e;
}

static int
bench_server_growth(struct cli_args *a, const char *root, uint64_t grow_mb)
{
	uint64_t step = grow_mb < 2048 ? (grow_mb + 7) / 8 : 256;
	struct cluster one;
	char rm[PATH_MAX + 16];
	enum scl_err e = SCL_OK;
	int started;

	memset(&one, 0, sizeof(one));
	fprintf(stderr, "bench server: growing one server's store to %llu MB "
			"in steps of %llu MB...\n",
	    (unsigned long long)grow_mb, (unsigned long long)step);
	if ((started = cluster_start(&one, 1, root, "grow")) == 0)
		e = run_growth(&one, grow_mb, step);
	cluster_stop(&one);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", root);
	if (system(rm) != 0)
		fprintf(stderr, "bench server: could not remove %s\n", root);
	if (started != 0)
		return cli_fail(a, "could not start a server under %s", root);
	return e == SCL_OK ? CLI_OK : cli_fail_err(a, e);
}

int bench_server(struct cli_args *a);

int
bench_server(struct cli_args *a)
{
	char root[PATH_MAX], path[PATH_MAX + 32];
	const char *dir = cli_get(a, "dir");
	struct cluster one, three;
	struct load_result r1 = { 0 }, r3 = { 0 }, l1 = { 0 }, l3 = { 0 };
	struct load_result small = { 0 };
	uint64_t batches, grow_mb;
	double fsync_rate;
	enum scl_err e = SCL_OK;

	if (!cli_get_u64(a, "batches", &batches))
		return CLI_USAGE;
	if (!cli_get_u64(a, "grow-mb", &grow_mb))
		return CLI_USAGE;
	if ((size_t)snprintf(root, sizeof(root), "%s/scl-bench-XXXXXX",
		dir ? dir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp")) >=
	    sizeof(root))
		return cli_misuse(a, "--dir path too long");
	if (mkdtemp(root) == NULL)
		return cli_fail(a, "cannot create %s: %s", root,
		    strerror(errno));
	if (grow_mb)
		return bench_server_growth(a, root, grow_mb);
	fprintf(stderr, "bench server: raw LMDB fsync'd commits...\n");
	snprintf(path, sizeof(path), "%s/raw", root);
	fsync_rate = lmdb_commit_rate(path, 2.0);
	printf("{\"bench\":\"server\",\"what\":\"limit\",\"op\":\"lmdb_fsync_"
	       "commit\",\"payload\":1024,\"commits_per_s\":%.0f}\n",
	    fsync_rate);
	fflush(stdout);
	memset(&one, 0, sizeof(one));
	memset(&three, 0, sizeof(three));
	fprintf(stderr, "bench server: N=1...\n");
	if (cluster_start(&one, 1, root, "n1") == 0) {
		e = run_load(&r1, &one, 1, 1024, 64, batches, 32);
		if (e == SCL_OK)
			e = run_load(&l1, &one, 1, 1024, 64, 200, 1);
		/* Small appends, many in flight: what group commit is for. */
		if (e == SCL_OK)
			e = run_load(&small, &one, 1, 100, 1, 8 * batches, 256);
	}
	cluster_stop(&one);
	fprintf(stderr, "bench server: N=3 W=2...\n");
	if (e == SCL_OK && cluster_start(&three, 3, root, "n3") == 0) {
		e = run_load(&r3, &three, 2, 1024, 64, batches, 32);
		if (e == SCL_OK)
			e = run_load(&l3, &three, 2, 1024, 64, 200, 1);
	}
	cluster_stop(&three);
	if (e != SCL_OK)
		return cli_fail_err(a, e);
	printf("{\"bench\":\"server\",\"what\":\"append\",\"servers\":1,"
	       "\"quorum\":1,\"payload\":1024,\"batch\":64,\"window\":32,"
	       "\"records\":%llu,\"records_per_s\":%.0f,\"batches_per_s\":%.0f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"idle_p50_ms\":%.2f,"
	       "\"idle_p99_ms\":%.2f,\"batches_per_fsync\":%.1f,"
	       "\"ratio_records_to_fsync_commits\":%.1f}\n",
	    (unsigned long long)r1.records, r1.records_per_s,
	    r1.records_per_s / 64, r1.p50_ms, r1.p99_ms, l1.p50_ms, l1.p99_ms,
	    r1.commits ? (double)r1.records / 64 / (double)r1.commits : 0,
	    r1.records_per_s / fsync_rate);
	printf("{\"bench\":\"server\",\"what\":\"append\",\"servers\":1,"
	       "\"quorum\":1,\"payload\":100,\"batch\":1,\"window\":256,"
	       "\"appends\":%llu,\"appends_per_s\":%.0f,\"p50_ms\":%.2f,"
	       "\"p99_ms\":%.2f,\"appends_per_fsync\":%.1f,"
	       "\"ratio_to_fsync_commits\":%.2f}\n",
	    (unsigned long long)small.records, small.records_per_s,
	    small.p50_ms, small.p99_ms,
	    small.commits ? (double)small.records / (double)small.commits : 0,
	    small.records_per_s / fsync_rate);
	printf("{\"bench\":\"server\",\"what\":\"append\",\"servers\":3,"
	       "\"quorum\":2,\"payload\":1024,\"batch\":64,\"window\":32,"
	       "\"records\":%llu,\"records_per_s\":%.0f,\"batches_per_s\":%.0f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"idle_p50_ms\":%.2f,"
	       "\"idle_p99_ms\":%.2f,\"ratio_to_n1\":%.3f}\n",
	    (unsigned long long)r3.records, r3.records_per_s,
	    r3.records_per_s / 64, r3.p50_ms, r3.p99_ms, l3.p50_ms, l3.p99_ms,
	    r3.records_per_s / r1.records_per_s);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	if (system(path) != 0)
		fprintf(stderr, "bench server: could not remove %s\n", root);
	return CLI_OK;
}
