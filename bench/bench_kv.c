/*
 * bench_kv.c - scl bench kv: YCSB workloads A (50% reads, 50% updates),
 * B (95/5) and C (reads only) with zipfian keys and 100-byte values,
 * against workers of a real deployment on loopback: 3 capsule servers
 * (N=3, W=2), a router, the key broker, and 1 or 3 workers whose cores
 * run in the process backend.  In the same run: the same KVS with
 * encryption, signatures and replication off (--plain), Redis
 * (redis-server on loopback) with the same operations pipelined the
 * same way, and the put->visible-at-a-peer latency at half the peak
 * load.  JSON lines on stdout; progress on stderr.
 *
 * Clients pipeline: each keeps `window` requests of `per_req` operations
 * in flight (as a Redis client pipelines commands), over ZeroMQ to the
 * worker, over TCP (RESP) to Redis.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "scl/codec.h"
#include "scl/kvclient.h"

#define VALUE_BYTES 100
#define WORKERS_MAX 3

/* --- keys: YCSB's scrambled zipfian ------------------------------------------ */

struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta;
	double rank1_below;	/* uz below it is rank 1: 1 + 0.5^theta */
	uint64_t rng;
};

static double
zeta(uint64_t n, double theta)
{
	double s = 0;

	for (uint64_t i = 1; i <= n; i++)
		s += 1.0 / pow((double)i, theta);
	return s;
}

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* Gray et al., "Quickly generating billion-record synthetic databases",
 * as YCSB does it; @zetan is shared (it costs n pow() calls). */
static void
zipf_init(struct zipf *z, uint64_t n, double zetan, uint64_t seed)
{
	z->n = n;
	z->theta = 0.99;
	z->alpha = 1.0 / (1.0 - z->theta);
	z->zetan = zetan;
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - z->theta)) /
	    (1.0 - zeta(2, z->theta) / zetan);
	z->rank1_below = 1.0 + pow(0.5, z->theta);
	z->rng = seed;
}

static uint64_t
zipf_key(struct zipf *z)
{
	double u = rng_unit(&z->rng), uz = u * z->zetan;
	uint64_t rank;

	if (uz < 1.0)
		rank = 0;
	else if (uz < z->rank1_below)
		rank = 1;
	else
		rank = (uint64_t)((double)z->n *
		    pow(z->eta * u - z->eta + 1.0, z->alpha));
	if (rank >= z->n)
		rank = z->n - 1;
	/* scrambled: the hot keys are spread over the key space */
	return rng_next(&(uint64_t){ rank * 0x100000001b3ull }) % z->n;
}

/* "user%012llu" (records are far below 10^12), without printf: the
 * load generator shares the machine with what it measures. */
static int
key_name(char *out, uint64_t k)
{
	memcpy(out, "user", 4);
	for (int i = 15; i >= 4; i--, k /= 10)
		out[i] = (char)('0' + k % 10);
	out[16] = '\0';
	return 16;
}

/* --- the deployment ------------------------------------------------------------ */

struct env {
	char root[PATH_MAX / 2];	/* room for the leaves under it */
	char servers[3][64], router[64], broker[64], worker[WORKERS_MAX][64];
	char server_list[256], name[128], platform_pub[128];
	pid_t spid[3], rpid, bpid, wpid[WORKERS_MAX];
	int n_workers;
	/* the workers' --batch-delay-us, --batch, --seal-gap-us,
	 * --seal-clock-max and --store-delay-us; the servers' --nice */
	char delay[24], batch[24], gap[24], clock_max[24], store_delay[24];
	char server_nice[24];
};

static void
path(char *out, const struct env *e, const char *leaf)
{
	/* root is at most PATH_MAX / 2 and leaves are short */
	if ((size_t)snprintf(out, PATH_MAX, "%.*s/%.64s", PATH_MAX / 2 - 1,
		e->root, leaf) >= PATH_MAX)
		out[0] = '\0';
}

static bool
env_start(struct env *e)
{
	char p[PATH_MAX], ready[PATH_MAX], data[PATH_MAX], owner[PATH_MAX];
	char platform[PATH_MAX], meas[128], log[PATH_MAX];

	for (int i = 0; i < 3; i++)
		snprintf(e->servers[i], 64, "tcp://127.0.0.1:%d",
		    bench_free_port());
	snprintf(e->server_list, sizeof(e->server_list), "%s,%s,%s",
	    e->servers[0], e->servers[1], e->servers[2]);
	snprintf(e->router, 64, "tcp://127.0.0.1:%d", bench_free_port());
	snprintf(e->broker, 64, "tcp://127.0.0.1:%d", bench_free_port());
	for (int i = 0; i < 3; i++) {
		char peers[256];
		snprintf(peers, sizeof(peers), "%s,%s", e->servers[(i + 1) % 3],
		    e->servers[(i + 2) % 3]);
		snprintf(p, sizeof(p), "s%d", i);
		path(data, e, p);
		snprintf(p, sizeof(p), "ready-s%d", i);
		path(ready, e, p);
		e->spid[i] = bench_spawn((char *[]){ "scl", "server",
		    "--listen", e->servers[i], "--data", data, "--peers", peers,
		    "--log-level", "error", "--ready-file", ready, "--nice",
		    e->server_nice, NULL }, NULL);
	}
	path(ready, e, "ready-router");
	e->rpid = bench_spawn((char *[]){ "scl", "router", "--listen",
	    e->router, "--log-level", "error", "--ready-file", ready, NULL },
	    NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "ready-s%d", i);
		path(ready, e, p);
		if (!bench_wait_file(ready, NULL, 10))
			return false;
	}
	path(owner, e, "owner.key");
	path(platform, e, "platform.key");
	path(p, e, "owner");
	if (!bench_run((char *[]){ "scl", "keys", "gen", "--out", owner, NULL },
		NULL, 0) ||
	    !bench_run((char *[]){ "scl", "keys", "gen", "--out", platform,
		NULL }, NULL, 0) ||
	    !bench_run((char *[]){ "scl", "capsule", "create", "--dir", p,
		"--servers", e->server_list, "--owner-key", owner, "--label",
		"bench kv", NULL }, e->name, sizeof(e->name)) ||
	    !bench_run((char *[]){ "scl", "keys", "measure", NULL }, meas,
		sizeof(meas)) ||
	    !bench_run((char *[]){ "scl", "keys", "show", platform, NULL },
		e->platform_pub, sizeof(e->platform_pub)))
		return false;
	path(log, e, "broker.log");
	e->bpid = bench_spawn((char *[]){ "scl", "keys", "serve", e->name,
	    "--dir", p, "--listen", e->broker, "--allow", meas,
	    "--trust-platform", e->platform_pub, NULL }, log);
	return bench_wait_file(log, "serving", 10);
}

