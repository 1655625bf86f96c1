/*
 * cmd_keys.c - scl keys: signing identities in key files.
 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "capsule_cli.h"

static int
keys_gen(struct cli_args *a)
{
	const char *out = cli_get(a, "out");
	struct scl_sign_key k;
	uint8_t seed[SCL_SIGN_SEED_BYTES];
	char hex[2 * SCL_SIGN_PUBLIC_BYTES + 1];
	enum scl_err e;

	if (out == NULL)
		return cli_misuse(a, "--out FILE is required");
	scl_sign_keygen(&k);
	scl_sign_key_seed(seed, &k);
	e = scl_keyfile_write(out, SCL_KEYFILE_IDENTITY,
	    scl_slice_of(seed, sizeof(seed)));
	scl_wipe(seed, sizeof(seed));
	if (e != SCL_OK) {
		scl_sign_key_wipe(&k);
		return cli_fail_err(a, e);
	}
	printf("wrote %s (mode 0600)\npublic key: %s\n", out,
	    scl_hex_encode(hex, k.public_key, SCL_SIGN_PUBLIC_BYTES));
	scl_sign_key_wipe(&k);
	return CLI_OK;
}

static int
keys_show(struct cli_args *a)
{
	struct scl_sign_key k;
	struct scl_buf seed;
	char hex[2 * SCL_SIGN_PUBLIC_BYTES + 1];
	enum scl_err e;

	scl_buf_init(&seed);
	if ((e = scl_keyfile_read(&seed, a->pos[0], SCL_KEYFILE_IDENTITY)) !=
	    SCL_OK)
		return cli_fail_err(a, e);
	if (seed.len != SCL_SIGN_SEED_BYTES) {
		scl_buf_dispose_secret(&seed);
		return cli_fail(a, "%s: identity of %zu bytes, expected %d",
		    a->pos[0], seed.len, SCL_SIGN_SEED_BYTES);
	}
	scl_sign_key_from_seed(&k, seed.ptr);
	scl_buf_dispose_secret(&seed);
	printf("%s\n", scl_hex_encode(hex, k.public_key,
			   SCL_SIGN_PUBLIC_BYTES));
	scl_sign_key_wipe(&k);
	return CLI_OK;
}

static int
keys_measure(struct cli_args *a)
{
	uint8_t m[SCL_MEASUREMENT_BYTES];
	char hex[2 * SCL_MEASUREMENT_BYTES + 1];
	const char *path = a->npos ? a->pos[0] : "/proc/self/exe";
	enum scl_err e;

	if ((e = scl_attest_measure_file(m, path)) != SCL_OK)
		return cli_fail_err(a, e);
	printf("%s\n", scl_hex_encode(hex, m, sizeof(m)));
	return CLI_OK;
}

/* Parses "h1,h2,..." of 32-byte hex values into @out. */
static bool
hex_list(struct cli_args *a, const char *opt, uint8_t (*out)[32], size_t max,
    size_t *n)
{
	const char *items[SCL_BROKER_LIST_MAX];
	char *copy;

	*n = 0;
	if (cli_get(a, opt) == NULL)
		return true;
	if ((copy = strdup(cli_get(a, opt))) == NULL)
		return false;
	*n = cli_split_list(copy, items, max);
	for (size_t i = 0; i < *n; i++)
		if (scl_hex_decode(out[i], 32, items[i]) != SCL_OK) {
			cli_misuse(a, "--%s: '%s' is not 64 hex digits", opt,
			    items[i]);
			free(copy);
			return false;
		}
	free(copy);
	return true;
}

static struct scl_broker *serving;

static void
stop_serving(int sig)
{
	(void)sig;
	if (serving)
		scl_broker_stop(serving);
}

