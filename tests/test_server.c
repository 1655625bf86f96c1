/*
 * test_server.c - a capsule server on a real TCP socket (its event loop on
 * a thread of this process), driven through the client library and raw
 * ZeroMQ: honest appends with receipts, replays, forged writers, bad
 * heartbeats, equivocation with stored evidence, gaps, malformed frames,
 * reads and proofs, and no plaintext in its files.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "helpers.h"

/* Log lines of the server under test, for checking what it reports. */
static char log_lines[65536];
static size_t log_len;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void
capture(void *arg, enum scl_log_level level, const char *module,
    const char *line)
{
	(void)arg;
	(void)level;
	pthread_mutex_lock(&log_lock);
	log_len += (size_t)snprintf(log_lines + log_len,
	    sizeof(log_lines) - log_len, "%s: %s\n", module, line);
	if (log_len >= sizeof(log_lines))
		log_len = sizeof(log_lines) - 1;
	pthread_mutex_unlock(&log_lock);
	if (getenv("SCL_TEST_LOG"))
		fprintf(stderr, "%s: %s\n", module, line);
}

static bool
logged(const char *needle)
{
	bool found;
	pthread_mutex_lock(&log_lock);
	found = strstr(log_lines, needle) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

struct srv {
	char *dir;
	struct scl_server *s;
	pthread_t th;
	char endpoint[256];
};

static void *
serve(void *arg)
{
	struct srv *v = arg;
	if (scl_server_run(v->s) != SCL_OK)
		fprintf(stderr, "server loop: %s\n", scl_err_last());
	return NULL;
}

static void
srv_start(struct srv *v, const char *tag)
{
	struct scl_server_options opt;

	memset(&opt, 0, sizeof(opt));
	v->dir = test_tmpdir(tag);
	opt.listen = "tcp://127.0.0.1:*";
	opt.data_dir = v->dir;
	opt.log.fn = capture;
	opt.log.max = SCL_LOG_DEBUG;
	log_len = 0;
	log_lines[0] = '\0';
	assert_scl_ok(scl_server_new(&v->s, &opt));
	snprintf(v->endpoint, sizeof(v->endpoint), "%s",
	    scl_server_endpoint(v->s));
	assert_int_equal(pthread_create(&v->th, NULL, serve, v), 0);
}

static void
srv_stop(struct srv *v)
{
	scl_server_stop(v->s);
	pthread_join(v->th, NULL);
	scl_server_free(v->s);
	test_rmdir(v->dir);
	free(v->dir);
}

static struct scl_client *
client_for(struct srv *v)
{
	struct scl_client *c;
	struct scl_client_options opt;
	const char *addr = v->endpoint;

	memset(&opt, 0, sizeof(opt));
	opt.timeout_ms = 3000;
	opt.no_retries = true;
	assert_scl_ok(scl_client_new(&c, &addr, 1, &opt));
	return c;
}

/* Seals @n records into @b (cleared first) and signs it. */
static void
seal(struct scl_capsule_writer *w, struct scl_capsule_batch *b, size_t n,
    const char *text)
{
	scl_capsule_batch_clear(b);
	for (size_t i = 0; i < n; i++)
		assert_scl_ok(scl_capsule_writer_append(w, b, SCL_RECORD_DATA,
		    scl_slice_of(text, strlen(text))));
	assert_scl_ok(scl_capsule_writer_seal_batch(w, b, 1));
}

static void
test_server_append_read_and_receipts(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	struct scl_client_ack ack;
	struct scl_client_heads heads;
	struct scl_capsule_proof_result *res = calloc(1, sizeof(*res));
	struct scl_buf proof, status;
	struct scl_record r;
	uint8_t hash[32];

	(void)state;
	srv_start(&v, "srv-a");
	tcap_init(&t, SCL_AEAD_AES256GCM, 50);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_capsule_batch_init(&b);
	for (int i = 0; i < 5; i++) {
		seal(t.w, &b, 20, "secret payload");
		assert_scl_ok(scl_client_append(c, &b, 1, &ack));
		assert_int_equal(ack.acked, 1);
		assert_int_equal(ack.duplicates, 0);
		/* The receipt is the server's signature over the last record. */
		assert_scl_ok(scl_capsule_record_decode(&r,
		    scl_capsule_batch_record(&b, b.n - 1)));
		assert_scl_ok(scl_capsule_record_hash(hash, &r));
		assert_scl_ok(scl_receipt_verify(ack.receipt[0],
		    ack.server_key[0], t.name, t.owner.public_key, r.seqno,
		    hash));
		hash[0] ^= 1;
		assert_scl_fails(scl_receipt_verify(ack.receipt[0],
		    ack.server_key[0], t.name, t.owner.public_key, r.seqno,
		    hash), SCL_EVERIFY, "receipt");
	}
	assert_scl_ok(scl_client_heads(c, t.name, t.owner.public_key, 0, &heads));
	assert_int_equal(heads.best, 100);
	/* A replay is acknowledged as a duplicate and stores nothing. */
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	assert_int_equal(ack.duplicates, 1);
	assert_scl_ok(scl_client_heads(c, t.name, t.owner.public_key, 0, &heads));
	assert_int_equal(heads.best, 100);
	/* Verified reads and proofs through the server. */
	{
		struct scl_client_reader rd;
		struct scl_capsule_source src;
		struct scl_capsule_verify_stats st;
		struct scl_capsule_opener *o;
		memset(&st, 0, sizeof(st));
		scl_client_reader_init(&rd, c, 0, t.name);
		src = scl_client_reader_source(&rd);
		assert_scl_ok(scl_capsule_opener_new(&o, t.meta.aead, &t.keys));
		assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name,
		    &t.meta, t.owner.public_key, 100, o));
		assert_int_equal(st.opened, 100);
		scl_capsule_opener_free(o);
		scl_client_reader_dispose(&rd);
	}
	scl_buf_init(&proof);
	assert_scl_ok(scl_client_proof(c, t.name, t.owner.public_key, 37,
	    &proof));
	assert_scl_ok(scl_capsule_proof_check(res, t.name,
	    scl_buf_slice(&proof)));
	assert_int_equal(res->seqno, 37);
	scl_buf_init(&status);
	assert_scl_ok(scl_client_status(c, 0, &status));
	assert_non_null(memmem(status.ptr, status.len, "\"records\":100", 13));
	assert_non_null(memmem(status.ptr, status.len, "\"duplicates\":1", 14));
	scl_buf_dispose(&status);
	scl_buf_dispose(&proof);
	scl_capsule_batch_dispose(&b);
	scl_client_free(c);
	free(res);
	tcap_dispose(&t);
	srv_stop(&v);
}

