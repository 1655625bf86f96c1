/*
 * cmd_keys.c - scl keys: signing identities in key files.
 */
#include <string.h>

#include "cli.h"

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

static const struct cli_opt gen_opts[] = {
	{ "out", "FILE", "where to write the key (must not exist)", NULL },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_opt no_opts[] = { { NULL, NULL, NULL, NULL } };

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
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int
cmd_keys(int argc, char **argv)
{
	return cli_dispatch("keys", keys_cmds, argc, argv);
}