static bool
workers_start(struct env *e, int n, bool plain)
{
	char home[PATH_MAX], log[PATH_MAX], p[64], platform[PATH_MAX];

	path(platform, e, "platform.key");
	e->n_workers = n;
	for (int i = 0; i < n; i++) {
		snprintf(e->worker[i], 64, "tcp://127.0.0.1:%d",
		    bench_free_port());
		snprintf(p, sizeof(p), "w%d-%s", i, plain ? "plain" : "paranoid");
		path(home, e, p);
		snprintf(p, sizeof(p), "w%d-%s.log", i,
		    plain ? "plain" : "paranoid");
		path(log, e, p);
		e->wpid[i] = bench_spawn((char *[]){ "scl", "worker",
		    "--capsule", e->name, "--dir", home, "--broker", e->broker,
		    "--platform-key", platform, "--servers", e->server_list,
		    "--router", e->router, "--listen", e->worker[i],
		    "--batch-delay-us", e->delay, "--batch", e->batch,
		    "--seal-gap-us", e->gap, "--seal-clock-max", e->clock_max,
		    "--store-delay-us", e->store_delay, "--no-catch-up",
		    plain ? "--plain" : NULL, NULL }, log);
	}
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "w%d-%s.log", i,
		    plain ? "plain" : "paranoid");
		path(log, e, p);
		if (!bench_wait_file(log, "serving clients", 20)) {
			fprintf(stderr, "bench kv: worker %d did not start; "
					"see %s\n", i, log);
			return false;
		}
	}
	return true;
}

static void
workers_stop(struct env *e)
{
	for (int i = 0; i < e->n_workers; i++)
		bench_stop(e->wpid[i]);
	e->n_workers = 0;
}

static void
env_stop(struct env *e)
{
	workers_stop(e);
	bench_stop(e->bpid);
	bench_stop(e->rpid);
	for (int i = 0; i < 3; i++)
		bench_stop(e->spid[i]);
}

/* --- SCL clients ---------------------------------------------------------------- */

struct conn {
	struct scl_kvclient *kc;
	struct scl_buf ops;
};

static bool
conn_open(struct conn *c, const char *ep)
{
	memset(c, 0, sizeof(*c));
	scl_buf_init(&c->ops);
	if (scl_kvclient_new(&c->kc, ep, NULL) != SCL_OK) {
		scl_err_clear();
		return false;
	}
	return true;
}

static void
conn_close(struct conn *c)
{
	scl_kvclient_free(c->kc);
	c->kc = NULL;
	scl_buf_dispose(&c->ops);
}

static bool
conn_send(struct conn *c, uint8_t kind, uint8_t flags, uint32_t n)
{
	if (scl_kvclient_send(c->kc, kind, flags, n, scl_buf_slice(&c->ops),
		NULL) == SCL_OK)
		return true;
	scl_err_clear();
	return false;
}

/* One successful reply; its body is copied to @body when given. */
static bool
conn_recv(struct conn *c, struct scl_buf *body)
{
	struct scl_kvclient_reply r;

	if (scl_kvclient_recv(c->kc, &r) != SCL_OK) {
		scl_err_clear();
		return false;
	}
	return r.err == SCL_OK && (body == NULL ||
				      scl_buf_set(body, r.body) == SCL_OK);
}

static uint64_t
status_field(struct conn *c, const char *field)
{
	struct scl_buf body;
	char pat[64], *at;
	uint64_t v = 0;

	scl_buf_init(&body);
	scl_buf_clear(&c->ops);
	snprintf(pat, sizeof(pat), "\"%s\":", field);
	if (conn_send(c, SCL_KVCLIENT_STATUS, 0, 0) && conn_recv(c, &body) &&
	    scl_buf_append(&body, "", 1) == SCL_OK &&
	    (at = strstr((char *)body.ptr, pat)) != NULL)
		v = strtoull(at + strlen(pat), NULL, 10);
	scl_buf_dispose(&body);
	return v;
}

/* --- Redis, over RESP ------------------------------------------------------------ */

struct rconn {
	int fd;
	char *out, *in;
	size_t out_len, in_len, in_cap;
};

static bool
rconn_open(struct rconn *r, int port)
{
	struct sockaddr_in a;
	int one = 1;

	memset(r, 0, sizeof(*r));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->in_cap = 1 << 20;
	r->in = malloc(r->in_cap);
	r->out = malloc(1 << 20);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || r->in == NULL || r->out == NULL ||
	    connect(r->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return false;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return true;
}

static void
rconn_close(struct rconn *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->in);
	free(r->out);
}

static void
rconn_cmd(struct rconn *r, const char *key, int klen, const char *value)
{
	if (value)
		r->out_len += (size_t)sprintf(r->out + r->out_len,
		    "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%.*s\r\n", klen, key,
		    VALUE_BYTES, VALUE_BYTES, value);
	else
		r->out_len += (size_t)sprintf(r->out + r->out_len,
		    "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", klen, key);
}