static int
keys_serve(struct cli_args *a)
{
	struct scl_broker_options *o = calloc(1, sizeof(*o));
	char ring[PATH_MAX + 96], revoked[PATH_MAX + 128];
	struct sigaction sa;
	uint64_t ttl;
	int rc = CLI_USAGE;
	enum scl_err e;

	if (o == NULL)
		return cli_fail(a, "out of memory");
	o->listen = cli_get(a, "listen");
	if (o->listen == NULL) {
		rc = cli_misuse(a, "--listen ENDPOINT is required");
		goto done;
	}
	if (!cli_parse_name(a, a->pos[0], o->capsule) ||
	    !hex_list(a, "allow", o->allow, SCL_BROKER_LIST_MAX, &o->n_allow) ||
	    !hex_list(a, "trust-platform", o->platforms, SCL_BROKER_LIST_MAX,
		&o->n_platforms) ||
	    !cli_get_u64(a, "nonce-ttl-ms", &ttl))
		goto done;
	if (o->n_allow == 0 || o->n_platforms == 0) {
		rc = cli_misuse(a, "give at least one --allow MEASUREMENT and "
				   "one --trust-platform KEY");
		goto done;
	}
	o->nonce_ttl_ms = (unsigned)ttl;
	if ((rc = cli_keyring_path(a, o->capsule, ring, sizeof(ring))) !=
	    CLI_OK)
		goto done;
	snprintf(revoked, sizeof(revoked), "%.*s.revoked",
	    (int)(strlen(ring) - strlen(".keyring")), ring);
	o->keyring_path = ring;
	o->revoked_path = revoked;
	o->log.fn = scl_log_to_file;
	o->log.max = SCL_LOG_INFO;
	fprintf(stderr, "%s\n", SCL_ATTEST_SIM_WARNING);
	if ((e = scl_broker_new(&serving, o)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("key broker for capsule %.8s serving on %s (%zu allowed "
	       "measurements, %zu trusted platforms)\n", a->pos[0],
	    scl_broker_endpoint(serving), o->n_allow, o->n_platforms);
	fflush(stdout);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_serving;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	e = scl_broker_run(serving);
	scl_broker_free(serving);
	serving = NULL;
	rc = e == SCL_OK ? CLI_OK : cli_fail_err(a, e);
done:
	free(o);
	return rc;
}

static int
keys_revoke(struct cli_args *a)
{
	struct scl_revocation rv;
	struct scl_buf body;
	struct local l;
	char revoked[PATH_MAX + 128];
	uint64_t max;
	int rc;
	enum scl_err e;

	scl_buf_init(&body);
	if ((rc = capsule_open(&l, a, a->pos[0], true, true)) != CLI_OK)
		goto done;
	rc = CLI_USAGE;
	if (cli_get(a, "writer") == NULL) {
		rc = cli_misuse(a, "--writer KEY is required");
		goto done;
	}
	if (scl_hex_decode(rv.writer, 32, cli_get(a, "writer")) != SCL_OK) {
		rc = cli_misuse(a, "--writer must be 64 hex digits");
		goto done;
	}
	if (!cli_get_u64(a, "max-seqno", &max))
		goto done;
	rv.max_seqno = max;
	rc = CLI_FAIL;
	if (!l.keys->has_owner) {
		rc = cli_fail(a, "only the owner can revoke, and this keyring "
				 "has no owner key");
		goto done;
	}
	snprintf(revoked, sizeof(revoked), "%.*s.revoked",
	    (int)(strlen(l.keyring_path) - strlen(".keyring")), l.keyring_path);
	if ((e = scl_revocation_encode(&body, &rv)) != SCL_OK ||
	    (e = capsule_append_one(&l, SCL_RECORD_REVOKE,
		 scl_buf_slice(&body))) != SCL_OK ||
	    (e = scl_broker_revoke_file_add(revoked, rv.writer)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("revoked writer %s after its record %llu: the revocation is "
	       "signed into the owner's chain%s, and the key broker will "
	       "refuse it\n", cli_get(a, "writer"), (unsigned long long)max,
	    l.client ? " on the servers" : "");
	rc = CLI_OK;
done:
	scl_buf_dispose(&body);
	capsule_close(&l);
	return rc;
}

static int
keys_rotate(struct cli_args *a)
{
	struct scl_buf body;
	struct local l;
	uint32_t epoch;
	int rc;
	enum scl_err e;

	scl_buf_init(&body);
	if ((rc = capsule_open(&l, a, a->pos[0], true, true)) != CLI_OK)
		goto done;
	rc = CLI_FAIL;
	if (l.keys->n_epochs == SCL_EPOCHS_MAX) {
		rc = cli_fail(a, "the keyring already holds %d epochs",
		    SCL_EPOCHS_MAX);
		goto done;
	}
	epoch = l.keys->epochs[l.keys->n_epochs - 1].epoch + 1;
	l.keys->epochs[l.keys->n_epochs].epoch = epoch;
	scl_random(l.keys->epochs[l.keys->n_epochs].key, SCL_AEAD_KEY_BYTES);
	l.keys->n_epochs++;
	if ((e = scl_capsule_keyring_encode(&body, l.keys)) != SCL_OK ||
	    (e = scl_keyfile_replace(l.keyring_path, SCL_KEYFILE_KEYRING,
		 scl_buf_slice(&body))) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("capsule %.8s: new data key epoch %u; new records use it, "
	       "older epochs stay readable to holders of their keys\n",
	    a->pos[0], epoch);
	rc = CLI_OK;
done:
	scl_buf_dispose_secret(&body);
	capsule_close(&l);
	return rc;
}

static const struct cli_opt serve_opts[] = {
	{ "allow", "LIST", "allowed code measurements (hex, comma-separated)",
	    NULL },
	{ "listen", "ENDPOINT", "ZeroMQ endpoint to serve on", NULL },
	{ "nonce-ttl-ms", "MS", "how long a nonce stays usable", NULL,
	    CLI_NUM(SCL_BROKER_NONCE_TTL_MS_DEFAULT, 100, 3600000) },
	{ "trust-platform", "LIST", "trusted sim platform keys (hex)", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt revoke_opts[] = {
	{ "max-seqno", "N", "the writer's records up to N stay valid", NULL,
	    CLI_NUM(0, 0, UINT64_MAX) },
	{ "servers", "LIST", "use these servers", "the capsule's, if any" },
	{ "writer", "KEY", "the writer to revoke (hex public key)", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt gen_opts[] = {
	{ "out", "FILE", "where to write the key (must not exist)", NULL },
	CLI_OPTS_END,
};

static const struct cli_opt no_opts[] = { CLI_OPTS_END };

static const struct cli_cmd keys_cmds[] = {
	{ "keys gen", "--out FILE", "generate an Ed25519 signing identity",
	    "Generates a fresh Ed25519 signing identity and writes it to a "
	    "key file\ncreated with mode 0600 (it refuses to overwrite). "
	    "Prints the public key.",
	    gen_opts, 0, 0,
	    "  scl keys gen --out owner.key\n"
	    "  scl capsule create --owner-key owner.key --label inventory\n",
	    keys_gen },
	{ "keys show", "FILE", "print the public key of an identity file",
	    "Prints the hex public key of a signing identity file.", no_opts,
	    1, 1, "  scl keys show owner.key\n", keys_show },
	{ "keys measure", "[FILE]", "print the code measurement of a binary",
	    "Prints the BLAKE2b-256 measurement the sim attestation backend "
	    "reports for\nFILE (default: this scl binary), for a key broker's "
	    "--allow list.", no_opts, 0, 1,
	    "  scl keys serve $name --allow $(scl keys measure) ...\n",
	    keys_measure },
	{ "keys serve", "NAME --listen ENDPOINT --allow M --trust-platform P",
	    "run the owner's key broker for a capsule",
	    "Serves attestation requests for capsule NAME: a worker's core "
	    "proves its code\n(measurement on --allow, evidence signed by a "
	    "--trust-platform key, over a\nfresh nonce) and receives a writer "
	    "certificate signed with the owner key and\nthe data keys wrapped "
	    "for its own X25519 key.  Revoked writers are refused.\nRuns until "
	    "SIGTERM.  The sim backend proves nothing against the host.",
	    serve_opts, 1, 1,
	    "  scl keys serve $name --listen tcp://127.0.0.1:7500 \\\n"
	    "      --allow $(scl keys measure) --trust-platform $(scl keys "
	    "show platform.key)\n", keys_serve },
	{ "keys revoke", "NAME --writer KEY [options]", "revoke a writer",
	    "Appends a signed REVOKE record to the owner's chain (servers "
	    "then refuse the\nwriter's records after --max-seqno, and 'scl "
	    "capsule read' and 'verify' treat\nstored ones after it as "
	    "invalid) and adds the key to the broker's list.",
	    revoke_opts, 1, 1, "  scl keys revoke $name --writer 3fa2...\n",
	    keys_revoke },
	{ "keys rotate", "NAME", "start a new data key epoch",
	    "Adds a fresh data key epoch to the capsule's keyring.  Writers "
	    "attested from\nnow on seal with it; older epochs stay readable "
	    "for those holding them.\nDestroying an epoch's key everywhere "
	    "erases its records (crypto-shredding).", no_opts, 1, 1,
	    "  scl keys rotate $name\n", keys_rotate },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int
cmd_keys(int argc, char **argv)
{
	return cli_dispatch("keys", keys_cmds, argc, argv);
}