/* The server's count of read requests, from its status. */
static uint64_t
reads_of(struct scl_client *c)
{
	struct scl_buf status;
	const char *at;
	uint64_t n;

	scl_buf_init(&status);
	assert_scl_ok(scl_client_status(c, 0, &status));
	assert_scl_ok(scl_buf_append(&status, "", 1));
	at = strstr((const char *)status.ptr, "\"reads\":");
	assert_non_null(at);
	n = strtoull(at + 8, NULL, 10);
	scl_buf_dispose(&status);
	return n;
}

/* A reader costs a request per window of records, not one per record,
 * whichever way it walks: it reads ahead in the direction it is asked,
 * and the heartbeats come with the records. */
static void
test_server_reader_reads_windows(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	struct scl_client_ack ack;
	struct scl_client_reader rd;
	struct scl_capsule_source src;
	struct scl_buf rec, hb;
	uint64_t before, at;
	const uint8_t *w;

	(void)state;
	srv_start(&v, "srv-w");
	tcap_init(&t, SCL_AEAD_AES256GCM, 50);
	w = t.owner.public_key;
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_capsule_batch_init(&b);
	for (int i = 0; i < 100; i++) { /* 1000 records, 100 heartbeats */
		seal(t.w, &b, 10, "in order");
		assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	}
	scl_buf_init(&rec);
	scl_buf_init(&hb);
	/* Forward, a signed group at a time (how a replica catches up):
	 * 4 windows of 256, each a READ and at most one HEARTBEAT. */
	scl_client_reader_init(&rd, c, 0, t.name);
	src = scl_client_reader_source(&rd);
	before = reads_of(c);
	for (uint64_t sq = 1; sq <= 1000; sq = at + 1) {
		struct scl_heartbeat h;
		assert_scl_ok(src.heartbeat_from(src.ctx, w, sq, &at, &hb));
		assert_int_equal(at, sq + 9);
		assert_scl_ok(scl_capsule_heartbeat_decode(&h,
		    scl_buf_slice(&hb)));
		assert_int_equal(h.seqno, at);
		for (uint64_t k = sq; k <= at; k++) {
			struct scl_record r;
			assert_scl_ok(src.record(src.ctx, w, k, &rec));
			assert_scl_ok(scl_capsule_record_decode(&r,
			    scl_buf_slice(&rec)));
			assert_int_equal(r.seqno, k);
		}
	}
	assert_in_range(reads_of(c) - before, 4, 9);
	assert_scl_fails(src.record(src.ctx, w, 1001, &rec), SCL_ENOTFOUND,
	    "1001");
	scl_client_reader_dispose(&rd);
	/* Backward (how a chain is verified from its head). */
	scl_client_reader_init(&rd, c, 0, t.name);
	src = scl_client_reader_source(&rd);
	before = reads_of(c);
	for (uint64_t sq = 1000; sq >= 1; sq--)
		assert_scl_ok(src.record(src.ctx, w, sq, &rec));
	assert_in_range(reads_of(c) - before, 4, 6);
	scl_client_reader_dispose(&rd);
	scl_buf_dispose(&rec);
	scl_buf_dispose(&hb);
	scl_capsule_batch_dispose(&b);
	scl_client_free(c);
	tcap_dispose(&t);
	srv_stop(&v);
}

