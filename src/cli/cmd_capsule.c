/*
 * cmd_capsule.c - scl capsule: DataCapsules in the local data directory.
 *
 * Every command that reads a capsule first checks that the stored
 * metadata hashes to the name it was asked for, so a swapped or edited
 * store is caught before anything else is believed.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capsule_cli.h"

/* Input is stored in atomic chunks of this many bytes (help text says). */
#define APPEND_CHUNK_BYTES ((size_t)64 << 20)


void
capsule_close(struct local *l)
{
	if (l->keys) {
		scl_capsule_keyring_wipe(l->keys);
		free(l->keys);
	}
	scl_buf_dispose(&l->meta_bytes);
	scl_store_close(l->store);
	scl_client_free(l->client);
	scl_client_seen_free(l->seen);
	memset(l, 0, sizeof(*l));
}

static enum scl_err
load_keyring(struct local *l)
{
	struct scl_buf body;
	enum scl_err e;

	scl_buf_init(&body);
	if ((l->keys = calloc(1, sizeof(*l->keys))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate keyring");
	e = scl_keyfile_read(&body, l->keyring_path, SCL_KEYFILE_KEYRING);
	if (e == SCL_OK)
		e = scl_capsule_keyring_decode(l->keys, scl_buf_slice(&body));
	if (e == SCL_OK && memcmp(l->keys->capsule, l->name, SCL_NAME_BYTES))
		e = scl_err_set(SCL_EVERIFY,
		    "keyring %s belongs to another capsule", l->keyring_path);
	scl_buf_dispose_secret(&body);
	if (e != SCL_OK) {
		scl_capsule_keyring_wipe(l->keys);
		free(l->keys);
		l->keys = NULL;
	}
	return e;
}

enum scl_err
cli_client_open(struct scl_client **out, const char *servers)
{
	static const struct scl_logger log = { scl_log_to_file, NULL,
		SCL_LOG_WARN };
	struct scl_client_options opt;
	const char *list[SCL_CLIENT_SERVERS_MAX];
	char *copy = strdup(servers);
	size_t n;
	enum scl_err e;

	if (copy == NULL)
		return scl_err_set(SCL_ENOMEM, "out of memory");
	memset(&opt, 0, sizeof(opt));
	opt.log = log;
	/* Timeouts and retries: per attempt, and further attempts after one
	 * (SCL_TIMEOUT_MS, SCL_RETRIES; docs/OPERATIONS.md). */
	if (getenv("SCL_TIMEOUT_MS"))
		opt.timeout_ms = (unsigned)strtoul(getenv("SCL_TIMEOUT_MS"),
		    NULL, 10);
	if (getenv("SCL_RETRIES")) {
		opt.retries = (unsigned)strtoul(getenv("SCL_RETRIES"), NULL, 10);
		opt.no_retries = opt.retries == 0;
	}
	n = cli_split_list(copy, list, SCL_CLIENT_SERVERS_MAX);
	e = n ? scl_client_new(out, list, n, &opt)
	      : scl_err_set(SCL_EINVAL, "--servers lists no server");
	free(copy);
	return e;
}

/* Joins the metadata's server list for a client. */
static enum scl_err
client_from_meta(struct local *l)
{
	char list[SCL_SERVERS_MAX * (SCL_SERVER_ADDR_MAX + 1) + 1] = "";
	size_t n = 0;

	for (unsigned i = 0; i < l->meta.n_servers; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
		    i ? "," : "", l->meta.servers[i]);
	return cli_client_open(&l->client, list);
}

int
capsule_open(struct local *l, struct cli_args *a, const char *hex,
    bool want_keys, bool need_keys)
{
	const char *servers = cli_get_if(a, "servers");
	enum scl_err e;
	int rc;

	memset(l, 0, sizeof(*l));
	scl_buf_init(&l->meta_bytes);
	if (!cli_parse_name(a, hex, l->name))
		return CLI_USAGE;
	if ((e = cli_open_store(a, &l->store)) != SCL_OK)
		return cli_fail_err(a, e);
	if (servers && (e = cli_client_open(&l->client, servers)) != SCL_OK)
		return cli_fail_err(a, e);
	e = scl_store_get_meta(l->store, l->name, &l->meta_bytes);
	if (e == SCL_ENOTFOUND && l->client) {
		/* Not known here: ask the servers, check, and remember. */
		if ((e = scl_client_meta(l->client, l->name, &l->meta_bytes,
			 &l->meta)) != SCL_OK)
			return cli_fail(a, "capsule %.8s: %s", hex,
			    scl_err_last());
		if ((e = scl_store_put_meta(l->store, l->name,
			 scl_buf_slice(&l->meta_bytes))) != SCL_OK)
			return cli_fail_err(a, e);
	}
	if (e == SCL_ENOTFOUND)
		return cli_fail(a, "no capsule %s in this data directory "
				   "(give --servers to fetch it)", hex);
	if (e != SCL_OK)
		return cli_fail_err(a, e);
	if ((e = scl_capsule_meta_check(&l->meta, l->name,
		 scl_buf_slice(&l->meta_bytes))) != SCL_OK)
		return cli_fail(a, "stored metadata of %.8s is not genuine: %s",
		    hex, scl_err_last());
	if (l->client == NULL && l->meta.n_servers > 0 &&
	    (e = client_from_meta(l)) != SCL_OK)
		return cli_fail_err(a, e);
	if ((rc = capsule_seen_open(l, a)) != CLI_OK)
		return rc;
	if (!want_keys)
		return CLI_OK;
	if ((rc = cli_keyring_path(a, l->name, l->keyring_path,
		 sizeof(l->keyring_path))) != CLI_OK)
		return rc;
	e = load_keyring(l);
	if (e == SCL_ENOTFOUND && !need_keys) {
		scl_err_clear();
		return CLI_OK;
	}
	if (e == SCL_ENOTFOUND)
		return cli_fail(a, "no keyring for capsule %.8s at %s", hex,
		    l->keyring_path);
	if (e != SCL_OK)
		return cli_fail_err(a, e);
	return CLI_OK;
}


/* --- create ----------------------------------------------------------- */

/* Seals 1 KiB records with each suite for a few milliseconds and returns
 * the faster one on this machine (docs/BENCHMARKS.md explains why the
 * answer differs between Intel and AMD machines). */
static enum scl_aead_suite
pick_fastest_aead(double rates[2])
{
	static const enum scl_aead_suite suites[2] = { SCL_AEAD_AES256GCM,
		SCL_AEAD_CHACHA20POLY1305 };
	uint8_t key[32] = { 7 }, nonce[12] = { 0 }, pt[1024] = { 1 };
	uint8_t ct[sizeof(pt) + SCL_AEAD_TAG_BYTES];

	for (int i = 0; i < 2; i++) {
		struct scl_aead *aead;
		struct timespec t0, t1;
		unsigned n = 0;
		double dt;
		rates[i] = 0;
		if (scl_aead_new(&aead, suites[i], key) != SCL_OK)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			for (int j = 0; j < 256; j++, n++) {
				nonce[0] = (uint8_t)j;
				if (scl_aead_seal(aead, ct, nonce, NULL, 0, pt,
					sizeof(pt)) != SCL_OK)
					break;
			}
			clock_gettime(CLOCK_MONOTONIC, &t1);
			dt = (double)(t1.tv_sec - t0.tv_sec) +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		} while (dt < 0.02);
		rates[i] = n * sizeof(pt) / dt / 1e6;
		scl_aead_free(aead);
	}
	return rates[1] > rates[0] ? suites[1] : suites[0];
}

static enum scl_err
load_identity(struct scl_sign_key *out, const char *path)
{
	struct scl_buf seed;
	enum scl_err e;

	scl_buf_init(&seed);
	if ((e = scl_keyfile_read(&seed, path, SCL_KEYFILE_IDENTITY)) != SCL_OK)
		return e;
	if (seed.len != SCL_SIGN_SEED_BYTES)
		e = scl_err_set(SCL_EFORMAT, "%s: identity of %zu bytes", path,
		    seed.len);
	else
		scl_sign_key_from_seed(out, seed.ptr);
	scl_buf_dispose_secret(&seed);
	return e;
}

/* Fills the metadata's server list and replication policy. */
static int
set_servers(struct cli_args *a, struct scl_capsule_meta *m, const char *list)
{
	const char *items[SCL_SERVERS_MAX];
	char *copy = strdup(list);
	uint64_t n, w;
	size_t count;

	if (copy == NULL)
		return cli_fail(a, "out of memory");
	count = cli_split_list(copy, items, SCL_SERVERS_MAX);
	for (size_t i = 0; i < count; i++) {
		if (strlen(items[i]) > SCL_SERVER_ADDR_MAX) {
			free(copy);
			return cli_misuse(a, "server address too long");
		}
		snprintf(m->servers[i], sizeof(m->servers[i]), "%s", items[i]);
	}
	free(copy);
	if (count == 0)
		return cli_misuse(a, "--servers lists no server");
	m->n_servers = (uint8_t)count;
	if (!cli_get_u64_in(a, "replicas", count, 1, count, &n) ||
	    !cli_get_u64_in(a, "quorum", n / 2 + 1, 1, n, &w))
		return CLI_USAGE;
	m->replicas = (uint8_t)n;
	m->write_quorum = (uint8_t)w;
	return CLI_OK;
}

static int
capsule_create(struct cli_args *a)
{
	const char *label = cli_get(a, "label"), *aead = cli_get(a, "aead");
	const char *owner_file = cli_get(a, "owner-key");
	const char *servers = cli_get(a, "servers");
	struct scl_client *client = NULL;
	struct scl_capsule_meta *m = NULL;
	struct scl_capsule_keyring *k = NULL;
	struct scl_store *store = NULL;
	struct scl_sign_key owner;
	struct scl_buf meta, ring;
	uint8_t name[SCL_NAME_BYTES];
	char hex[2 * SCL_NAME_BYTES + 1], path[PATH_MAX + 96];
	double rates[2] = { 0, 0 };
	enum scl_aead_suite suite;
	int rc = CLI_FAIL;
	enum scl_err e;

	scl_buf_init(&meta);
	scl_buf_init(&ring);
	memset(&owner, 0, sizeof(owner));
	if (label && strlen(label) > SCL_LABEL_MAX)
		return cli_misuse(a, "--label is longer than %d bytes",
		    SCL_LABEL_MAX);
	for (const char *p = label; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cli_misuse(a,
			    "--label must not contain control characters");
	if (aead == NULL || strcmp(aead, "auto") == 0)
		suite = pick_fastest_aead(rates);
	else if (scl_aead_suite_parse(&suite, aead) != SCL_OK)
		return cli_misuse(a, "%s", scl_err_last());
	if (owner_file) {
		if ((e = load_identity(&owner, owner_file)) != SCL_OK)
			return cli_fail_err(a, e);
	} else {
		scl_sign_keygen(&owner);
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (k = calloc(1, sizeof(*k))) == NULL) {
		rc = cli_fail(a, "out of memory");
		goto done;
	}
	memcpy(m->owner, owner.public_key, SCL_SIGN_PUBLIC_BYTES);
	m->created_us = cli_now_us();
	m->aead = (uint8_t)suite;
	m->replicas = 1;
	m->write_quorum = 1;
	if (servers && (rc = set_servers(a, m, servers)) != CLI_OK)
		goto done;
	rc = CLI_FAIL;
	snprintf(m->label, sizeof(m->label), "%s", label ? label : "");
	if ((e = scl_capsule_meta_encode(&meta, m, &owner)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	scl_capsule_name(name, scl_buf_slice(&meta));
	memcpy(k->capsule, name, SCL_NAME_BYTES);
	k->has_owner = true;
	scl_sign_key_seed(k->owner_seed, &owner);
	memcpy(k->writer_seed, k->owner_seed, SCL_SIGN_SEED_BYTES);
	k->n_epochs = 1;
	k->epochs[0].epoch = 1;
	scl_random(k->epochs[0].key, SCL_AEAD_KEY_BYTES);
	if ((rc = cli_keyring_path(a, name, path, sizeof(path))) != CLI_OK)
		goto done;
	rc = CLI_FAIL;
	/* Keys first: a capsule without its keyring would be unwritable,
	 * while a keyring without its capsule is harmless and removed. */
	if ((e = scl_capsule_keyring_encode(&ring, k)) != SCL_OK ||
	    (e = scl_keyfile_write(path, SCL_KEYFILE_KEYRING,
		 scl_buf_slice(&ring))) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if (servers && ((e = cli_client_open(&client, servers)) != SCL_OK ||
			   (e = scl_client_create(client, scl_buf_slice(&meta),
				m->write_quorum)) != SCL_OK)) {
		unlink(path);
		rc = cli_fail_err(a, e);
		goto done;
	}
	if ((e = cli_open_store(a, &store)) != SCL_OK ||
	    (e = scl_store_put_meta(store, name, scl_buf_slice(&meta))) !=
		SCL_OK) {
		unlink(path);
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("created capsule\n  label:   %s\n  owner:   %s\n", m->label,
	    scl_hex_encode(hex, m->owner, SCL_SIGN_PUBLIC_BYTES));
	if (rates[0] > 0 || rates[1] > 0)
		printf("  aead:    %s (measured here: aes-256-gcm %.0f MB/s, "
		       "chacha20-poly1305 %.0f MB/s)\n",
		    scl_aead_suite_name(suite), rates[0], rates[1]);
	else
		printf("  aead:    %s\n", scl_aead_suite_name(suite));
	for (unsigned i = 0; i < m->n_servers; i++)
		printf("  server:  %s\n", m->servers[i]);
	if (m->n_servers)
		printf("  replicas N=%u, write quorum W=%u\n", m->replicas,
		    m->write_quorum);
	printf("  keyring: %s\n%s\n", path,
	    scl_hex_encode(hex, name, SCL_NAME_BYTES));
	rc = CLI_OK;
done:
	scl_client_free(client);
	scl_sign_key_wipe(&owner);
	if (k) {
		scl_capsule_keyring_wipe(k);
		free(k);
	}
	free(m);
	scl_buf_dispose(&meta);
	scl_buf_dispose_secret(&ring);
	scl_store_close(store);
	return rc;
}

/* --- append ----------------------------------------------------------- */

struct append_run {
	struct local l;
	struct scl_store_committer *committer;
	struct scl_capsule_writer *writer;
	struct scl_store_appender *appender;
	FILE *in;
};

/* Reads lines and feeds them to the appender, submitting a job at every
 * chunk boundary.  A bad line fails the chunk it is in before that chunk
 * was submitted, so nothing of it is stored. */
static enum scl_err
feed_lines(struct append_run *r, uint64_t *lines)
{
	char *line = NULL;
	size_t cap = 0, chunk = 0;
	ssize_t n;
	enum scl_err e = SCL_OK;

	*lines = 0;
	errno = 0;
	while ((n = getline(&line, &cap, r->in)) >= 0) {
		size_t len = (size_t)n;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > SCL_PAYLOAD_MAX) {
			e = scl_err_set(SCL_ELIMIT,
			    "line %llu is %zu bytes; a record holds at most %u",
			    (unsigned long long)*lines + 1, len,
			    SCL_PAYLOAD_MAX);
			break;
		}
		if ((e = scl_store_appender_add(r->appender,
			 scl_slice_of(line, len))) != SCL_OK)
			break;
		(*lines)++;
		chunk += len + 256;
		if (chunk >= APPEND_CHUNK_BYTES) {
			if ((e = scl_store_appender_submit(r->appender)) !=
			    SCL_OK)
				break;
			chunk = 0;
		}
	}
	if (e == SCL_OK && ferror(r->in))
		e = scl_err_set(SCL_EIO, "reading input: %s", strerror(errno));
	scl_wipe(line, cap);
	free(line);
	return e;
}

static int
capsule_append(struct cli_args *a)
{
	const char *file = cli_get(a, "file");
	struct append_run r;
	struct scl_store_appender_stats st;
	uint64_t batch, version, lines = 0;
	int rc;
	enum scl_err e;

	memset(&r, 0, sizeof(r));
	if (!cli_get_u64(a, "batch", &batch) ||
	    !cli_get_u64(a, "record-version", &version))
		return CLI_USAGE;
	if ((rc = capsule_open(&r.l, a, a->pos[0], true, true)) != CLI_OK)
		goto done;
	r.l.record_version = (uint16_t)version;
	rc = CLI_FAIL;
	r.in = stdin;
	if (file && (r.in = fopen(file, "rb")) == NULL) {
		rc = cli_fail(a, "cannot open %s: %s", file, strerror(errno));
		goto done;
	}
	if (r.l.client) {
		rc = remote_append(a, &r.l, r.in, batch);
		goto done;
	}
	if ((e = capsule_writer_open(&r.l, &r.writer)) != SCL_OK ||
	    (e = scl_store_committer_new(&r.committer, r.l.store, 0)) !=
		SCL_OK ||
	    (e = scl_store_appender_new(&r.appender, r.committer, r.writer,
		 batch)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	e = feed_lines(&r, &lines);
	if (e == SCL_OK)
		e = scl_store_appender_finish(r.appender);
	if (e == SCL_OK)
		e = capsule_seen_wrote(&r.l, r.writer);
	scl_store_appender_stats(r.appender, &st);
	if (e != SCL_OK) {
		rc = cli_fail(a, "%s; stored %llu records before the failure, "
		    "none after", scl_err_last(),
		    (unsigned long long)st.records_stored);
		goto done;
	}
	if (st.records_stored == 0)
		printf("appended 0 records (no input)\n");
	else
		printf("appended %llu record%s (seqno %llu..%llu) in %llu "
		       "batch%s, one signed heartbeat each\n",
		    (unsigned long long)st.records_stored,
		    st.records_stored == 1 ? "" : "s",
		    (unsigned long long)st.first_seqno,
		    (unsigned long long)(st.first_seqno + st.records_stored - 1),
		    (unsigned long long)st.heartbeats_stored,
		    st.heartbeats_stored == 1 ? "" : "es");
	rc = CLI_OK;
done:
	scl_store_appender_free(r.appender);
	scl_store_committer_free(r.committer);
	scl_capsule_writer_free(r.writer);
	if (r.in && r.in != stdin)
		fclose(r.in);
	capsule_close(&r.l);
	return rc;
}

/* --- read ---------------------------------------------------------------- */

bool
capsule_writer_arg(struct cli_args *a, const struct local *l,
    uint8_t out[SCL_WRITER_BYTES])
{
	const char *w = cli_get(a, "writer");
	struct scl_sign_key k;

	if (w) {
		if (scl_hex_decode(out, SCL_WRITER_BYTES, w) != SCL_OK) {
			cli_misuse(a, "--writer must be 64 hex digits: %s",
			    scl_err_last());
			return false;
		}
		return true;
	}
	if (l->keys) {
		scl_sign_key_from_seed(&k, l->keys->writer_seed);
		memcpy(out, k.public_key, SCL_WRITER_BYTES);
		scl_sign_key_wipe(&k);
	} else {
		memcpy(out, l->meta.owner, SCL_WRITER_BYTES);
	}
	return true;
}

enum scl_err
capsule_print_payload(void *ctx, const struct scl_record *r, struct scl_slice p)
{
	FILE *out = ctx;

	if (r->type != SCL_RECORD_DATA)
		return SCL_OK;
	if (fwrite(p.ptr, 1, p.len, out) != p.len || fputc('\n', out) == EOF)
		return scl_err_set(SCL_EIO, "writing output: %s",
		    strerror(errno));
	return SCL_OK;
}

static int
capsule_read(struct cli_args *a)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_opener *opener = NULL;
	struct scl_capsule_source src;
	struct scl_store_head head;
	struct local l;
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t from, to;
	int rc;
	enum scl_err e;

	if ((rc = capsule_open(&l, a, a->pos[0], true, true)) != CLI_OK)
		goto done;
	rc = CLI_USAGE;
	if (!capsule_writer_arg(a, &l, writer) ||
	    !cli_get_u64_in(a, "from", 1, 1, UINT64_MAX, &from))
		goto done;
	if (l.client) {
		rc = remote_read(a, &l, writer, from, cli_get(a, "from") != NULL);
		goto done;
	}
	rc = CLI_FAIL;
	if ((e = scl_store_get_head(l.store, l.name, writer, &head)) != SCL_OK ||
	    (e = capsule_seen_check(&l, writer, head.seqno, head.hash)) !=
		SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	rc = CLI_USAGE;
	if (!cli_get_u64_in(a, "to", head.seqno, 1, UINT64_MAX, &to))
		goto done;
	rc = CLI_OK;
	if (head.seqno == 0)
		goto done; /* an empty chain reads as nothing */
	if (to > head.seqno || from > to) {
		rc = cli_fail(a, "range %llu..%llu is outside 1..%llu",
		    (unsigned long long)from, (unsigned long long)to,
		    (unsigned long long)head.seqno);
		goto done;
	}
	if ((rc = capsule_read_limit(a, &l, writer, from, &to,
		 cli_get(a, "to") != NULL)) != CLI_OK)
		goto done;
	if ((e = scl_store_snapshot_begin(&snap, l.store, l.name)) != SCL_OK ||
	    (e = scl_capsule_opener_new(&opener, l.meta.aead, l.keys)) !=
		SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	scl_store_snapshot_source(&src, snap);
	e = scl_capsule_read_range(&src, l.name, l.meta.owner, writer, from, to,
	    opener, capsule_print_payload, stdout);
	if (e == SCL_OK && fflush(stdout) != 0)
		e = scl_err_set(SCL_EIO, "writing output: %s", strerror(errno));
	if (e != SCL_OK)
		rc = cli_fail_err(a, e);
done:
	scl_capsule_opener_free(opener);
	scl_store_snapshot_end(snap);
	capsule_close(&l);
	return rc;
}

/* --- verify -------------------------------------------------------------- */

#define VERIFY_WRITERS_MAX 4096

struct verify_run {
	struct local *l;
	struct scl_capsule_source src;
	struct scl_capsule_opener *opener;
	struct scl_capsule_verify_stats stats;
	struct scl_capsule_revocations revs;	/* the owner's, as found */
	uint8_t (*seen)[SCL_WRITER_BYTES];	/* the writers stored */
	unsigned writers, revoked;
	enum scl_err err;
};

static int
verify_writer(void *ctx, const uint8_t writer[SCL_WRITER_BYTES],
    const struct scl_store_head *head)
{
	struct verify_run *v = ctx;

	if (v->writers == VERIFY_WRITERS_MAX) {
		v->err = scl_err_set(SCL_ELIMIT, "more than %d writers",
		    VERIFY_WRITERS_MAX);
		return 1;
	}
	memcpy(v->seen[v->writers++], writer, SCL_WRITER_BYTES);
	v->err = scl_capsule_verify_chain(&v->stats, &v->src, v->l->name,
	    &v->l->meta, writer, head->seqno, v->opener);
	if (v->err == SCL_OK)
		v->err = capsule_seen_check(v->l, writer, head->seqno,
		    head->hash);
	return v->err != SCL_OK;
}

/* Second pass: every writer's head against the owner's revocations,
 * which the first pass found wherever the owner's chain came. */
static int
check_revoked(void *ctx, const uint8_t writer[SCL_WRITER_BYTES],
    const struct scl_store_head *head)
{
	struct verify_run *v = ctx;

	v->revoked += capsule_report_revoked(&v->revs, writer, head->seqno,
	    "in the store");
	return 0;
}

static int
count_evidence(void *ctx, const uint8_t *writer, uint64_t seqno,
    struct scl_slice ev)
{
	char ref[32];
	(void)ev;
	(*(unsigned *)ctx)++;
	fprintf(stderr, "warning: stored evidence that writer %s equivocated\n",
	    scl_capsule_record_ref(ref, writer, seqno));
	return 0;
}

static int
capsule_verify(struct cli_args *a)
{
	struct scl_store_snapshot *snap = NULL;
	struct verify_run v;
	struct local l;
	unsigned evidence = 0;
	char hex[9];
	int rc;
	enum scl_err e;

	memset(&v, 0, sizeof(v));
	if ((rc = capsule_open(&l, a, a->pos[0], !cli_has(a, "no-keys"),
		 false)) != CLI_OK)
		goto done;
	if (l.client) {
		rc = remote_verify(a, &l);
		goto done;
	}
	v.l = &l;
	if ((v.seen = calloc(VERIFY_WRITERS_MAX, sizeof(*v.seen))) == NULL) {
		rc = cli_fail(a, "out of memory");
		goto done;
	}
	if ((e = scl_store_snapshot_begin(&snap, l.store, l.name)) != SCL_OK ||
	    (l.keys && (e = scl_capsule_opener_new(&v.opener, l.meta.aead,
			    l.keys)) != SCL_OK)) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	scl_store_snapshot_source(&v.src, snap);
	v.stats.revocations = &v.revs;
	if ((e = scl_store_each_writer(l.store, l.name, verify_writer, &v)) !=
	    SCL_OK)
		v.err = e;
	if (v.err == SCL_OK && (e = scl_store_each_writer(l.store, l.name,
				    check_revoked, &v)) != SCL_OK)
		v.err = e;
	if (v.err != SCL_OK) {
		rc = cli_fail(a, "FAILED: %s", scl_err_last());
		goto done;
	}
	if (capsule_seen_missing(&l, (const uint8_t(*)[SCL_WRITER_BYTES])v.seen,
		v.writers) > 0) {
		rc = cli_fail(a, "FAILED: writers this client saw are gone");
		goto done;
	}
	if (v.revoked > 0) {
		rc = cli_fail(a, "FAILED: %u writer%s hold records past their "
				 "revocation", v.revoked, v.revoked == 1 ? "" : "s");
		goto done;
	}
	if ((e = scl_store_each_evidence(l.store, l.name, count_evidence,
		 &evidence)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("ok: capsule %s: %u writer%s, %llu records, %llu heartbeats, "
	       "%llu bytes stored; every signature, hash and link verifies",
	    scl_hex_short(hex, l.name), v.writers, v.writers == 1 ? "" : "s",
	    (unsigned long long)v.stats.records,
	    (unsigned long long)v.stats.heartbeats,
	    (unsigned long long)v.stats.body_bytes);
	if (l.keys)
		printf("; %llu records decrypt (%llu bytes)\n",
		    (unsigned long long)v.stats.opened,
		    (unsigned long long)v.stats.payload_bytes);
	else
		printf(" (no keys: payloads not decrypted)\n");
	rc = evidence ? CLI_FAIL : CLI_OK;
done:
	scl_capsule_revocations_dispose(&v.revs);
	free(v.seen);
	scl_capsule_opener_free(v.opener);
	scl_store_snapshot_end(snap);
	capsule_close(&l);
	return rc;
}

/* --- inspect ------------------------------------------------------------- */

static const char *
type_name(uint8_t t)
{
	switch (t) {
	case SCL_RECORD_DATA:
		return "data";
	case SCL_RECORD_CERT:
		return "cert";
	case SCL_RECORD_REVOKE:
		return "revoke";
	}
	return "?";
}

void
cli_print_time(const char *label, uint64_t us)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s%s", label, buf);
}

struct inspect_run {
	struct local *l;
	struct scl_capsule_source src;
	bool records;
	enum scl_err err;
};

static void
inspect_record(const struct scl_record *r, struct scl_slice raw)
{
	uint8_t hash[SCL_HASH_BYTES];
	char h[9] = "?";

	if (scl_capsule_record_hash(hash, r) == SCL_OK)
		scl_hex_short(h, hash);
	printf("    record %-8llu %-6s v%u lamport=%llu epoch=%u header=%zu "
	       "body=%zu links=%u merges=%u hash=%s\n",
	    (unsigned long long)r->seqno, type_name(r->type), r->version,
	    (unsigned long long)r->lamport, r->epoch, r->header.len,
	    r->body.len, r->n_links, r->n_merge, h);
	(void)raw;
}

static int
inspect_writer(void *ctx, const uint8_t writer[SCL_WRITER_BYTES],
    const struct scl_store_head *head)
{
	struct inspect_run *in = ctx;
	struct scl_buf buf;
	struct scl_heartbeat hb;
	struct scl_record r;
	char hex[2 * SCL_WRITER_BYTES + 1], h[9];
	uint64_t at, next = 1;

	printf("  writer %s%s\n", scl_hex_encode(hex, writer, SCL_WRITER_BYTES),
	    memcmp(writer, in->l->meta.owner, SCL_WRITER_BYTES) ? ""
								 : " (owner)");
	printf("    head seqno=%llu lamport=%llu hash=%s\n",
	    (unsigned long long)head->seqno, (unsigned long long)head->lamport,
	    scl_hex_short(h, head->hash));
	scl_buf_init(&buf);
	for (uint64_t s = 1; in->records && s <= head->seqno; s++) {
		if (in->src.record(in->src.ctx, writer, s, &buf) != SCL_OK) {
			printf("    record %-8llu MISSING\n",
			    (unsigned long long)s);
			continue;
		}
		if (scl_capsule_record_decode(&r, scl_buf_slice(&buf)) !=
		    SCL_OK) {
			printf("    record %-8llu UNDECODABLE (%zu bytes): %s\n",
			    (unsigned long long)s, buf.len, scl_err_last());
			continue;
		}
		inspect_record(&r, scl_buf_slice(&buf));
	}
	while (in->src.heartbeat_from(in->src.ctx, writer, next, &at, &buf) ==
	    SCL_OK) {
		if (scl_capsule_heartbeat_decode(&hb, scl_buf_slice(&buf)) ==
		    SCL_OK) {
			printf("    heartbeat %-5llu signed ",
			    (unsigned long long)hb.seqno);
			cli_print_time("", hb.time_us);
			printf(" sig=%s record-hash=%s\n",
			    scl_hex_short(hex, hb.sig),
			    scl_hex_short(h, hb.hash));
		} else {
			printf("    heartbeat %-5llu UNDECODABLE: %s\n",
			    (unsigned long long)at, scl_err_last());
		}
		if (at == UINT64_MAX)
			break;
		next = at + 1;
	}
	scl_err_clear();
	scl_buf_dispose(&buf);
	return 0;
}

static int
capsule_inspect(struct cli_args *a)
{
	struct scl_store_snapshot *snap = NULL;
	struct inspect_run in;
	struct local l;
	char hex[2 * SCL_NAME_BYTES + 1];
	int rc;
	enum scl_err e;

	memset(&in, 0, sizeof(in));
	if ((rc = capsule_open(&l, a, a->pos[0], false, false)) != CLI_OK)
		goto done;
	in.l = &l;
	in.records = !cli_has(a, "summary");
	printf("capsule %s\n", scl_hex_encode(hex, l.name, SCL_NAME_BYTES));
	printf("  metadata %zu bytes, format v%d, owner signature ok\n",
	    l.meta_bytes.len, SCL_FORMAT_VERSION);
	printf("  label    %s\n  owner    %s\n", l.meta.label,
	    scl_hex_encode(hex, l.meta.owner, SCL_SIGN_PUBLIC_BYTES));
	cli_print_time("  created  ", l.meta.created_us);
	printf("\n  aead     %s\n  replicas N=%u W=%u\n",
	    scl_aead_suite_name(l.meta.aead), l.meta.replicas,
	    l.meta.write_quorum);
	for (unsigned i = 0; i < l.meta.n_servers; i++)
		printf("  server   %s\n", l.meta.servers[i]);
	if ((e = scl_store_snapshot_begin(&snap, l.store, l.name)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	scl_store_snapshot_source(&in.src, snap);
	if ((e = scl_store_each_writer(l.store, l.name, inspect_writer, &in)) !=
	    SCL_OK)
		rc = cli_fail_err(a, e);
done:
	scl_store_snapshot_end(snap);
	capsule_close(&l);
	return rc;
}

/* --- prove / check-proof --------------------------------------------------- */

static int
capsule_prove(struct cli_args *a)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_source src;
	struct scl_buf proof;
	struct local l;
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t seqno;
	char *end;
	int rc;
	enum scl_err e;

	scl_buf_init(&proof);
	if ((rc = capsule_open(&l, a, a->pos[0], true, false)) != CLI_OK)
		goto done;
	rc = CLI_USAGE;
	errno = 0;
	seqno = strtoull(a->pos[1], &end, 10);
	if (errno || *end || end == a->pos[1] || seqno == 0) {
		cli_misuse(a, "SEQ must be a record number from 1, not '%s'",
		    a->pos[1]);
		goto done;
	}
	if (!capsule_writer_arg(a, &l, writer))
		goto done;
	rc = CLI_FAIL;
	if (isatty(STDOUT_FILENO)) {
		rc = cli_fail(a, "refusing to write a binary proof to a "
				 "terminal; redirect it to a file");
		goto done;
	}
	if (l.client) {
		rc = remote_prove(a, &l, writer, seqno);
		goto done;
	}
	if (memcmp(writer, l.meta.owner, SCL_WRITER_BYTES) != 0) {
		rc = cli_fail(a, "proofs for non-owner writers need their "
				 "certificate, which this store does not hold");
		goto done;
	}
	if ((e = scl_store_snapshot_begin(&snap, l.store, l.name)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	scl_store_snapshot_source(&src, snap);
	if ((e = scl_capsule_proof_build(&proof, &src,
		 scl_buf_slice(&l.meta_bytes), scl_slice_of(NULL, 0), writer,
		 seqno)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if (fwrite(proof.ptr, 1, proof.len, stdout) != proof.len ||
	    fflush(stdout) != 0) {
		rc = cli_fail(a, "writing proof: %s", strerror(errno));
		goto done;
	}
	rc = CLI_OK;
done:
	scl_store_snapshot_end(snap);
	scl_buf_dispose(&proof);
	capsule_close(&l);
	return rc;
}


static int
capsule_check_proof(struct cli_args *a)
{
	const char *file = cli_get(a, "file");
	struct scl_capsule_proof_result *res = NULL;
	struct scl_buf proof;
	uint8_t name[SCL_NAME_BYTES];
	char hex[2 * SCL_NAME_BYTES + 1], ref[32];
	FILE *in = stdin;
	int rc = CLI_FAIL;
	enum scl_err e;

	scl_buf_init(&proof);
	if (!cli_parse_name(a, a->pos[0], name))
		return CLI_USAGE;
	if (file && (in = fopen(file, "rb")) == NULL)
		return cli_fail(a, "cannot open %s: %s", file, strerror(errno));
	if ((res = calloc(1, sizeof(*res))) == NULL) {
		rc = cli_fail(a, "out of memory");
		goto done;
	}
	if ((e = cli_read_all(in, &proof, 2 * SCL_PAYLOAD_MAX)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	if ((e = scl_capsule_proof_check(res, name, scl_buf_slice(&proof))) !=
	    SCL_OK) {
		rc = cli_fail(a, "INVALID: %s", scl_err_last());
		goto done;
	}
	printf("ok: record %s is in capsule %s\n",
	    scl_capsule_record_ref(ref, res->writer, res->seqno),
	    scl_hex_encode(hex, name, SCL_NAME_BYTES));
	printf("  record hash  %s (%zu bytes)\n",
	    scl_hex_encode(hex, res->hash, SCL_HASH_BYTES), res->record.len);
	printf("  heartbeat    seqno %llu, signed by writer %s%s at ",
	    (unsigned long long)res->heartbeat_seqno,
	    scl_hex_encode(hex, res->writer, SCL_WRITER_BYTES),
	    memcmp(res->writer, res->meta.owner, SCL_WRITER_BYTES) ? ""
								   : " (owner)");
	cli_print_time("", res->heartbeat_time_us);
	printf("\n  path         %u headers between heartbeat and record\n",
	    res->steps);
	printf("  capsule      label '%s', owner signature ok, name matches\n",
	    res->meta.label);
	/* A proof shows what the writer signed, not what the owner later
	 * said of the writer (THREAT_MODEL.md "Revocation"). */
	if (memcmp(res->writer, res->meta.owner, SCL_WRITER_BYTES) != 0)
		printf("  revocation   not checked: a proof cannot show that the "
		       "owner has not revoked\n               this writer's "
		       "record %llu ('scl capsule read' and 'verify' check)\n",
		    (unsigned long long)res->seqno);
	rc = CLI_OK;
done:
	free(res);
	scl_buf_dispose(&proof);
	if (in != stdin)
		fclose(in);
	return rc;
}

/* --- table ----------------------------------------------------------------- */

static const struct cli_opt create_opts[] = {
	{ "aead", "NAME", "auto, aes-256-gcm or chacha20-poly1305; auto "
			  "measures both here and takes the faster", "auto" },
	{ "label", "L", "a human-readable label stored in the metadata", "" },
	{ "owner-key", "FILE", "owner identity from 'scl keys gen'",
	    "a new key, kept in the keyring" },
	{ "quorum", "W", "servers that must store a batch", "a majority" },
	{ "replicas", "N", "servers that keep the capsule", "all listed" },
	{ "servers", "LIST", "comma-separated server endpoints",
	    "none: local store" },
	CLI_OPTS_END,
};

static const struct cli_opt append_opts[] = {
	{ "batch", "N", "records per signed heartbeat", NULL,
	    CLI_NUM(64, 1, 1u << 20) },
	{ "file", "F", "read payloads from F instead of stdin", NULL },
	{ "record-version", "N", "write records v1 (BLAKE2b) or v2 (SHA-256) "
				 "for older servers and readers, or v3", NULL,
	    CLI_NUM(SCL_RECORD_VERSION, SCL_RECORD_VERSION_MIN, SCL_RECORD_VERSION) },
	{ "servers", "LIST", "use these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_opt read_opts[] = {
	{ "from", "S", "first seqno to print", "1" },
	{ "to", "S", "last seqno to print", "the newest" },
	{ "writer", "ID", "whose chain to read (hex key)", "this keyring's" },
	{ "servers", "LIST", "use these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_opt verify_opts[] = {
	{ "no-keys", NULL, "check only what a key-less server can", NULL },
	{ "servers", "LIST", "use these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_opt inspect_opts[] = {
	{ "summary", NULL, "omit the per-record lines", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt prove_opts[] = {
	{ "writer", "ID", "whose chain the record is in", "this keyring's" },
	{ "servers", "LIST", "use these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_opt check_opts[] = {
	{ "file", "F", "read the proof from F instead of stdin", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt evidence_opts[] = {
	{ "out", "FILE", "write the first piece of evidence here", "stdout" },
	{ "servers", "LIST", "ask these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_opt check_evidence_opts[] = {
	{ "file", "F", "read the evidence from F instead of stdin", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt resolve_opts[] = {
	{ "accept", NULL, "take what is served now as the chain", NULL },
	{ "writer", "ID", "only this writer (hex key)", "every writer seen" },
	{ "servers", "LIST", "ask these servers", "the capsule's, if any" },
	CLI_OPTS_END,
};

static const struct cli_cmd capsule_cmds[] = {
	{ "capsule create", "[options]", "create a capsule; prints its name",
	    "Creates a DataCapsule owned by a new or given Ed25519 identity, "
	    "with a fresh\ndata key (epoch 1) kept in a 0600 keyring under "
	    "DIR/keys.  The capsule's\nname, the BLAKE2b-256 of its signed "
	    "metadata, is the last line printed.",
	    create_opts, 0, 0,
	    "  name=$(scl capsule create --label orders | tail -n 1)\n",
	    capsule_create },
	{ "capsule append", "NAME [options]",
	    "append payloads, one per line, from stdin or --file",
	    "Seals each input line as one record of this keyring's writer "
	    "chain and signs\none heartbeat per --batch records.  Input is "
	    "stored in atomic chunks of up\nto 64 MiB: on any error nothing "
	    "of the failing chunk is stored, and the\nmessage says how many "
	    "records were.  A line holds at most 4 MiB.",
	    append_opts, 1, 1,
	    "  seq 1 1000 | scl capsule append $name --batch 64\n"
	    "  scl capsule append $name --file events.txt\n",
	    capsule_append },
	{ "capsule read", "NAME [options]",
	    "print decrypted payloads in order, after verifying them",
	    "Prints the payloads of records --from..--to, one per line, "
	    "each verified against\nthe writer's signed heartbeat before it "
	    "is printed.",
	    read_opts, 1, 1, "  scl capsule read $name --from 10 --to 20\n",
	    capsule_read },
	{ "capsule verify", "NAME [options]",
	    "check every record, link, heartbeat and signature",
	    "Verifies the whole capsule: metadata against its name, every "
	    "writer chain down\nfrom its newest heartbeat, every stored "
	    "heartbeat, and (with keys) every\nrecord's decryption.  Exits 0 "
	    "with a summary, or 1 naming the first bad\nrecord and why.",
	    verify_opts, 1, 1, "  scl capsule verify $name\n",
	    capsule_verify },
	{ "capsule inspect", "NAME [options]",
	    "show what a key-less server sees",
	    "Shows the metadata, each writer's head, every record header "
	    "(sizes, hashes,\nlinks) and every heartbeat, without decrypting "
	    "anything.",
	    inspect_opts, 1, 1, "  scl capsule inspect $name --summary\n",
	    capsule_inspect },
	{ "capsule prove", "NAME SEQ [options] > proof",
	    "write a membership proof of one record",
	    "Writes a proof that record SEQ is in the capsule: the metadata, "
	    "the nearest\nheartbeat above the record and O(log distance) "
	    "headers down to it.  Anyone\nholding only the name can check "
	    "it with 'scl capsule check-proof'.",
	    prove_opts, 2, 2, "  scl capsule prove $name 17 > r17.proof\n",
	    capsule_prove },
	{ "capsule check-proof", "NAME [options] < proof",
	    "check a membership proof with nothing but the name",
	    "Checks a proof from 'scl capsule prove' against the capsule "
	    "name alone: the\nmetadata must hash to the name, the heartbeat "
	    "must be signed by the owner or\na certified writer, and the "
	    "headers must link down to the record.",
	    check_opts, 1, 1,
	    "  scl capsule check-proof $name < r17.proof\n",
	    capsule_check_proof },
	{ "capsule evidence", "NAME [options] > evidence",
	    "fetch proof that a writer signed two records at one seqno",
	    "Asks every server of the capsule (or the local store) for the "
	    "equivocation\nevidence it keeps, checks each piece against the "
	    "name, says on stderr\nwhich writer and seqno it convicts, and "
	    "writes the first piece out, for\nanyone to check with 'scl "
	    "capsule check-evidence'.  Servers keep evidence\nwhen they find "
	    "two validly signed records at one (writer, seqno), by an\nappend "
	    "or by comparing heads with their peers, and refuse that writer "
	    "from\nthe fork on.",
	    evidence_opts, 1, 1,
	    "  scl capsule evidence $name --out fork.ev\n", capsule_evidence },
	{ "capsule check-evidence", "NAME [options] < evidence",
	    "check equivocation evidence with nothing but the name",
	    "Checks evidence from 'scl capsule evidence' against the capsule "
	    "name alone:\nit holds two membership proofs, each checking like "
	    "'check-proof', for one\nwriter and seqno and two different "
	    "records.  Exits 0 if it convicts the\nwriter, 1 if it does not.",
	    check_evidence_opts, 1, 1,
	    "  scl capsule check-evidence $name < fork.ev\n",
	    capsule_check_evidence },
	{ "capsule resolve", "NAME [options]",
	    "compare what this client saw with what is served now",
	    "Every read, verify and append remembers, in DIR/seen (or "
	    "$SCL_SEEN_DIR), the\nnewest head of each writer it verified "
	    "and the last seqno it signed, and\nrefuses servers (or a store) "
	    "that serve less: a ROLLBACK, exit 1.  This\ncommand shows, per "
	    "writer, what was seen and signed beside what is served\nnow, and "
	    "exits 1 if any writer is in conflict.  Once you know why (a\n"
	    "restored backup, a failed append, an attack), --accept takes "
	    "what is served\nnow as the chain and checks against it from "
	    "then on.",
	    resolve_opts, 1, 1,
	    "  scl capsule resolve $name\n"
	    "  scl capsule resolve $name --accept\n",
	    capsule_resolve },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int
cmd_capsule(int argc, char **argv)
{
	return cli_dispatch("capsule", capsule_cmds, argc, argv);
}
