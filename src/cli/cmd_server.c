/*
 * cmd_server.c - scl server: run an untrusted capsule server, or ask one
 * for its status.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "scl/client.h"
#include "scl/server.h"

static struct scl_server *running;

static void
on_signal(int sig)
{
	(void)sig;
	if (running)
		scl_server_stop(running);
}

/* Splits "a,b,c" into at most @max pointers into @copy (modified). */
size_t
cli_split_list(char *copy, const char **out, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(copy, ","); tok && n < max;
	     tok = strtok(NULL, ","))
		if (*tok)
			out[n++] = tok;
	return n;
}

static int
server_run(struct cli_args *a)
{
	struct scl_server_options opt;
	char home[PATH_MAX], data[PATH_MAX + 16];
	char *peers = NULL;
	const char *ready = cli_get(a, "ready-file");
	struct sigaction sa;
	uint64_t sync_ms, nice;
	int rc;
	enum scl_err e;

	memset(&opt, 0, sizeof(opt));
	opt.listen = cli_get(a, "listen");
	if (opt.listen == NULL)
		return cli_misuse(a, "--listen ENDPOINT is required");
	if (!cli_get_u64(a, "sync-ms", &sync_ms))
		return CLI_USAGE;
	opt.sync_ms = (unsigned)sync_ms;
	if (!cli_get_u64(a, "nice", &nice))
		return CLI_USAGE;
	/* Before any thread starts: Linux keeps a nice value per thread,
	 * and threads inherit their creator's. */
	if (nice > 0 && setpriority(PRIO_PROCESS, 0, (int)nice) != 0)
		return cli_fail(a, "cannot lower the priority to nice %llu: %s",
		    (unsigned long long)nice, strerror(errno));
	opt.log.fn = scl_log_to_file;
	if (!cli_log_level(a, &opt.log.max))
		return CLI_USAGE;
	if (cli_get(a, "data")) {
		snprintf(data, sizeof(data), "%s", cli_get(a, "data"));
	} else {
		if ((rc = cli_home(a, home, sizeof(home))) != CLI_OK)
			return rc;
		snprintf(data, sizeof(data), "%s/server", home);
	}
	opt.data_dir = data;
	if (cli_get(a, "peers")) {
		if ((peers = strdup(cli_get(a, "peers"))) == NULL)
			return cli_fail(a, "out of memory");
		opt.n_peers = cli_split_list(peers, opt.peers,
		    SCL_SERVER_PEERS_MAX);
	}
	e = scl_server_new(&running, &opt);
	free(peers);
	if (e != SCL_OK)
		return cli_fail_err(a, e);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((e = cli_write_ready_file(ready, scl_server_endpoint(running))) !=
	    SCL_OK) {
		scl_server_free(running);
		return cli_fail_err(a, e);
	}
	e = scl_server_run(running);
	scl_server_free(running);
	running = NULL;
	if (e != SCL_OK)
		return cli_fail_err(a, e);
	return CLI_OK;
}

static int
server_status(struct cli_args *a)
{
	const char *addr = a->pos[0];
	struct scl_client_options copt;
	struct scl_client *c;
	struct scl_buf text;
	enum scl_err e;

	memset(&copt, 0, sizeof(copt));
	copt.timeout_ms = 2000;
	copt.no_retries = true;
	scl_buf_init(&text);
	if ((e = scl_client_new(&c, &addr, 1, &copt)) != SCL_OK)
		return cli_fail_err(a, e);
	e = scl_client_status(c, 0, &text);
	scl_client_free(c);
	if (e != SCL_OK) {
		scl_buf_dispose(&text);
		return cli_fail_err(a, e);
	}
	printf("%.*s\n", (int)text.len, (const char *)text.ptr);
	scl_buf_dispose(&text);
	return CLI_OK;
}

static const struct cli_opt run_opts[] = {
	{ "data", "DIR", "where the server keeps its store and key",
	    "DIR/server" },
	{ "listen", "ENDPOINT", "ZeroMQ endpoint to bind, e.g. "
				"tcp://127.0.0.1:7400", NULL },
	{ "log-level", "LEVEL", "error, warn, info or debug", "info" },
	{ "nice", "N", "run at this nice value (0-19): on a machine shared "
		       "with workers, so that storing yields the CPU to "
		       "requests", NULL,
	    CLI_NUM(0, 0, 19) },
	{ "peers", "LIST", "comma-separated endpoints of the other servers",
	    "none" },
	{ "ready-file", "FILE", "write the bound endpoint here once ready",
	    NULL },
	{ "sync-ms", "MS", "anti-entropy period", NULL,
	    CLI_NUM(SCL_SERVER_SYNC_MS_DEFAULT, 10, 600000) },
	CLI_OPTS_END,
};

static const struct cli_opt no_opts[] = { CLI_OPTS_END };

static const struct cli_cmd run_cmd = {
	"server", "--listen ENDPOINT [options] | status ADDR",
	"run an untrusted capsule server",
	"Runs a capsule server: it stores capsules in LMDB, verifies every "
	"append before\nstoring it, acknowledges after an fsync'd group "
	"commit with a signed receipt,\nand pulls what it lacks from its "
	"--peers.  It never sees plaintext.  SIGTERM or\nSIGINT stops it "
	"after committing what it accepted; SIGKILL loses nothing that\nwas "
	"acknowledged.  'scl server status ADDR' asks a server for its "
	"status.",
	run_opts, 0, 0,
	"  scl server --listen tcp://127.0.0.1:7400 --data /srv/scl1 \\\n"
	"      --peers tcp://127.0.0.1:7401,tcp://127.0.0.1:7402\n"
	"  scl server status tcp://127.0.0.1:7400\n",
	server_run,
};

static const struct cli_cmd status_cmd = {
	"server status", "ADDR", "print a server's status (JSON)",
	"Asks the server at ADDR for its status and prints it as JSON: "
	"counters of\nappends, records, rejections, commits, and each peer's "
	"sync state.",
	no_opts, 1, 1, "  scl server status tcp://127.0.0.1:7400\n",
	server_status,
};

int
cmd_server(int argc, char **argv)
{
	return cli_run_or_status(&run_cmd, &status_cmd, argc, argv);
}