/* A cancelled client stops waiting on servers that do not answer. */
static void
test_client_cancel_ends_waits(void **state)
{
	struct tcap t;
	struct scl_client *c;
	struct scl_client_options opt;
	struct scl_capsule_batch b;
	struct scl_client_ack ack;
	struct scl_client_heads heads;
	atomic_bool cancel = true;
	const char *addr = "tcp://127.0.0.1:9"; /* nobody answers */

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 50);
	memset(&opt, 0, sizeof(opt));
	opt.timeout_ms = 60000; /* a wait the cancel must cut short */
	opt.cancel = &cancel;
	assert_scl_ok(scl_client_new(&c, &addr, 1, &opt));
	scl_capsule_batch_init(&b);
	seal(t.w, &b, 3, "never stored");
	assert_scl_fails(scl_client_append(c, &b, 1, &ack), SCL_ECLOSED,
	    "cancelled");
	assert_int_not_equal(scl_client_heads(c, t.name, t.owner.public_key, 1,
	    &heads), SCL_OK);
	scl_err_clear();
	scl_capsule_batch_dispose(&b);
	scl_client_free(c);
	tcap_dispose(&t);
}

/* Counts what a server holds for a writer (its verified head). */
static uint64_t
head_of(struct scl_client *c, const uint8_t *name, const uint8_t *writer)
{
	struct scl_client_heads h;
	assert_scl_ok(scl_client_heads(c, name, writer, 0, &h));
	return h.best;
}

