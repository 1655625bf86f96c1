/*
 * capsule_cli.h - private to the scl capsule commands: a capsule opened
 * from the data directory, and the remote (server-backed) variants.
 */
#ifndef SCL_CAPSULE_CLI_H
#define SCL_CAPSULE_CLI_H

#include <limits.h>

#include "cli.h"

struct local {
	struct scl_store *store;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_buf meta_bytes;
	struct scl_capsule_meta meta;
	struct scl_capsule_keyring *keys;	/* NULL unless loaded */
	char keyring_path[PATH_MAX + 96];
	struct scl_client *client;		/* non-NULL: server mode */
	uint16_t record_version;		/* written; 0: the newest */
	struct scl_client_seen *seen;		/* what this client saw */
};

/**
 * Opens capsule @hex: its self-certified metadata (from the local store,
 * else, with --servers, from the servers, then cached locally) and with
 * @want_keys its keyring (required when @need_keys).  Server mode is on
 * when --servers is given or the metadata lists servers.
 */
int capsule_open(struct local *l, struct cli_args *a, const char *hex,
    bool want_keys, bool need_keys);
void capsule_close(struct local *l);

/** --writer, else the keyring's writer, else the owner. */
bool capsule_writer_arg(struct cli_args *a, const struct local *l,
    uint8_t out[SCL_WRITER_BYTES]);

/** Prints a DATA payload and a newline to the FILE * in @ctx. */
enum scl_err capsule_print_payload(void *ctx, const struct scl_record *r,
    struct scl_slice p);

void cli_print_time(const char *label, uint64_t us);

/** Opens a client for @servers ("a,b,c"); logs go to stderr. */
enum scl_err cli_client_open(struct scl_client **out, const char *servers);

/**
 * A writer for this keyring's writer chain, resumed from the verified
 * head: the local store's, or in server mode the highest head the
 * servers prove.  Writes use the keyring's newest epoch.
 */
enum scl_err capsule_writer_open(struct local *l,
    struct scl_capsule_writer **out);

/** Seals one record of @type and stores it (locally, or with a write
 * quorum of the servers). */
enum scl_err capsule_append_one(struct local *l, enum scl_record_type type,
    struct scl_slice payload);

/* cmd_remote.c: the same commands against a capsule's servers. */

typedef enum scl_err (*capsule_source_fn)(void *ctx,
    const struct scl_capsule_source *src, const uint8_t *writer,
    uint64_t seqno);

/**
 * Calls @fn with a source of each server that holds @writer's newest head
 * (@h->best) in turn, until one call succeeds: a server that serves
 * records that do not verify is named on stderr and the next one tried.
 */
enum scl_err capsule_from_best(struct local *l, const uint8_t *writer,
    const struct scl_client_heads *h, capsule_source_fn fn, void *ctx);

int remote_append(struct cli_args *a, struct local *l, FILE *in,
    uint64_t batch);
int remote_read(struct cli_args *a, struct local *l,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, bool from_set);
int remote_verify(struct cli_args *a, struct local *l);
int remote_prove(struct cli_args *a, struct local *l,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno);

/* cmd_resolve.c: what this client has seen (THREAT_MODEL.md "Rollback"). */

/** Loads the seen file of the capsule into @l->seen. */
int capsule_seen_open(struct local *l, struct cli_args *a);

/** Checks a verified head of @writer that is served now against what was
 * seen (SCL_ECONFLICT: rolled back, or forked), then remembers it. */
enum scl_err capsule_seen_check(struct local *l, const uint8_t *writer,
    uint64_t seqno, const uint8_t *hash);

/**
 * Before signing batch @b: refuses seqnos this client may have signed
 * already, else reserves the batch's and @ahead more (saved before it
 * returns), unless an earlier call reserved them; *@reserved tracks how
 * far (0 at first).  Reserving ahead saves one fsync per batch; once
 * signing stops, capsule_seen_release gives back what was not signed.
 */
enum scl_err capsule_seen_reserve(struct local *l,
    const struct scl_capsule_batch *b, uint64_t ahead, uint64_t *reserved);

/** Gives back what was reserved of @writer's chain past @signed, the
 * last seqno signed. */
enum scl_err capsule_seen_release(struct local *l, const uint8_t *writer,
    uint64_t signed_through);

/** After @w's records were stored: remembers its head as seen. */
enum scl_err capsule_seen_wrote(struct local *l,
    const struct scl_capsule_writer *w);

/** Prints a ROLLBACK line for each writer seen that is not among the
 * @n @writers served; returns how many. */
unsigned capsule_seen_missing(struct local *l,
    const uint8_t (*writers)[SCL_WRITER_BYTES], size_t n);

int capsule_resolve(struct cli_args *a);

/* revoked.c: revocations readers enforce (THREAT_MODEL.md "Revocation"). */

/** The owner's REVOKE records, from its chain verified without keys. */
enum scl_err capsule_revocations_load(struct local *l,
    struct scl_capsule_revocations *out);

/**
 * Limits a read of @writer's @from..*@to to what its revocation leaves
 * valid: lowers *@to, with a warning on stderr, unless the caller asked
 * for later records (@to_given) or @from is past it: then it fails.
 */
int capsule_read_limit(struct cli_args *a, struct local *l,
    const uint8_t *writer, uint64_t from, uint64_t *to, bool to_given);

/** Prints a REVOKED line if @writer's @head (served @where) is past its
 * revocation in @revs; returns 1 if so. */
unsigned capsule_report_revoked(const struct scl_capsule_revocations *revs,
    const uint8_t *writer, uint64_t head, const char *where);

/* cmd_fork.c */
int capsule_evidence(struct cli_args *a);
int capsule_check_evidence(struct cli_args *a);

#endif
