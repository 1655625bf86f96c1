/*
 * cli.h - the scl command's shared pieces: command tables, option specs
 * that drive both parsing and --help, the data directory, and output.
 *
 * Conventions (STYLE §11): help goes to stdout and exits 0; misuse prints
 * a usage line and "see 'scl CMD --help'" to stderr and exits 2; failures
 * print "scl CMD: what went wrong" to stderr and exit 1.
 */
#ifndef SCL_CLI_H
#define SCL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scl/scl.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* A whole-number option: its default and bounds, used by cli_get_u64
 * and shown by --help. */
struct cli_num {
	bool is;
	uint64_t def, min, max;
};

#define CLI_NUM(def, min, max) { true, (def), (min), (max) }

struct cli_opt {
	const char *name;	/* long name without "--" */
	const char *arg;	/* metavariable ("N"), NULL for a flag */
	const char *help;
	/* The default as --help says it: for text options, or where a
	 * number's default needs words ("no limit"); NULL: the number's. */
	const char *def;
	struct cli_num num;
};

#define CLI_OPTS_END { NULL, NULL, NULL, NULL, { false, 0, 0, 0 } }

#define CLI_OPTS_MAX 24
#define CLI_POS_MAX 8

struct cli_args {
	const struct cli_cmd *cmd;
	const char *value[CLI_OPTS_MAX];
	bool set[CLI_OPTS_MAX];
	int npos;
	const char *pos[CLI_POS_MAX];
};

struct cli_cmd {
	const char *name;	/* "capsule append" */
	const char *synopsis;	/* "NAME [options]" */
	const char *summary;	/* one line, for the command list */
	const char *description;
	const struct cli_opt *opts;	/* terminated by {NULL} */
	int min_pos, max_pos;
	const char *examples;
	int (*run)(struct cli_args *a);
};

/** Parses argv for @cmd; prints help/usage itself.  Returns -1 to go on,
 * or the exit code to return. */
int cli_parse(struct cli_args *a, const struct cli_cmd *cmd, int argc,
    char **argv);

void cli_help(const struct cli_cmd *cmd, FILE *f);

/** Lists @cmds (terminated by {NULL}) under a heading. */
void cli_list(const struct cli_cmd *cmds, FILE *f);

/** Runs @status for "CMD status ..." (server, router), else @run. */
int cli_run_or_status(const struct cli_cmd *run, const struct cli_cmd *status,
    int argc, char **argv);

/** One frame to @ep over a fresh ZeroMQ DEALER and one frame back into
 * @reply (replaced), within @timeout_ms.  Errors name the endpoint. */
enum scl_err cli_zmq_request(const char *ep, struct scl_slice req,
    int timeout_ms, struct scl_buf *reply);

/** Reads @f to its end into @out (appended), at most @max bytes
 * (SCL_ELIMIT past it). */
enum scl_err cli_read_all(FILE *f, struct scl_buf *out, size_t max);

/** Runs the subcommand of a group ("capsule", "keys"). */
int cli_dispatch(const char *group, const struct cli_cmd *cmds, int argc,
    char **argv);

const char *cli_get(const struct cli_args *a, const char *name);
/** Like cli_get, for helpers shared by commands that may lack @name. */
const char *cli_get_if(const struct cli_args *a, const char *name);
bool cli_has(const struct cli_args *a, const char *name);

/** A whole-number option, with the default and bounds of its spec
 * (CLI_NUM); prints misuse. */
bool cli_get_u64(const struct cli_args *a, const char *name, uint64_t *out);

/** The same for an option whose default or bounds depend on the run
 * (e.g. a capsule's server count); its spec has no CLI_NUM. */
bool cli_get_u64_in(const struct cli_args *a, const char *name, uint64_t def,
    uint64_t lo, uint64_t hi, uint64_t *out);

/** Prints "scl CMD: <fmt>" to stderr; returns CLI_FAIL. */
int cli_fail(const struct cli_args *a, const char *fmt, ...)
    SCL_PRINTF(2, 3);

/** Prints "scl CMD: <scl_err_last()>" to stderr; returns CLI_FAIL. */
int cli_fail_err(const struct cli_args *a, enum scl_err e);

/** Prints misuse with the usage line; returns CLI_USAGE. */
int cli_misuse(const struct cli_args *a, const char *fmt, ...)
    SCL_PRINTF(2, 3);

/* --- Data directory -------------------------------------------------- */

/** --dir, else $SCL_HOME, else ~/.scl; into @out (PATH_MAX). */
int cli_home(const struct cli_args *a, char *out, size_t n);

/** Opens the store under the data directory. */
enum scl_err cli_open_store(const struct cli_args *a,
    struct scl_store **out);

/** Path of capsule @name's file DIR/@sub/<name hex>@suffix, or in $@env
 * when that is set (@env may be NULL); creates the directory (0700). */
int cli_capsule_file(const struct cli_args *a, const char *sub,
    const char *env, const uint8_t *name, const char *suffix, char *out,
    size_t n);

/** Path of a capsule's keyring file in the data directory. */
int cli_keyring_path(const struct cli_args *a, const uint8_t *name,
    char *out, size_t n);

/** Parses a 64-hex-digit capsule name argument. */
bool cli_parse_name(const struct cli_args *a, const char *text,
    uint8_t name[SCL_NAME_BYTES]);

/* --- Commands -------------------------------------------------------- */

int cmd_keys(int argc, char **argv);
int cmd_capsule(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_router(int argc, char **argv);
int cmd_kv(int argc, char **argv);

/** Splits "a,b,c" in place into at most @max items; returns the count. */
size_t cli_split_list(char *copy, const char **out, size_t max);

uint64_t cli_now_us(void);

/** --log-level (error, warn, info, debug; default info); prints misuse. */
bool cli_log_level(const struct cli_args *a, enum scl_log_level *out);

/** Writes @endpoint and a newline to @path (NULL: nothing), for scripts
 * that wait for a service to be ready. */
enum scl_err cli_write_ready_file(const char *path, const char *endpoint);

#endif