static void
test_server_rejects_forgeries(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	struct scl_capsule_head head;
	struct scl_capsule_writer *mallory;
	struct scl_sign_key mk;
	struct scl_client_ack ack;

	(void)state;
	srv_start(&v, "srv-f");
	tcap_init(&t, SCL_AEAD_AES256GCM, 51);
	c = client_for(&v);
	scl_capsule_batch_init(&b);
	/* Unknown capsule: refused until its metadata is stored. */
	seal(t.w, &b, 3, "x");
	assert_scl_fails(scl_client_append(c, &b, 1, &ack), SCL_EVERIFY,
	    "out of reach");
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	/* A writer without a certificate. */
	scl_sign_keygen(&mk);
	memset(&head, 0, sizeof(head));
	assert_scl_ok(scl_capsule_writer_new(&mallory, t.name,
	    SCL_AEAD_AES256GCM, &mk, 1, t.keys.epochs[0].key, &head));
	seal(mallory, &b, 2, "forged");
	assert_scl_fails(scl_client_append(c, &b, 1, &ack), SCL_EVERIFY, NULL);
	assert_int_equal(ack.rejected, 1);
	assert_int_equal(head_of(c, t.name, mk.public_key), 0);
	/* The honest next batch, and two forgeries of it: one with its
	 * heartbeat re-signed by someone else, one with a record altered in
	 * transit.  Both are refused; the original then goes through. */
	seal(t.w, &b, 2, "y");
	{
		struct scl_capsule_batch forged;
		struct scl_heartbeat hb;
		scl_capsule_batch_init(&forged);
		for (size_t i = 0; i < b.n; i++)
			assert_scl_ok(scl_capsule_batch_add(&forged,
			    scl_capsule_batch_record(&b, i), b.hashes[i]));
		assert_scl_ok(scl_capsule_heartbeat_decode(&hb,
		    scl_buf_slice(&b.heartbeat)));
		memcpy(hb.writer, mk.public_key, 32);
		assert_scl_ok(scl_capsule_heartbeat_sign(&forged.heartbeat, &hb,
		    &mk));
		assert_scl_fails(scl_client_append(c, &forged, 1, &ack),
		    SCL_EVERIFY, NULL);
		scl_buf_clear(&forged.heartbeat);
		assert_scl_ok(scl_buf_set(&forged.heartbeat,
		    scl_buf_slice(&b.heartbeat)));
		forged.data.ptr[forged.data.len - 3] ^= 1;
		assert_scl_fails(scl_client_append(c, &forged, 1, &ack),
		    SCL_EVERIFY, NULL);
		scl_capsule_batch_dispose(&forged);
	}
	assert_int_equal(head_of(c, t.name, t.owner.public_key), 3);
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	assert_int_equal(head_of(c, t.name, t.owner.public_key), 5);
	/* Every refusal was logged with its reason. */
	assert_true(logged("must open with its certificate"));
	assert_true(logged("the heartbeat does not sign this batch's last"));
	assert_true(logged("content") || logged("does not verify") ||
	    logged("heartbeat signs a different record"));
	scl_capsule_writer_free(mallory);
	scl_sign_key_wipe(&mk);
	scl_capsule_batch_dispose(&b);
	scl_client_free(c);
	tcap_dispose(&t);
	srv_stop(&v);
}

static int
has_evidence(void *ctx, const uint8_t *w, uint64_t seqno, struct scl_slice ev)
{
	(void)w;
	(void)ev;
	*(uint64_t *)ctx = seqno;
	return 0;
}

/* The owner signs two different batches for the same seqnos: the second
 * is refused as equivocation and the server keeps portable evidence. */
static void
test_server_equivocation_evidence(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b, fork_b;
	struct scl_capsule_head head;
	struct scl_capsule_writer *fork;
	struct scl_client_ack ack;
	struct scl_store *store;
	char path[4200];
	uint64_t at = 0;

	(void)state;
	srv_start(&v, "srv-e");
	tcap_init(&t, SCL_AEAD_AES256GCM, 52);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_capsule_batch_init(&b);
	scl_capsule_batch_init(&fork_b);
	seal(t.w, &b, 4, "a");
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	head = *scl_capsule_writer_head(t.w);
	assert_scl_ok(scl_capsule_writer_new(&fork, t.name, SCL_AEAD_AES256GCM,
	    &t.owner, 1, t.keys.epochs[0].key, &head));
	seal(t.w, &b, 4, "honest");
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));
	seal(fork, &fork_b, 4, "forked");
	assert_scl_fails(scl_client_append(c, &fork_b, 1, &ack), SCL_EVERIFY,
	    "equivocated");
	scl_server_stop(v.s);
	pthread_join(v.th, NULL);
	scl_server_free(v.s);
	snprintf(path, sizeof(path), "%s/store", v.dir);
	assert_scl_ok(scl_store_open(&store, path, NULL));
	assert_scl_ok(scl_store_each_evidence(store, t.name, has_evidence, &at));
	assert_int_equal(at, 5);
	scl_store_close(store);
	test_rmdir(v.dir);
	free(v.dir);
	scl_capsule_writer_free(fork);
	scl_capsule_batch_dispose(&b);
	scl_capsule_batch_dispose(&fork_b);
	scl_client_free(c);
	tcap_dispose(&t);
}