static bool
rconn_flush(struct rconn *r)
{
	size_t off = 0;

	while (off < r->out_len) {
		ssize_t n = write(r->fd, r->out + off, r->out_len - off);
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	r->out_len = 0;
	return true;
}

/* Length of the complete reply at the start of @p, or 0. */
static size_t
resp_reply_len(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	long len;
	size_t head;

	if (nl == NULL)
		return 0;
	head = (size_t)(nl - p) + 1;
	if (p[0] != '$')
		return head; /* +OK, -ERR, :n */
	len = strtol(p + 1, NULL, 10);
	if (len < 0)
		return head; /* $-1: nil */
	return n >= head + (size_t)len + 2 ? head + (size_t)len + 2 : 0;
}

static bool
rconn_read_replies(struct rconn *r, unsigned want)
{
	while (want > 0) {
		size_t len;
		while ((len = resp_reply_len(r->in, r->in_len)) > 0 && want) {
			memmove(r->in, r->in + len, r->in_len - len);
			r->in_len -= len;
			want--;
		}
		if (want == 0)
			break;
		ssize_t n = read(r->fd, r->in + r->in_len, r->in_cap - r->in_len);
		if (n <= 0)
			return false;
		r->in_len += (size_t)n;
	}
	return true;
}

/* --- load -------------------------------------------------------------------------- */

struct load {
	/* input */
	const char *ep;		/* SCL worker, or NULL for Redis */
	int redis_port;
	int read_pct;
	double seconds;
	double target;		/* ops/s for this client; 0: as fast as it can */
	unsigned window, per_req;
	uint64_t records;
	double zetan;
	uint64_t seed;
	/* output */
	uint64_t ops;
	double elapsed;
	bool failed;
};

/* v[i] = 'a' + (k + round + i) % 26, copied from a repeating alphabet. */
static void
make_value(char *v, uint64_t k, uint64_t round)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyz"
				  "abcdefghijklmnopqrstuvwxyz"
				  "abcdefghijklmnopqrstuvwxyz"
				  "abcdefghijklmnopqrstuvwxyz"
				  "abcdefghijklmnopqrstuvwxyz";
	_Static_assert(sizeof(abc) - 1 >= 25 + VALUE_BYTES, "alphabet");
	memcpy(v, abc + (k + round) % 26, VALUE_BYTES);
}

/* Appends one request of @n operations to the SCL buffer or Redis pipe. */
static void
build_request(struct load *l, struct zipf *z, struct conn *c, struct rconn *r,
    unsigned n, uint64_t round)
{
	char key[32], value[VALUE_BYTES];

	scl_buf_clear(&c->ops);
	for (unsigned i = 0; i < n; i++) {
		uint64_t k = zipf_key(z);
		int klen = key_name(key, k);
		bool read = (int)(rng_next(&z->rng) % 100) < l->read_pct;
		if (!read)
			make_value(value, k, round);
		if (r) {
			rconn_cmd(r, key, klen, read ? NULL : value);
		} else {
			struct scl_kvreq q = { .op = read ? SCL_KVREQ_GET
							  : SCL_KVREQ_PUT };
			q.key = scl_slice_of(key, (size_t)klen);
			q.value = scl_slice_of(value, read ? 0 : VALUE_BYTES);
			if (scl_kvreq_encode(&c->ops, &q) != SCL_OK)
				l->failed = true;
		}
	}
}

static void *
load_main(void *arg)
{
	struct load *l = arg;
	struct zipf z;
	struct conn c;
	struct rconn r;
	unsigned inflight = 0;
	double t0, deadline;
	uint64_t round = 0;

	zipf_init(&z, l->records, l->zetan, l->seed);
	memset(&r, 0, sizeof(r));
	r.fd = -1;
	if (l->ep ? !conn_open(&c, l->ep) : !rconn_open(&r, l->redis_port)) {
		l->failed = true;
		return NULL;
	}
	if (!l->ep)
		memset(&c, 0, sizeof(c));
	t0 = bench_now();
	deadline = t0 + l->seconds;
	for (;;) {
		double now = bench_now();
		bool more = now < deadline;
		if (more && l->target > 0 &&
		    (double)(l->ops + inflight * l->per_req) >
			l->target * (now - t0)) {
			if (inflight == 0) {
				usleep(200);
				continue;
			}
			more = false; /* ahead of the rate: only collect */
		}
		if (more && inflight < l->window) {
			build_request(l, &z, &c, l->ep ? NULL : &r, l->per_req,
			    round++);
			if (l->ep ? !conn_send(&c, SCL_KVCLIENT_OPS, 0,
					l->per_req)
				  : !rconn_flush(&r)) {
				l->failed = true;
				break;
			}
			inflight++;
			continue;
		}
		if (inflight == 0) {
			if (bench_now() >= deadline)
				break;
			continue;
		}
		if (l->ep ? !conn_recv(&c, NULL)
			  : !rconn_read_replies(&r, l->per_req)) {
			l->failed = true;
			break;
		}
		inflight--;
		l->ops += l->per_req;
	}
	l->elapsed = bench_now() - t0;
	if (l->ep)
		conn_close(&c);
	else
		rconn_close(&r);
	return NULL;
}

struct cfg {
	double seconds;
	uint64_t records;
	unsigned clients, window, per_req;
	double zetan;
};

/* Client threads for @n_eps endpoints: --clients, but at least one per
 * endpoint, so that every worker of a round carries load. */
static unsigned
clients_for(const struct cfg *cf, int n_eps)
{
	return cf->clients > (unsigned)n_eps ? cf->clients : (unsigned)n_eps;
}

/* Runs the clients' loads at once; returns total ops/s (0 on failure). */
static double
run_loads(const struct cfg *cf, const char *const *eps, int n_eps,
    int redis_port, int read_pct, double target_total)
{
	struct load l[16];
	pthread_t th[16];
	unsigned clients = clients_for(cf, n_eps);
	uint64_t ops = 0;
	double elapsed = 0;
	bool failed = false;

	for (unsigned i = 0; i < clients; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].ep = eps ? eps[i % (unsigned)n_eps] : NULL;
		l[i].redis_port = redis_port;
		l[i].read_pct = read_pct;
		l[i].seconds = cf->seconds;
		l[i].target = target_total / clients;
		l[i].window = cf->window;
		l[i].per_req = cf->per_req;
		l[i].records = cf->records;
		l[i].zetan = cf->zetan;
		l[i].seed = 1000 + i * 7919;
		pthread_create(&th[i], NULL, load_main, &l[i]);
	}
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		ops += l[i].ops;
		if (l[i].elapsed > elapsed)
			elapsed = l[i].elapsed;
		failed |= l[i].failed;
	}
	return failed || elapsed <= 0 ? 0 : (double)ops / elapsed;
}

/* Sends one op on @c: a put of @value, or a get if @value is NULL, with
 * the request @flags.  conn_op_reply() takes its answer. */
