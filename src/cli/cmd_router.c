/*
 * cmd_router.c - scl router: run the untrusted multicast router, or ask
 * one for its counters.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scl/router.h"

static struct scl_router *running;

static void
on_signal(int sig)
{
	(void)sig;
	if (running)
		scl_router_stop(running);
}

static int
router_run(struct cli_args *a)
{
	struct scl_router_options opt;
	struct sigaction sa;
	uint64_t queue, queue_mib;
	enum scl_err e;

	memset(&opt, 0, sizeof(opt));
	opt.listen = cli_get(a, "listen");
	opt.upstream = cli_get(a, "upstream");
	if (opt.listen == NULL)
		return cli_misuse(a, "--listen ENDPOINT is required");
	if (!cli_get_u64(a, "queue", &queue) ||
	    !cli_get_u64(a, "queue-mib", &queue_mib) ||
	    !cli_log_level(a, &opt.log.max))
		return CLI_USAGE;
	opt.queue_max = (size_t)queue;
	opt.queue_max_bytes = (size_t)queue_mib << 20;
	opt.log.fn = scl_log_to_file;
	if (cli_get(a, "chaos") &&
	    scl_router_chaos_parse(&opt.chaos, cli_get(a, "chaos")) != SCL_OK)
		return cli_misuse(a, "%s", scl_err_last());
	if ((e = scl_router_new(&running, &opt)) != SCL_OK)
		return cli_fail_err(a, e);
	if (cli_get(a, "chaos"))
		fprintf(stderr, "router: CHAOS %s: messages will be lost, "
				"duplicated and reordered on purpose\n",
		    cli_get(a, "chaos"));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((e = cli_write_ready_file(cli_get(a, "ready-file"),
		 scl_router_endpoint(running))) == SCL_OK)
		e = scl_router_run(running);
	scl_router_free(running);
	running = NULL;
	return e == SCL_OK ? CLI_OK : cli_fail_err(a, e);
}

static int
router_status(struct cli_args *a)
{
	struct scl_router_msg m = { SCL_ROUTER_STATUS, { 0 }, { 0 } };
	struct scl_buf frame, reply;
	int rc = CLI_OK;
	enum scl_err e;

	scl_buf_init(&frame);
	scl_buf_init(&reply);
	if ((e = scl_router_msg_encode(&frame, &m)) != SCL_OK ||
	    (e = cli_zmq_request(a->pos[0], scl_buf_slice(&frame), 2000,
		 &reply)) != SCL_OK)
		rc = cli_fail_err(a, e);
	else if (scl_router_msg_decode(&m, scl_buf_slice(&reply)) != SCL_OK ||
	    m.type != SCL_ROUTER_STATUS)
		rc = cli_fail(a, "router %s sent a malformed status: %s",
		    a->pos[0], scl_err_last());
	else
		printf("%.*s\n", (int)m.payload.len,
		    (const char *)m.payload.ptr);
	scl_buf_dispose(&frame);
	scl_buf_dispose(&reply);
	return rc;
}

static const struct cli_opt run_opts[] = {
	{ "chaos", "SPEC", "inject faults: loss=P,dup=P,reorder=P,reorder_ms="
			   "MS,seed=N", "none" },
	{ "listen", "ENDPOINT", "ZeroMQ endpoint to bind", NULL },
	{ "log-level", "LEVEL", "error, warn, info or debug", "info" },
	{ "queue", "N", "messages queued per subscriber before the oldest "
			"are dropped", NULL,
	    CLI_NUM(SCL_ROUTER_QUEUE_DEFAULT, 16, 1u << 24) },
	{ "queue-mib", "MIB", "bytes queued per subscriber before the oldest "
			      "are dropped, in MiB (at least 17)", NULL,
	    CLI_NUM(SCL_ROUTER_QUEUE_BYTES_DEFAULT >> 20, 17, 1u << 20) },
	{ "ready-file", "FILE", "write the bound endpoint here once ready",
	    NULL },
	{ "upstream", "ENDPOINT", "a parent router to chain to", "none" },
	CLI_OPTS_END,
};

static const struct cli_opt no_opts[] = { CLI_OPTS_END };

static const struct cli_cmd run_cmd = {
	"router", "--listen ENDPOINT [options] | status ADDR",
	"run the untrusted multicast router",
	"Delivers messages by capsule name to every subscriber, best effort: "
	"it may\nlose, duplicate and reorder, and it sees only sealed, "
	"signed records.  Routers\nchain into a tree with --upstream.  A "
	"slow subscriber's queue is bounded\n(--queue): its oldest messages "
	"are dropped and counted.  --chaos injects\nloss, duplication and "
	"reordering for tests.  'scl router status ADDR' prints\nits "
	"counters as JSON.",
	run_opts, 0, 0,
	"  scl router --listen tcp://0.0.0.0:7600\n"
	"  scl router --listen tcp://127.0.0.1:7601 --upstream "
	"tcp://10.0.0.1:7600 \\\n"
	"      --chaos loss=0.3,dup=0.1,reorder=0.2,seed=7\n"
	"  scl router status tcp://127.0.0.1:7600\n",
	router_run,
};

static const struct cli_cmd status_cmd = {
	"router status", "ADDR", "print a router's counters (JSON)",
	"Asks the router at ADDR for its counters: messages received, "
	"delivered,\nforwarded upstream, dropped by chaos or by full queues, "
	"malformed.",
	no_opts, 1, 1, "  scl router status tcp://127.0.0.1:7600\n",
	router_status,
};

int
cmd_router(int argc, char **argv)
{
	return cli_run_or_status(&run_cmd, &status_cmd, argc, argv);
}