/* A batch above the head is answered GAP with the server's head. */
static void
test_server_gap(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	struct scl_client_ack ack;

	(void)state;
	srv_start(&v, "srv-g");
	tcap_init(&t, SCL_AEAD_AES256GCM, 53);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_capsule_batch_init(&b);
	seal(t.w, &b, 3, "skipped");
	seal(t.w, &b, 3, "ahead");
	assert_scl_fails(scl_client_append(c, &b, 1, &ack), SCL_ETIMEOUT,
	    "1 catching up");
	assert_int_equal(head_of(c, t.name, t.owner.public_key), 0);
	scl_capsule_batch_dispose(&b);
	scl_client_free(c);
	tcap_dispose(&t);
	srv_stop(&v);
}

/* Raw frames: garbage, truncations, a wrong version, an unknown type, a
 * reply type, extra frames.  Each gets an ERROR reply naming the problem
 * and the server keeps serving. */
static void
test_server_survives_malformed_requests(void **state)
{
	struct srv v;
	void *ctx, *sock;
	char reply[2048];
	uint8_t frame[64];
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	int n, timeout = 3000;
	struct scl_msg m;
	struct scl_buf good;

	(void)state;
	srv_start(&v, "srv-m");
	zo.recv_timeout_ms = timeout;
	zo.connect = v.endpoint;
	assert_scl_ok(scl_zsock_open_own(&ctx, &sock, ZMQ_DEALER, &zo));
	/* garbage */
	memset(frame, 0xa5, sizeof(frame));
	assert_int_equal(zmq_send(sock, frame, sizeof(frame), 0), 64);
	n = zmq_recv(sock, reply, sizeof(reply), 0);
	assert_true(n > 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(reply, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_ERROR);
	assert_int_equal(m.err_code, SCL_WIRE_VERSION);
	/* every truncation of a valid APPEND-shaped request */
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_READ;
	m.id = 7;
	m.from = 1;
	m.to = 2;
	scl_buf_init(&good);
	assert_scl_ok(scl_msg_encode(&good, &m, NULL, 0, NULL, 0));
	for (size_t len = 0; len < good.len; len++) {
		assert_true(zmq_send(sock, good.ptr, len, 0) >= 0);
		n = zmq_recv(sock, reply, sizeof(reply), 0);
		assert_true(n > 0);
		assert_scl_ok(scl_msg_decode(&m, scl_slice_of(reply,
		    (size_t)n)));
		assert_int_equal(m.type, SCL_MSG_ERROR);
		assert_true(m.err_code == SCL_WIRE_BAD_REQUEST ||
		    m.err_code == SCL_WIRE_VERSION);
	}
	/* a reply type sent as a request, and an unknown type */
	good.ptr[2] = SCL_MSG_READ | SCL_MSG_REPLY;
	assert_true(zmq_send(sock, good.ptr, 12, 0) >= 0);
	n = zmq_recv(sock, reply, sizeof(reply), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(reply, (size_t)n)));
	assert_int_equal(m.err_code, SCL_WIRE_BAD_REQUEST);
	good.ptr[2] = 0x55;
	assert_true(zmq_send(sock, good.ptr, good.len, 0) >= 0);
	n = zmq_recv(sock, reply, sizeof(reply), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(reply, (size_t)n)));
	assert_int_equal(m.err_code, SCL_WIRE_BAD_REQUEST);
	assert_non_null(memmem(m.blob.ptr, m.blob.len, "unknown message type",
	    20));
	/* still serving */
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_STATUS;
	m.id = 99;
	scl_buf_clear(&good);
	assert_scl_ok(scl_msg_encode(&good, &m, NULL, 0, NULL, 0));
	assert_true(zmq_send(sock, good.ptr, good.len, 0) >= 0);
	n = zmq_recv(sock, reply, sizeof(reply), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(reply, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_STATUS | SCL_MSG_REPLY);
	assert_int_equal(m.id, 99);
	assert_non_null(memmem(m.blob.ptr, m.blob.len, "\"bad_requests\":", 15));
	scl_buf_dispose(&good);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	srv_stop(&v);
}