static bool
conn_op_send(struct conn *c, struct scl_slice key, const char *value,
    uint8_t flags)
{
	struct scl_kvreq q = { .op = value ? SCL_KVREQ_PUT : SCL_KVREQ_GET };

	q.key = key;
	if (value)
		q.value = scl_slice_of(value, strlen(value));
	scl_buf_clear(&c->ops);
	return scl_kvreq_encode(&c->ops, &q) == SCL_OK &&
	    conn_send(c, SCL_KVCLIENT_OPS, flags, 1);
}

/* The answer to the op conn_op_send() sent (@op its kind); for a get,
 * whether the key was found and (if @got is not NULL) its value. */
static bool
conn_op_reply(struct conn *c, enum scl_kvreq_op op, bool *found,
    struct scl_buf *got)
{
	struct scl_buf body;
	struct scl_dec d;
	struct scl_kvres res;
	bool ok;

	scl_buf_init(&body);
	ok = conn_recv(c, &body);
	if (ok && found) {
		scl_dec_init(&d, scl_buf_slice(&body), "result");
		*found = scl_kvres_decode(&d, op, &res) == SCL_OK && res.ok;
		if (*found && got)
			ok = scl_buf_set(got, res.value) == SCL_OK;
	}
	scl_buf_dispose(&body);
	return ok;
}

/* One op on @c, sent and answered (conn_op_send, conn_op_reply). */
static bool
conn_op_flags(struct conn *c, struct scl_slice key, const char *value,
    uint8_t flags, bool *found, struct scl_buf *got)
{
	return conn_op_send(c, key, value, flags) &&
	    conn_op_reply(c, value ? SCL_KVREQ_PUT : SCL_KVREQ_GET, found,
		got);
}

static bool
conn_op(struct conn *c, struct scl_slice key, const char *value, bool *found,
    struct scl_buf *got)
{
	return conn_op_flags(c, key, value, 0, found, got);
}

/*
 * Seconds from now until the servers hold every put the @n workers took
 * so far: a durable put on each, which waits for the appends before it.
 * A paranoid round's rate is charged this time, so work the servers had
 * not done yet when the load stopped is not left out of it (nor pushed
 * into the next round).  Negative on failure.
 */
static double
servers_lag(const struct env *e, int n)
{
	struct conn c;
	double t0 = bench_now();

	for (int w = 0; w < n; w++) {
		bool ok = conn_open(&c, e->worker[w]) &&
		    conn_op_flags(&c, scl_slice_of("bench/durable", 13), "1",
			SCL_KVCLIENT_DURABLE, NULL, NULL);
		conn_close(&c);
		if (!ok)
			return -1;
	}
	return bench_now() - t0;
}

/* Waits (10 s at most) until every worker hears every other through the
 * router: each puts a marker, again every 50 ms, until every worker has
 * them all.  A worker that subscribes after a peer's first batch went
 * out misses it, and a plain replica, with no servers to fetch from,
 * would never catch up (the preload would wait for it in vain). */
static bool
await_mesh(struct env *e)
{
	struct conn c[WORKERS_MAX];
	int opened = 0;
	bool all = false;

	for (; opened < e->n_workers; opened++)
		if (!conn_open(&c[opened], e->worker[opened]))
			goto done;
	for (int round = 0; !all && round < 200; round++) {
		char key[32], value[16];
		all = true;
		snprintf(value, sizeof(value), "%d", round);
		for (int w = 0; w < e->n_workers; w++) {
			int kl = snprintf(key, sizeof(key), "bench/mesh/%d", w);
			if (!conn_op(&c[w], scl_slice_of(key, (size_t)kl), value,
				NULL, NULL))
				goto done;
		}
		usleep(50000);
		for (int v = 0; all && v < e->n_workers; v++)
			for (int w = 0; all && w < e->n_workers; w++) {
				int kl = snprintf(key, sizeof(key),
				    "bench/mesh/%d", w);
				bool found = false;
				if (!conn_op(&c[v], scl_slice_of(key, (size_t)kl),
					NULL, &found, NULL))
					goto done;
				all = found;
			}
	}
done:
	while (opened > 0)
		conn_close(&c[--opened]);
	if (!all)
		fprintf(stderr, "bench kv: the workers do not all hear each "
				"other through the router (see %s)\n", e->root);
	return all;
}

/* Every key once (the YCSB load phase); true once every worker holds
 * them all. */
static bool
preload_scl(const struct cfg *cf, struct env *e, bool durable)
{
	struct conn c;
	char key[32], value[VALUE_BYTES];
	unsigned inflight = 0;
	bool ok = conn_open(&c, e->worker[0]);

	for (uint64_t k = 0; ok && k < cf->records;) {
		uint32_t n = 0;
		scl_buf_clear(&c.ops);
		for (; n < 256 && k < cf->records; n++, k++) {
			struct scl_kvreq q = { .op = SCL_KVREQ_PUT };
			q.key = scl_slice_of(key, (size_t)key_name(key, k));
			make_value(value, k, 0);
			q.value = scl_slice_of(value, VALUE_BYTES);
			ok = scl_kvreq_encode(&c.ops, &q) == SCL_OK;
		}
		ok = ok && conn_send(&c, SCL_KVCLIENT_OPS,
		    durable && k == cf->records ? SCL_KVCLIENT_DURABLE : 0, n);
		if (++inflight == 8 || k == cf->records)
			for (; ok && inflight; inflight--)
				ok = conn_recv(&c, NULL);
	}
	conn_close(&c);
	for (int w = 0; ok && w < e->n_workers; w++) {
		struct conn s;
		double t0 = bench_now();
		bool have = false;
		if (!conn_open(&s, e->worker[w]))
			return false;
		while (!have && bench_now() - t0 < 60) {
			/* the records and await_mesh's markers */
			have = status_field(&s, "keys") >=
			    cf->records + (uint64_t)e->n_workers;
			if (!have)
				usleep(50000);
		}
		conn_close(&s);
		ok = have;
	}
	return ok;
}

