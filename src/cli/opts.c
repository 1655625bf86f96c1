/*
 * opts.c - option parsing and help text from one table per command.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <zmq.h>

#include "cli.h"

/* Options every command takes, after its own. */
static const struct cli_opt common_opts[] = {
	{ "dir", "DIR", "data directory", "$SCL_HOME or ~/.scl" },
	{ "help", NULL, "show this help and exit", NULL },
	CLI_OPTS_END,
};

static size_t
count_opts(const struct cli_opt *o)
{
	size_t n = 0;
	while (o && o[n].name)
		n++;
	return n;
}

/* Option i of the combined (command, then common) list. */
static const struct cli_opt *
opt_at(const struct cli_cmd *cmd, size_t i)
{
	size_t own = count_opts(cmd->opts);
	return i < own ? &cmd->opts[i] : &common_opts[i - own];
}

static size_t
total_opts(const struct cli_cmd *cmd)
{
	return count_opts(cmd->opts) + count_opts(common_opts);
}

static int
find_opt(const struct cli_cmd *cmd, const char *name, size_t len)
{
	for (size_t i = 0; i < total_opts(cmd); i++) {
		const char *n = opt_at(cmd, i)->name;
		if (strlen(n) == len && strncmp(n, name, len) == 0)
			return (int)i;
	}
	return -1;
}

static void
print_usage(const struct cli_cmd *cmd, FILE *f)
{
	fprintf(f, "Usage: scl %s %s\n", cmd->name,
	    cmd->synopsis ? cmd->synopsis : "[options]");
}

void
cli_help(const struct cli_cmd *cmd, FILE *f)
{
	print_usage(cmd, f);
	fprintf(f, "\n%s\n", cmd->description ? cmd->description
					       : cmd->summary);
	fprintf(f, "\nOptions:\n");
	for (size_t i = 0; i < total_opts(cmd); i++) {
		const struct cli_opt *o = opt_at(cmd, i);
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name,
		    o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-22s %s", left, o->help);
		if (o->def)
			fprintf(f, " (default: %s)", o->def);
		else if (o->num.is)
			fprintf(f, " (default: %llu)",
			    (unsigned long long)o->num.def);
		fputc('\n', f);
	}
	if (cmd->examples)
		fprintf(f, "\nExamples:\n%s", cmd->examples);
}

void
cli_list(const struct cli_cmd *cmds, FILE *f)
{
	for (size_t i = 0; cmds[i].name; i++)
		fprintf(f, "  %-22s %s\n", cmds[i].name, cmds[i].summary);
}