static bool
dir_has(const char *dir, const void *needle, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		char p[4200];
		FILE *f;
		long size;
		char *data;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if ((f = fopen(p, "rb")) == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		rewind(f);
		if (size > 0 && (data = malloc((size_t)size)) != NULL) {
			if (fread(data, 1, (size_t)size, f) == (size_t)size)
				found = memmem(data, (size_t)size, needle, n) !=
				    NULL;
			free(data);
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

static void
test_server_holds_no_plaintext(void **state)
{
	static const char canary[] = "CANARY-server-9b2e-must-stay-sealed";
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	char path[4200];

	(void)state;
	srv_start(&v, "srv-c");
	tcap_init(&t, SCL_AEAD_CHACHA20POLY1305, 54);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_capsule_batch_init(&b);
	seal(t.w, &b, 30, canary);
	assert_scl_ok(scl_client_append(c, &b, 1, NULL));
	scl_client_free(c);
	scl_server_stop(v.s);
	pthread_join(v.th, NULL);
	scl_server_free(v.s);
	snprintf(path, sizeof(path), "%s/store", v.dir);
	assert_false(dir_has(path, canary, sizeof(canary) - 1));
	assert_true(dir_has(path, t.meta.label, strlen(t.meta.label)));
	test_rmdir(v.dir);
	free(v.dir);
	scl_capsule_batch_dispose(&b);
	tcap_dispose(&t);
}

/* SUBSCRIBE, then an append: the server pushes the new heartbeat.
 * READ_HASH finds heartbeat-signed records; EVIDENCE lists nothing for
 * an honest writer. */
static void
test_server_subscribe_and_lookups(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_capsule_batch b;
	struct scl_buf req;
	struct scl_msg m;
	void *ctx, *sock;
	char frame[4096];
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	int n, timeout = 3000;

	(void)state;
	srv_start(&v, "srv-s");
	tcap_init(&t, SCL_AEAD_AES256GCM, 55);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	zo.recv_timeout_ms = timeout;
	zo.connect = v.endpoint;
	assert_scl_ok(scl_zsock_open_own(&ctx, &sock, ZMQ_DEALER, &zo));
	scl_buf_init(&req);
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_SUBSCRIBE;
	m.id = 1;
	memcpy(m.name, t.name, 32);
	m.lease_ms = 10000;
	assert_scl_ok(scl_msg_encode(&req, &m, NULL, 0, NULL, 0));
	assert_true(zmq_send(sock, req.ptr, req.len, 0) >= 0);
	n = zmq_recv(sock, frame, sizeof(frame), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(frame, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_SUBSCRIBE | SCL_MSG_REPLY);
	assert_int_equal(m.lease_ms, 10000);
	scl_capsule_batch_init(&b);
	seal(t.w, &b, 5, "pushed");
	assert_scl_ok(scl_client_append(c, &b, 1, NULL));
	n = zmq_recv(sock, frame, sizeof(frame), 0);
	assert_true(n > 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(frame, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_NOTIFY);
	assert_memory_equal(m.name, t.name, 32);
	assert_int_equal(m.blob.len, b.heartbeat.len);
	assert_memory_equal(m.blob.ptr, b.heartbeat.ptr, m.blob.len);
	/* READ_HASH of the batch's last (heartbeat-signed) record. */
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_READ_HASH;
	m.id = 2;
	memcpy(m.name, t.name, 32);
	memcpy(m.hash, b.hashes[b.n - 1], 32);
	scl_buf_clear(&req);
	assert_scl_ok(scl_msg_encode(&req, &m, NULL, 0, NULL, 0));
	assert_true(zmq_send(sock, req.ptr, req.len, 0) >= 0);
	n = zmq_recv(sock, frame, sizeof(frame), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(frame, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_READ_HASH | SCL_MSG_REPLY);
	assert_int_equal(m.blob.len, scl_capsule_batch_record(&b, 4).len);
	/* EVIDENCE: none against an honest writer. */
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_EVIDENCE;
	m.id = 3;
	memcpy(m.name, t.name, 32);
	scl_buf_clear(&req);
	assert_scl_ok(scl_msg_encode(&req, &m, NULL, 0, NULL, 0));
	assert_true(zmq_send(sock, req.ptr, req.len, 0) >= 0);
	n = zmq_recv(sock, frame, sizeof(frame), 0);
	assert_scl_ok(scl_msg_decode(&m, scl_slice_of(frame, (size_t)n)));
	assert_int_equal(m.type, SCL_MSG_EVIDENCE | SCL_MSG_REPLY);
	assert_int_equal(m.list.n, 0);
	scl_buf_dispose(&req);
	scl_capsule_batch_dispose(&b);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	scl_client_free(c);
	tcap_dispose(&t);
	srv_stop(&v);
}

/* The owner revokes a certified writer after its record 3: the server
 * keeps what came before, refuses what comes after (in the same request
 * or later), and survives a restart with the revocation in force.  A
 * writer cannot revoke anyone: REVOKE is an owner-only record. */
static void
test_server_enforces_revocation(void **state)
{
	struct srv v;
	struct tcap t;
	struct scl_client *c;
	struct scl_sign_key wk;
	struct scl_capsule_cert cert;
	struct scl_capsule_head head;
	struct scl_capsule_writer *w;
	struct scl_capsule_batch b, ob;
	struct scl_client_ack ack;
	struct scl_revocation rv;
	struct scl_buf cbytes, rbytes;

	(void)state;
	srv_start(&v, "srv-revoke");
	tcap_init(&t, SCL_AEAD_AES256GCM, 61);
	c = client_for(&v);
	assert_scl_ok(scl_client_create(c, scl_buf_slice(&t.meta_bytes), 1));
	scl_sign_keygen(&wk);
	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, t.name, 32);
	memcpy(cert.writer, wk.public_key, 32);
	scl_buf_init(&cbytes);
	assert_scl_ok(scl_capsule_cert_encode(&cbytes, &cert, &t.owner));
	memset(&head, 0, sizeof(head));
	assert_scl_ok(scl_capsule_writer_new(&w, t.name, SCL_AEAD_AES256GCM,
	    &wk, 1, t.keys.epochs[0].key, &head));
	scl_capsule_batch_init(&b);
	assert_scl_ok(scl_capsule_writer_append(w, &b, SCL_RECORD_CERT,
	    scl_buf_slice(&cbytes)));
	for (int i = 0; i < 2; i++)
		assert_scl_ok(scl_capsule_writer_append(w, &b, SCL_RECORD_DATA,
		    scl_slice_of("before", 6)));
	assert_scl_ok(scl_capsule_writer_seal_batch(w, &b, 1));
	assert_scl_ok(scl_client_append(c, &b, 1, &ack));

	/* A writer's own REVOKE record (here a second writer's, revoking
	 * the owner) is refused before it is stored. */
	{
		struct scl_sign_key wk2;
		struct scl_capsule_writer *w2;
		struct scl_buf c2;
		scl_sign_keygen(&wk2);
		memcpy(cert.writer, wk2.public_key, 32);
		scl_buf_init(&c2);
		assert_scl_ok(scl_capsule_cert_encode(&c2, &cert, &t.owner));
		memset(&head, 0, sizeof(head));
		assert_scl_ok(scl_capsule_writer_new(&w2, t.name,
		    SCL_AEAD_AES256GCM, &wk2, 1, t.keys.epochs[0].key, &head));
		memcpy(rv.writer, t.owner.public_key, 32);
		rv.max_seqno = 0;
		scl_buf_init(&rbytes);
		assert_scl_ok(scl_revocation_encode(&rbytes, &rv));
		scl_capsule_batch_clear(&b);
		assert_scl_ok(scl_capsule_writer_append(w2, &b,
		    SCL_RECORD_CERT, scl_buf_slice(&c2)));
		assert_scl_ok(scl_capsule_writer_append(w2, &b,
		    SCL_RECORD_REVOKE, scl_buf_slice(&rbytes)));
		assert_scl_ok(scl_capsule_writer_seal_batch(w2, &b, 1));
		assert_scl_fails(scl_client_append(c, &b, 1, &ack),
		    SCL_EVERIFY, "only the owner");
		scl_capsule_writer_free(w2);
		scl_buf_dispose(&c2);
		scl_sign_key_wipe(&wk2);
	}
	{
		struct scl_client_heads heads;
		assert_scl_ok(scl_client_heads(c, t.name, wk.public_key, 0,
		    &heads));
		assert_int_equal(heads.best, 3);
	}

	/* The owner revokes the writer after record 3. */
	memcpy(rv.writer, wk.public_key, 32);
	rv.max_seqno = 3;
	scl_buf_clear(&rbytes);
	assert_scl_ok(scl_revocation_encode(&rbytes, &rv));
	scl_capsule_batch_init(&ob);
	assert_scl_ok(scl_capsule_writer_append(t.w, &ob, SCL_RECORD_REVOKE,
	    scl_buf_slice(&rbytes)));
	assert_scl_ok(scl_capsule_writer_seal_batch(t.w, &ob, 2));
	assert_scl_ok(scl_client_append(c, &ob, 1, &ack));

	/* The writer's next records are refused, with the reason; across
	 * a restart of the server too. */
	scl_capsule_batch_clear(&b);
	for (int i = 0; i < 2; i++)
		assert_scl_ok(scl_capsule_writer_append(w, &b, SCL_RECORD_DATA,
		    scl_slice_of("after", 5)));
	assert_scl_ok(scl_capsule_writer_seal_batch(w, &b, 3));
	for (int round = 0; round < 2; round++) {
		struct scl_client_heads heads;
		assert_scl_fails(scl_client_append(c, &b, 1, &ack),
		    SCL_EVERIFY, "revoked writer");
		assert_true(logged("was revoked after record 3"));
		assert_scl_ok(scl_client_heads(c, t.name, wk.public_key, 0,
		    &heads));
		assert_int_equal(heads.best, 3);
		if (round == 0) {
			struct scl_server_options opt;
			scl_client_free(c);
			scl_server_stop(v.s);
			pthread_join(v.th, NULL);
			scl_server_free(v.s);
			memset(&opt, 0, sizeof(opt));
			opt.listen = "tcp://127.0.0.1:*";
			opt.data_dir = v.dir;
			opt.log.fn = capture;
			opt.log.max = SCL_LOG_DEBUG;
			log_len = 0;
			log_lines[0] = '\0';
			assert_scl_ok(scl_server_new(&v.s, &opt));
			snprintf(v.endpoint, sizeof(v.endpoint), "%s",
			    scl_server_endpoint(v.s));
			assert_int_equal(pthread_create(&v.th, NULL, serve,
			    &v), 0);
			c = client_for(&v);
		}
	}
	scl_capsule_writer_free(w);
	scl_buf_dispose(&rbytes);
	scl_buf_dispose(&cbytes);
	scl_capsule_batch_dispose(&ob);
	scl_capsule_batch_dispose(&b);
	scl_sign_key_wipe(&wk);
	scl_client_free(c);
	tcap_dispose(&t);
	srv_stop(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_append_read_and_receipts),
		cmocka_unit_test(test_server_rejects_forgeries),
		cmocka_unit_test(test_server_equivocation_evidence),
		cmocka_unit_test(test_server_gap),
		cmocka_unit_test(test_server_survives_malformed_requests),
		cmocka_unit_test(test_server_holds_no_plaintext),
		cmocka_unit_test(test_server_reader_reads_windows),
		cmocka_unit_test(test_client_cancel_ends_waits),
		cmocka_unit_test(test_server_subscribe_and_lookups),
		cmocka_unit_test(test_server_enforces_revocation),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