static bool
preload_redis(const struct cfg *cf, int port)
{
	struct rconn r;
	char key[32], value[VALUE_BYTES];
	bool ok = rconn_open(&r, port);

	for (uint64_t k = 0; ok && k < cf->records;) {
		unsigned n = 0;
		for (; n < 256 && k < cf->records; n++, k++) {
			make_value(value, k, 0);
			rconn_cmd(&r, key, key_name(key, k), value);
		}
		ok = rconn_flush(&r) && rconn_read_replies(&r, n);
	}
	rconn_close(&r);
	return ok;
}

/* The operations a lambda in the core would make, run there and timed
 * there: the state API without the client's socket, the rings or the
 * results.  The keys and values are the load's own, built here.  The
 * core writes far faster than the servers store (a YCSB-A round seals
 * ~200 MB/s), so the worker soon refuses writes until they catch up
 * (--unstored-max-mb): the run then waits and asks again, and only the
 * core's own time counts. */
static double
run_local(const struct cfg *cf, const char *ep, int read_pct)
{
	struct scl_kvclient_reply r;
	struct conn c;
	struct zipf z;
	char key[32], value[VALUE_BYTES];
	uint64_t ops = 0, ns = 0, round = 0;
	double deadline = bench_now() + cf->seconds;
	bool ok = conn_open(&c, ep);

	zipf_init(&z, cf->records, cf->zetan, 99);
	while (ok && bench_now() < deadline) {
		const uint32_t n = 32768;
		enum scl_err e;
		scl_buf_clear(&c.ops);
		for (uint32_t i = 0; ok && i < n; i++) {
			uint64_t k = zipf_key(&z);
			bool read = (int)(rng_next(&z.rng) % 100) < read_pct;
			struct scl_kvreq q = { .op = read ? SCL_KVREQ_GET
							  : SCL_KVREQ_PUT };
			q.key = scl_slice_of(key, (size_t)key_name(key, k));
			if (!read) {
				make_value(value, k, round);
				q.value = scl_slice_of(value, VALUE_BYTES);
			}
			ok = scl_kvreq_encode(&c.ops, &q) == SCL_OK;
		}
		round++;
		do {
			e = scl_kvclient_call(c.kc, SCL_KVCLIENT_TIMED, 0, n,
			    scl_buf_slice(&c.ops), &r);
			if (e == SCL_EFULL)
				usleep(50000); /* the servers catch up */
		} while (e == SCL_EFULL && bench_now() < deadline + 30);
		ok = ok && e == SCL_OK && r.body.len == 8;
		if (ok) {
			ns += scl_le64_load(r.body.ptr);
			ops += n;
		}
	}
	if (!ok)
		fprintf(stderr, "bench kv: the run in the core failed: %s\n",
		    scl_err_last());
	conn_close(&c);
	return ok && ns ? (double)ops * 1e9 / (double)ns : 0;
}

/* --- put -> visible at a peer -------------------------------------------------------- */

/*
 * put -> visible at a peer, two ways, alternating under the same load:
 * serial, the peer read only after the put's answer came back (an upper
 * bound: the answer's way back is in it), and concurrent, the peer read
 * from the moment the put is sent.  Either way a sample ends when the
 * get that saw the value returns.
 */
#define PROBE_MAX 10000

struct probe {
	const char *writer_ep, *reader_ep;
	double seconds;
	double lat[PROBE_MAX];	/* serial: put sent -> a get saw it */
	double put[PROBE_MAX];	/* serial: the put's round trip */
	double get[PROBE_MAX];	/* serial: the round trip of the get that saw it */
	size_t n;
	double conc[PROBE_MAX];	/* concurrent: put sent -> a get saw it */
	size_t n_conc;
	bool failed;
};

/* Polls @r for @key = @v from now until seen (true) or 2 s after @t0;
 * *@tg is when the get that saw it was sent. */
static bool
probe_poll(struct conn *r, struct scl_slice key, const char *v, double t0,
    double *tg, struct scl_buf *got)
{
	while (bench_now() - t0 < 2.0) {
		bool found = false;
		*tg = bench_now();
		if (!conn_op(r, key, NULL, &found, got))
			return false;
		if (found && got->len == strlen(v) &&
		    memcmp(got->ptr, v, got->len) == 0)
			return true;
		usleep(250);
	}
	return false;
}

static void *
probe_main(void *arg)
{
	struct probe *p = arg;
	struct conn w, r;
	struct scl_buf got;
	struct scl_slice key = scl_slice_of("probe", 5);
	double deadline = bench_now() + p->seconds;

	scl_buf_init(&got);
	if (!conn_open(&w, p->writer_ep) || !conn_open(&r, p->reader_ep)) {
		p->failed = true;
		return NULL;
	}
	for (uint64_t seq = 1; bench_now() < deadline && !p->failed &&
	     p->n < PROBE_MAX && p->n_conc < PROBE_MAX; seq++) {
		char v[32];
		double t0, tg = 0, put_ms;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)seq);
		t0 = bench_now();
		if (!conn_op_send(&w, key, v, 0)) {
			p->failed = true;
			break;
		}
		if (seq % 2) {	/* serial */
			if (!conn_op_reply(&w, SCL_KVREQ_PUT, NULL, NULL)) {
				p->failed = true;
				break;
			}
			put_ms = (bench_now() - t0) * 1000.0;
			if (probe_poll(&r, key, v, t0, &tg, &got)) {
				double t = bench_now();
				p->put[p->n] = put_ms;
				p->get[p->n] = (t - tg) * 1000.0;
				p->lat[p->n++] = (t - t0) * 1000.0;
			} else {
				p->failed = true;
			}
		} else {	/* concurrent; the put's answer taken after */
			if (probe_poll(&r, key, v, t0, &tg, &got))
				p->conc[p->n_conc++] =
				    (bench_now() - t0) * 1000.0;
			else
				p->failed = true;
			if (!conn_op_reply(&w, SCL_KVREQ_PUT, NULL, NULL))
				p->failed = true;
		}
		/* Two ways now share the run: half the old pause keeps each
		 * near the samples one way had. */
		usleep(2500);
	}
	scl_buf_dispose(&got);
	conn_close(&w);
	conn_close(&r);
	return NULL;
}

/* --- the benchmark --------------------------------------------------------------------- */

static const struct {
	char name;
	int read_pct;
} workloads[] = { { 'A', 50 }, { 'B', 95 }, { 'C', 100 } };

/* One result line; @cpu_us, the CPU the system under test spent per
 * operation, is left out when negative (not measured). */