static void __attribute__((format(printf, 2, 0)))
vreport(const struct cli_args *a, const char *fmt, va_list ap)
{
	fprintf(stderr, "scl %s: ", a->cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
cli_misuse(const struct cli_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(a, fmt, ap);
	va_end(ap);
	print_usage(a->cmd, stderr);
	fprintf(stderr, "see 'scl %s --help'\n", a->cmd->name);
	return CLI_USAGE;
}

int
cli_fail(const struct cli_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(a, fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int
cli_fail_err(const struct cli_args *a, enum scl_err e)
{
	(void)e;
	return cli_fail(a, "%s", scl_err_last());
}

int
cli_parse(struct cli_args *a, const struct cli_cmd *cmd, int argc, char **argv)
{
	bool options_done = false;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	SCL_ASSERT(total_opts(cmd) <= CLI_OPTS_MAX);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq;
		int k;

		if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (a->npos == CLI_POS_MAX || a->npos >= cmd->max_pos)
				return cli_misuse(a, "unexpected argument '%s'",
				    arg);
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			cli_help(cmd, stdout);
			return CLI_OK;
		}
		if (strncmp(arg, "--", 2) != 0)
			return cli_misuse(a, "unknown option '%s'", arg);
		arg += 2;
		eq = strchr(arg, '=');
		k = find_opt(cmd, arg, eq ? (size_t)(eq - arg) : strlen(arg));
		if (k < 0)
			return cli_misuse(a, "unknown option '--%.*s'",
			    eq ? (int)(eq - arg) : (int)strlen(arg), arg);
		if (opt_at(cmd, (size_t)k)->arg == NULL) {
			if (eq)
				return cli_misuse(a, "--%s takes no value",
				    opt_at(cmd, (size_t)k)->name);
			a->set[k] = true;
			continue;
		}
		if (eq)
			a->value[k] = eq + 1;
		else if (i + 1 < argc)
			a->value[k] = argv[++i];
		else
			return cli_misuse(a, "--%s needs a value (%s)",
			    opt_at(cmd, (size_t)k)->name,
			    opt_at(cmd, (size_t)k)->arg);
		a->set[k] = true;
	}
	if (a->npos < cmd->min_pos)
		return cli_misuse(a, "missing argument");
	return -1;
}

static int
arg_index(const struct cli_args *a, const char *name)
{
	int k = find_opt(a->cmd, name, strlen(name));
	SCL_ASSERT(k >= 0); /* a command asked for an option it lacks */
	return k;
}

const char *
cli_get(const struct cli_args *a, const char *name)
{
	return a->value[arg_index(a, name)];
}

const char *
cli_get_if(const struct cli_args *a, const char *name)
{
	int k = find_opt(a->cmd, name, strlen(name));
	return k < 0 ? NULL : a->value[k];
}

bool
cli_has(const struct cli_args *a, const char *name)
{
	return a->set[arg_index(a, name)];
}

bool
cli_get_u64_in(const struct cli_args *a, const char *name, uint64_t def,
    uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *v = cli_get(a, name);
	char *end;
	unsigned long long n;

	if (v == NULL) {
		*out = def;
		return true;
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n < lo || n > hi) {
		cli_misuse(a, "--%s must be a whole number from %llu to %llu, "
		    "not '%s'", name, (unsigned long long)lo,
		    (unsigned long long)hi, v);
		return false;
	}
	*out = n;
	return true;
}

bool
cli_get_u64(const struct cli_args *a, const char *name, uint64_t *out)
{
	const struct cli_opt *o = opt_at(a->cmd, (size_t)arg_index(a, name));

	SCL_ASSERT(o->num.is); /* a number option has its CLI_NUM */
	return cli_get_u64_in(a, name, o->num.def, o->num.min, o->num.max,
	    out);
}

int
cli_dispatch(const char *group, const struct cli_cmd *cmds, int argc,
    char **argv)
{
	size_t glen = strlen(group);

	if (argc < 1 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
		FILE *f = argc < 1 ? stderr : stdout;
		fprintf(f, "Usage: scl %s COMMAND [options]\n\nCommands:\n",
		    group);
		cli_list(cmds, f);
		fprintf(f, "\nRun 'scl %s COMMAND --help' for details.\n",
		    group);
		return argc < 1 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; cmds[i].name; i++) {
		struct cli_args a;
		int rc;
		if (strcmp(cmds[i].name + glen + 1, argv[0]) != 0)
			continue;
		if ((rc = cli_parse(&a, &cmds[i], argc - 1, argv + 1)) >= 0)
			return rc;
		return cmds[i].run(&a);
	}
	fprintf(stderr, "scl %s: unknown command '%s'\nsee 'scl %s --help'\n",
	    group, argv[0], group);
	return CLI_USAGE;
}

int
cli_home(const struct cli_args *a, char *out, size_t n)
{
	const char *dir = cli_get(a, "dir");
	const char *home;

	if (dir == NULL || *dir == '\0')
		dir = getenv("SCL_HOME");
	if (dir != NULL && *dir != '\0') {
		if ((size_t)snprintf(out, n, "%s", dir) >= n)
			return cli_fail(a, "data directory path too long");
		return CLI_OK;
	}
	home = getenv("HOME");
	if (home == NULL || *home == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (home == NULL)
		return cli_fail(a, "no --dir, $SCL_HOME or home directory");
	if ((size_t)snprintf(out, n, "%s/.scl", home) >= n)
		return cli_fail(a, "data directory path too long");
	return CLI_OK;
}

static enum scl_err
ensure_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return scl_err_set(SCL_EIO, "creating %s: %s", path,
		    strerror(errno));
	return SCL_OK;
}

enum scl_err
cli_open_store(const struct cli_args *a, struct scl_store **out)
{
	char home[PATH_MAX], path[PATH_MAX + 16];
	enum scl_err e;

	*out = NULL;
	if (cli_home(a, home, sizeof(home)) != CLI_OK)
		return scl_err_set(SCL_EINVAL, "bad data directory");
	if ((e = ensure_dir(home)) != SCL_OK)
		return e;
	snprintf(path, sizeof(path), "%s/store", home);
	return scl_store_open(out, path, NULL);
}

int
cli_capsule_file(const struct cli_args *a, const char *sub,
    const char *env, const uint8_t *name, const char *suffix, char *out,
    size_t n)
{
	char home[PATH_MAX], dir[PATH_MAX + 8], hex[2 * SCL_NAME_BYTES + 1];
	const char *over = env ? getenv(env) : NULL;
	int rc;

	if (over && *over) {
		if ((size_t)snprintf(dir, sizeof(dir), "%s", over) >=
		    sizeof(dir))
			return cli_fail(a, "$%s is too long", env);
	} else {
		if ((rc = cli_home(a, home, sizeof(home))) != CLI_OK)
			return rc;
		if (ensure_dir(home) != SCL_OK)
			return cli_fail(a, "%s", scl_err_last());
		snprintf(dir, sizeof(dir), "%s/%s", home, sub);
	}
	if (ensure_dir(dir) != SCL_OK)
		return cli_fail(a, "%s", scl_err_last());
	if ((size_t)snprintf(out, n, "%s/%s%s", dir,
		scl_hex_encode(hex, name, SCL_NAME_BYTES), suffix) >= n)
		return cli_fail(a, "path under %s too long", dir);
	return CLI_OK;
}

int
cli_keyring_path(const struct cli_args *a, const uint8_t *name, char *out,
    size_t n)
{
	return cli_capsule_file(a, "keys", NULL, name, ".keyring", out, n);
}

bool
cli_parse_name(const struct cli_args *a, const char *text,
    uint8_t name[SCL_NAME_BYTES])
{
	if (scl_hex_decode(name, SCL_NAME_BYTES, text) != SCL_OK) {
		cli_misuse(a, "capsule name must be 64 hex digits: %s",
		    scl_err_last());
		return false;
	}
	return true;
}

uint64_t
cli_now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

bool
cli_log_level(const struct cli_args *a, enum scl_log_level *out)
{
	const char *s = cli_get_if(a, "log-level");

	if (s == NULL || strcmp(s, "info") == 0)
		*out = SCL_LOG_INFO;
	else if (strcmp(s, "debug") == 0)
		*out = SCL_LOG_DEBUG;
	else if (strcmp(s, "warn") == 0)
		*out = SCL_LOG_WARN;
	else if (strcmp(s, "error") == 0)
		*out = SCL_LOG_ERR;
	else {
		cli_misuse(a, "--log-level must be error, warn, info or debug");
		return false;
	}
	return true;
}

enum scl_err
cli_write_ready_file(const char *path, const char *endpoint)
{
	FILE *f;

	if (path == NULL)
		return SCL_OK;
	if ((f = fopen(path, "w")) == NULL ||
	    fprintf(f, "%s\n", endpoint) < 0 || fclose(f) != 0)
		return scl_err_set(SCL_EIO, "cannot write %s: %s", path,
		    strerror(errno));
	return SCL_OK;
}

int
cli_run_or_status(const struct cli_cmd *run, const struct cli_cmd *status,
    int argc, char **argv)
{
	struct cli_args a;
	int rc;

	if (argc > 0 && strcmp(argv[0], "status") == 0) {
		if ((rc = cli_parse(&a, status, argc - 1, argv + 1)) >= 0)
			return rc;
		return status->run(&a);
	}
	if ((rc = cli_parse(&a, run, argc, argv)) >= 0)
		return rc;
	return run->run(&a);
}

enum scl_err
cli_read_all(FILE *f, struct scl_buf *out, size_t max)
{
	uint8_t chunk[65536];
	size_t n;
	enum scl_err e;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > max)
			return scl_err_set(SCL_ELIMIT,
			    "input is larger than %zu bytes", max);
		if ((e = scl_buf_append(out, chunk, n)) != SCL_OK)
			return e;
	}
	if (ferror(f))
		return scl_err_set(SCL_EIO, "reading input: %s",
		    strerror(errno));
	return SCL_OK;
}

enum scl_err
cli_zmq_request(const char *ep, struct scl_slice req, int timeout_ms,
    struct scl_buf *reply)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	void *ctx = NULL, *s = NULL;
	enum scl_err e;
	zmq_msg_t m;

	zo.recv_timeout_ms = timeout_ms;
	zo.connect = ep;
	if ((e = scl_zsock_open_own(&ctx, &s, ZMQ_DEALER, &zo)) != SCL_OK)
		return e;
	zmq_msg_init(&m);
	if (zmq_send(s, req.ptr, req.len, 0) < 0)
		e = scl_err_set(SCL_EIO, "cannot send to %s: %s", ep,
		    zmq_strerror(zmq_errno()));
	else if (zmq_msg_recv(&m, s, 0) < 0)
		e = scl_err_set(SCL_ETIMEOUT, "%s did not answer in %d ms", ep,
		    timeout_ms);
	else
		e = scl_buf_set(reply, scl_slice_of(zmq_msg_data(&m),
		    zmq_msg_size(&m)));
	zmq_msg_close(&m);
	scl_zsock_close_all(ctx, s);
	return e;
}