static void
emit(const char *system, const char *mode, int workers, char wl,
    double ops, double cpu_us, const struct cfg *cf)
{
	printf("{\"bench\":\"kv\",\"system\":\"%s\",\"mode\":\"%s\","
	       "\"workers\":%d,\"workload\":\"%c\",\"ops_per_s\":%.0f,"
	       "\"records\":%llu,\"value_bytes\":%d,\"clients\":%u,"
	       "\"window\":%u,\"ops_per_request\":%u,\"seconds\":%.1f",
	    system, mode, workers, wl, ops, (unsigned long long)cf->records,
	    VALUE_BYTES, clients_for(cf, workers), cf->window, cf->per_req,
	    cf->seconds);
	if (cpu_us >= 0)
		printf(",\"cpu_us_per_op\":%.3f", cpu_us);
	printf("}\n");
	fflush(stdout);
}

/*
 * CPU seconds the deployment has used so far: servers, router, key
 * broker, and each worker with its core; not the load generator, which
 * shares the machine but would run elsewhere.  -1 if one is unreadable.
 */
static double
deployment_cpu_secs(const struct env *e)
{
	pid_t pids[5 + WORKERS_MAX] = { e->spid[0], e->spid[1], e->spid[2],
		e->rpid, e->bpid };
	int n = 5;
	double total = 0;

	for (int i = 0; i < e->n_workers; i++)
		pids[n++] = e->wpid[i];
	for (int i = 0; i < n; i++) {
		double c = bench_cpu_secs_tree(pids[i]);
		if (c < 0)
			return -1;
		total += c;
	}
	return total;
}

/* Each workload on @n workers; results into @out[A, B, C] and, when
 * not NULL, the deployment's CPU µs per operation into @cpu (-1: not
 * measured). */
static double in_core[3];

static bool
scl_round(struct env *e, const struct cfg *cf, int n, bool plain,
    double out[3], double cpu[3], bool only_a)
{
	const char *eps[WORKERS_MAX];

	fprintf(stderr, "bench kv: %d %s worker%s: loading %llu records\n",
	    n, plain ? "plain" : "paranoid", n > 1 ? "s" : "",
	    (unsigned long long)cf->records);
	if (!workers_start(e, n, plain) || !await_mesh(e) ||
	    !preload_scl(cf, e, !plain)) {
		workers_stop(e);
		return false;
	}
	for (int i = 0; i < n; i++)
		eps[i] = e->worker[i];
	for (size_t w = 0; !plain && n == 1 && !only_a && w < 3; w++) {
		double local;
		fprintf(stderr, "bench kv: YCSB-%c in the core, %.0f s\n",
		    workloads[w].name, cf->seconds);
		local = run_local(cf, e->worker[0], workloads[w].read_pct);
		emit("scl", "in-core", 1, workloads[w].name, local, -1, cf);
		in_core[w] = local;
	}
	for (size_t w = 0; w < (only_a ? 1 : 3); w++) {
		fprintf(stderr, "bench kv: YCSB-%c, %.0f s\n", workloads[w].name,
		    cf->seconds);
		double lag = 0, cpu_us = -1;
		double cpu0 = deployment_cpu_secs(e), cpu1, ops;
		out[w] = run_loads(cf, eps, n, 0, workloads[w].read_pct, 0);
		if (!plain && out[w] > 0 && (lag = servers_lag(e, n)) < 0)
			out[w] = 0;
		if (out[w] == 0)
			fprintf(stderr, "bench kv: the run failed; worker logs "
					"are under %s\n", e->root);
		/* through the servers' lag: the work of this round */
		cpu1 = deployment_cpu_secs(e);
		ops = out[w] * cf->seconds;
		if (cpu0 >= 0 && cpu1 >= cpu0 && ops > 0)
			cpu_us = (cpu1 - cpu0) * 1e6 / ops;
		if (cpu)
			cpu[w] = cpu_us;
		/* ops over (the load's seconds + the servers' lag) */
		out[w] *= cf->seconds / (cf->seconds + lag);
		emit("scl", plain ? "plain" : "paranoid", n, workloads[w].name,
		    out[w], cpu_us, cf);
		if (!plain)
			printf("{\"bench\":\"kv\",\"what\":\"servers_lag\","
			       "\"workers\":%d,\"workload\":\"%c\","
			       "\"lag_ms\":%.1f}\n",
			    n, workloads[w].name, lag * 1e3);
	}
	return true;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(const double *v, unsigned n)
{
	double sorted[BENCH_KV_RATIO_PAIRS_MAX];

	memcpy(sorted, v, n * sizeof(*v));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* plain's CPU per operation over paranoid's (read like the rate ratio:
 * 0.5 = paranoid costs twice as much); -1 when either was not measured. */
static double
cpu_ratio(double paranoid_us, double plain_us)
{
	return paranoid_us > 0 && plain_us > 0 ? plain_us / paranoid_us : -1;
}

/*
 * The paranoid/plain YCSB-A ratio with @n workers, from @repeat pairs of
 * rounds: the one already run (@first: paranoid and plain rates, then
 * their CPU per operation) and repeat - 1 more, each a paranoid round
 * then a plain one.  This machine drifts as much between two rounds a
 * minute apart as most changes move the ratio, so one pair decides
 * little.  Fills @ratios and @cpu_ratios (the deployment's CPU per
 * operation, clients excluded, which drifts less); returns the median
 * rate ratio (0 on failure).
 */
static double
ratio_pairs(struct env *e, const struct cfg *cf, int n, const double first[4],
    unsigned repeat, double *ratios, double *cpu_ratios)
{
	ratios[0] = first[1] > 0 ? first[0] / first[1] : 0;
	cpu_ratios[0] = cpu_ratio(first[2], first[3]);
	for (unsigned i = 1; i < repeat; i++) {
		double pp[3] = { 0 }, pl[3] = { 0 }, cp[3], cl[3];
		fprintf(stderr, "bench kv: ratio pair %u of %u, %d worker%s\n",
		    i + 1, repeat, n, n > 1 ? "s" : "");
		if (!scl_round(e, cf, n, false, pp, cp, true))
			return 0;
		workers_stop(e);
		if (!scl_round(e, cf, n, true, pl, cl, true))
			return 0;
		workers_stop(e);
		ratios[i] = pl[0] > 0 ? pp[0] / pl[0] : 0;
		cpu_ratios[i] = cpu_ratio(cp[0], cl[0]);
	}
	return median(ratios, repeat);
}

/* Appends @n ratios to a JSON line as `"key":[a,b,...]`. */
static void
print_ratios(const char *key, const double *r, unsigned n)
{
	printf(",\"%s\":[", key);
	for (unsigned i = 0; i < n; i++)
		printf("%s%.3f", i ? "," : "", r[i]);
	printf("]");
}

static pid_t
redis_start(int port, const char *dir)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	if ((pid = fork()) == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL ||
		    chdir(dir) != 0)
			_exit(126);
		execlp("redis-server", "redis-server", "--port", p, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--protected-mode", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct rconn r;
		bool up = rconn_open(&r, port);
		rconn_close(&r);
		if (up)
			return pid;
		usleep(50000);
	}
	bench_stop(pid);
	return -1;
}

int bench_kv(struct cli_args *a);

int
bench_kv(struct cli_args *a)
{
	struct env e;
	struct cfg cf;
	uint64_t secs, records, clients, load_pct, delay, batch, gap, clock_max;
	uint64_t store_delay, server_nice;
	uint64_t only, repeat;
	double ratio1 = 0, ratio3 = 0;
	double ratios1[BENCH_KV_RATIO_PAIRS_MAX] = { 0 }, ratios3[BENCH_KV_RATIO_PAIRS_MAX] = { 0 };
	double cpu1[BENCH_KV_RATIO_PAIRS_MAX] = { 0 }, cpu3[BENCH_KV_RATIO_PAIRS_MAX] = { 0 };
	double p1[3] = { 0 }, p3[3] = { 0 }, plain1[3] = { 0 }, plain3[3] = { 0 };
	/* CPU µs per operation of those rounds */
	double cp1[3] = { -1, -1, -1 }, cp3[3] = { -1, -1, -1 };
	double cplain1[3] = { -1, -1, -1 }, cplain3[3] = { -1, -1, -1 };
	double redis[3] = { 0 }, vis_p50 = 0, vis_p99 = 0, vis_load = 0;
	double vis_conc_p99 = 0;
	const char *tmp = getenv("TMPDIR");
	int rc = CLI_FAIL;

	memset(&e, 0, sizeof(e));
	memset(&cf, 0, sizeof(cf));
	if (!cli_get_u64_in(a, "seconds", cli_has(a, "quick") ? 1 : 5, 1, 3600, &secs) ||
	    !cli_get_u64_in(a, "records", cli_has(a, "quick") ? 10000 : 100000, 100, 10000000, &records) ||
	    !cli_get_u64(a, "clients", &clients) ||
	    !cli_get_u64(a, "visibility-load", &load_pct) ||
	    !cli_get_u64(a, "batch-delay-us", &delay) ||
	    !cli_get_u64(a, "batch", &batch) ||
	    !cli_get_u64(a, "seal-gap-us", &gap) ||
	    !cli_get_u64(a, "seal-clock-max", &clock_max) ||
	    !cli_get_u64(a, "store-delay-us", &store_delay) ||
	    !cli_get_u64(a, "server-nice", &server_nice) ||
	    !cli_get_u64(a, "workers", &only) ||
	    !cli_get_u64(a, "ratio-pairs", &repeat))
		return CLI_USAGE;
	if (only == 2)
		return cli_fail(a, "--workers: 1 or 3 (or 0 for both)");
	cf.seconds = (double)secs;
	cf.records = records;
	cf.clients = (unsigned)clients;
	cf.window = 4;
	cf.per_req = 64;
	cf.zetan = zeta(records, 0.99);
	snprintf(e.delay, sizeof(e.delay), "%llu", (unsigned long long)delay);
	snprintf(e.batch, sizeof(e.batch), "%llu", (unsigned long long)batch);
	snprintf(e.gap, sizeof(e.gap), "%llu", (unsigned long long)gap);
	snprintf(e.clock_max, sizeof(e.clock_max), "%llu",
	    (unsigned long long)clock_max);
	snprintf(e.store_delay, sizeof(e.store_delay), "%llu",
	    (unsigned long long)store_delay);
	snprintf(e.server_nice, sizeof(e.server_nice), "%llu",
	    (unsigned long long)server_nice);
	snprintf(e.root, sizeof(e.root), "%s/scl-bench-kv-XXXXXX",
	    tmp && *tmp ? tmp : "/var/tmp");
	if (mkdtemp(e.root) == NULL)
		return cli_fail(a, "mkdtemp %s: %s", e.root, strerror(errno));
	fprintf(stderr, "bench kv: 3 servers (N=3, W=2), a router and the key "
			"broker under %s\n", e.root);
	if (!env_start(&e)) {
		rc = cli_fail(a, "could not start the deployment (see %s)",
		    e.root);
		goto done;
	}
	if (only != 3) {
		if (!scl_round(&e, &cf, 1, false, p1, cp1, false))
			goto fail;
		workers_stop(&e);
		if (!scl_round(&e, &cf, 1, true, plain1, cplain1, true))
			goto fail;
		workers_stop(&e);
	}
	if (only != 1 && !scl_round(&e, &cf, 3, false, p3, cp3, false))
		goto fail;
	/* put -> visible at a peer, at half the peak YCSB-A load */
	if (only != 1) {
		struct probe *pr = calloc(1, sizeof(*pr));
		const char *eps[WORKERS_MAX] = { e.worker[0], e.worker[1],
			e.worker[2] };
		pthread_t th;
		struct cfg half = cf;
		if (pr == NULL)
			goto fail;
		pr->writer_ep = e.worker[0];
		pr->reader_ep = e.worker[1];
		pr->seconds = cf.seconds;
		vis_load = p3[0] * (double)load_pct / 100.0;
		fprintf(stderr, "bench kv: put->visible at a peer under "
				"YCSB-A at %.0f ops/s\n", vis_load);
		pthread_create(&th, NULL, probe_main, pr);
		vis_load = run_loads(&half, eps, 3, 0, 50, vis_load);
		pthread_join(th, NULL);
		vis_p50 = bench_quantile(pr->lat, pr->n, 0.5);
		vis_p99 = bench_quantile(pr->lat, pr->n, 0.99);
		/* The put's and the final get's round trips are in the
		 * figure: how much of it is request latency under load. */
		vis_conc_p99 = bench_quantile(pr->conc, pr->n_conc, 0.99);
		printf("{\"bench\":\"kv\",\"what\":\"visibility\",\"workers\":3,"
		       "\"load_ops_per_s\":%.0f,\"samples\":%zu,\"p50_ms\":%.2f,"
		       "\"p99_ms\":%.2f,\"concurrent_samples\":%zu,"
		       "\"concurrent_p50_ms\":%.2f,\"concurrent_p99_ms\":%.2f,"
		       "\"put_rtt_p50_ms\":%.2f,"
		       "\"put_rtt_p99_ms\":%.2f,\"get_rtt_p50_ms\":%.2f,"
		       "\"get_rtt_p99_ms\":%.2f,\"failed\":%s}\n",
		    vis_load, pr->n, vis_p50, vis_p99, pr->n_conc,
		    bench_quantile(pr->conc, pr->n_conc, 0.5), vis_conc_p99,
		    bench_quantile(pr->put, pr->n, 0.5),
		    bench_quantile(pr->put, pr->n, 0.99),
		    bench_quantile(pr->get, pr->n, 0.5),
		    bench_quantile(pr->get, pr->n, 0.99),
		    pr->failed ? "true" : "false");
		free(pr);
	}
	workers_stop(&e);
	if (only != 1 && !scl_round(&e, &cf, 3, true, plain3, cplain3, true))
		goto fail;
	workers_stop(&e);
	if (only != 3 && (ratio1 = ratio_pairs(&e, &cf, 1,
			      (double[4]){ p1[0], plain1[0], cp1[0],
				  cplain1[0] },
			      (unsigned)repeat, ratios1, cpu1)) == 0)
		goto fail;
	if (only != 1 && (ratio3 = ratio_pairs(&e, &cf, 3,
			      (double[4]){ p3[0], plain3[0], cp3[0],
				  cplain3[0] },
			      (unsigned)repeat, ratios3, cpu3)) == 0)
		goto fail;
	/* the peer */
	if (cli_has(a, "no-redis")) {
		printf("{\"bench\":\"kv\",\"system\":\"redis\",\"skipped\":"
		       "\"--no-redis\"}\n");
	} else {
		int port = bench_free_port();
		pid_t rp = redis_start(port, e.root);
		if (rp < 0) {
			printf("{\"bench\":\"kv\",\"system\":\"redis\",\"skipped\":"
			       "\"redis-server did not start (make deps "
			       "installs it)\"}\n");
		} else {
			fprintf(stderr, "bench kv: redis-server, pipelined the "
					"same way\n");
			if (preload_redis(&cf, port))
				for (size_t w = 0; w < 3; w++) {
					double c0 = bench_cpu_secs(rp), c1;
					redis[w] = run_loads(&cf, NULL, 0, port,
					    workloads[w].read_pct, 0);
					c1 = bench_cpu_secs(rp);
					emit("redis", "pipelined", 1,
					    workloads[w].name, redis[w],
					    c0 >= 0 && c1 >= c0 && redis[w] > 0
						? (c1 - c0) * 1e6 /
						    (redis[w] * cf.seconds)
						: -1,
					    &cf);
				}
			bench_stop(rp);
		}
	}
	printf("{\"bench\":\"kv\",\"what\":\"summary\","
	       "\"paranoid_over_plain_A_1w\":%.3f,"
	       "\"paranoid_over_plain_A_3w\":%.3f,"
	       "\"scl_C_1w_over_redis_C\":%.2f,"
	       "\"scl_C_in_core_over_redis_C\":%.2f,"
	       "\"visibility_p99_ms\":%.2f,"
	       "\"visibility_concurrent_p99_ms\":%.2f,"
	       "\"psl_paper_ops_per_s\":{\"A\":89000,\"C\":95000},"
	       "\"scl_A_3w_over_paper\":%.2f,\"scl_C_3w_over_paper\":%.2f,"
	       "\"batch\":%s,\"batch_delay_us\":%s,\"seal_gap_us\":%s,"
	       "\"seal_clock_max\":%s,"
	       "\"store_delay_us\":%s,\"server_nice\":%s",
	    ratio1, ratio3,
	    redis[2] > 0 ? p1[2] / redis[2] : 0,
	    redis[2] > 0 ? in_core[2] / redis[2] : 0, vis_p99, vis_conc_p99,
	    p3[0] / 89000.0,
	    p3[2] / 95000.0, e.batch, e.delay, e.gap, e.clock_max,
	    e.store_delay, e.server_nice);
	/* with --ratio-pairs, the ratios above are medians of these */
	print_ratios("paranoid_over_plain_A_1w_pairs", ratios1,
	    only != 3 ? (unsigned)repeat : 0);
	print_ratios("paranoid_over_plain_A_3w_pairs", ratios3,
	    only != 1 ? (unsigned)repeat : 0);
	/* The same pairs by the deployment's CPU per operation (plain's over
	 * paranoid's, clients excluded): what paranoia costs, less moved by
	 * the machine's drift and the load generator's share of it. */
	printf(",\"cpu_plain_over_paranoid_A_1w\":%.3f,"
	       "\"cpu_plain_over_paranoid_A_3w\":%.3f",
	    only != 3 ? median(cpu1, (unsigned)repeat) : 0,
	    only != 1 ? median(cpu3, (unsigned)repeat) : 0);
	print_ratios("cpu_plain_over_paranoid_A_1w_pairs", cpu1,
	    only != 3 ? (unsigned)repeat : 0);
	print_ratios("cpu_plain_over_paranoid_A_3w_pairs", cpu3,
	    only != 1 ? (unsigned)repeat : 0);
	printf("}\n");
	rc = CLI_OK;
	goto done;
fail:
	rc = cli_fail(a, "a run failed; logs are under %s", e.root);
done:
	env_stop(&e);
	if (rc == CLI_OK && !cli_has(a, "keep")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e.root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench kv: could not remove %s\n", e.root);
	}
	return rc;
}
