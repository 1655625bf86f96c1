/*
 * cmd_worker.c - scl worker: a PSL worker whose trusted core is attested
 * by the capsule owner's key broker before it holds any key.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capsule_cli.h"

static volatile sig_atomic_t stop_requested;
static struct scl_worker *serving;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
	if (serving)
		scl_worker_stop_serving(serving);
}

/* --listen: the KVS in the core, served to clients until SIGTERM. */
static int
serve_kv(struct cli_args *a, struct scl_worker *w, struct local *l)
{
	struct scl_worker_kv_options ko = SCL_WORKER_KV_OPTIONS_INIT;
	struct scl_worker_serve_options so = SCL_WORKER_SERVE_OPTIONS_INIT;
	const char *servers[SCL_SERVERS_MAX];
	uint64_t batch, delay, gap, clock_max, store_delay, unstored_mb;
	uint64_t version;
	enum scl_err e;

	if (!cli_get_u64(a, "batch", &batch) ||
	    !cli_get_u64(a, "batch-delay-us", &delay) ||
	    !cli_get_u64(a, "seal-gap-us", &gap) ||
	    !cli_get_u64(a, "seal-clock-max", &clock_max) ||
	    !cli_get_u64(a, "store-delay-us", &store_delay) ||
	    !cli_get_u64(a, "unstored-max-mb", &unstored_mb) ||
	    !cli_get_u64(a, "record-version", &version))
		return CLI_USAGE;
	ko.batch_max_puts = (size_t)batch;
	ko.record_version = (uint16_t)version;
	ko.batch_delay_us = delay;
	ko.plain = cli_has(a, "plain");
	if (ko.plain)
		fprintf(stderr, "worker: --plain: NO encryption, signatures or "
				"servers (a benchmark baseline only)\n");
	if ((e = scl_worker_kv_open(w, &ko)) != SCL_OK)
		return cli_fail(a, "opening the KVS: %s", scl_err_last());
	so.listen = cli_get(a, "listen");
	so.router = cli_get(a, "router");
	so.meta = scl_buf_slice(&l->meta_bytes);
	so.write_quorum = l->meta.write_quorum;
	so.catch_up = !cli_has(a, "no-catch-up");
	so.seal_gap_us = gap;
	so.seal_clock_max = clock_max;
	so.store_delay_us = store_delay;
	so.unstored_max_bytes = (size_t)unstored_mb << 20;
	if (l->client && !ko.plain) {
		so.n_servers = scl_client_count(l->client);
		for (size_t i = 0; i < so.n_servers && i < SCL_SERVERS_MAX; i++)
			servers[i] = scl_client_addr(l->client, i);
		so.servers = servers;
	}
	serving = w;
	printf("worker: KVS open in the core (batches of up to %llu puts or "
	       "%llu us; stored after %llu us at most)\n",
	    (unsigned long long)batch, (unsigned long long)delay,
	    (unsigned long long)store_delay);
	e = scl_worker_serve(w, &so);
	serving = NULL;
	return e == SCL_OK ? CLI_OK : cli_fail_err(a, e);
}

/* Seals the lines of @in through the core, 64 to a batch, and stores
 * them with the capsule's write quorum. */
static int
append_lines(struct cli_args *a, struct scl_worker *w, struct local *l,
    FILE *in)
{
	struct scl_slice items[64];
	char *lines[64] = { NULL };
	size_t caps[64] = { 0 }, n = 0;
	struct scl_capsule_batch b;
	uint64_t total = 0;
	enum scl_err e = SCL_OK;
	ssize_t got;
	int rc = CLI_OK;

	scl_capsule_batch_init(&b);
	for (bool eof = false; !eof && e == SCL_OK;) {
		got = getline(&lines[n], &caps[n], in);
		eof = got < 0;
		if (!eof) {
			size_t len = (size_t)got;
			if (len && lines[n][len - 1] == '\n')
				len--;
			items[n] = scl_slice_of(lines[n], len);
			n++;
		}
		if (n == 64 || (eof && n > 0)) {
			if ((e = scl_worker_seal(w, items, n, &b)) == SCL_OK)
				e = scl_client_append(l->client, &b,
				    l->meta.write_quorum, NULL);
			total += n;
			n = 0;
		}
	}
	if (e != SCL_OK)
		rc = cli_fail_err(a, e);
	else
		printf("worker: sealed %llu records in the core and stored them "
		       "with >= %u of %zu servers\n", (unsigned long long)total,
		    l->meta.write_quorum, scl_client_count(l->client));
	for (int i = 0; i < 64; i++)
		free(lines[i]);
	scl_capsule_batch_dispose(&b);
	return rc;
}

static int
worker_run(struct cli_args *a)
{
	struct scl_worker_options opt = SCL_WORKER_OPTIONS_INIT;
	struct scl_worker *w = NULL;
	struct scl_enclave_exit ex;
	struct local l;
	char home[PATH_MAX], platform[PATH_MAX + 32], hex[65];
	uint8_t writer[32], box[32];
	const char *append = cli_get(a, "append");
	const char *name = cli_get(a, "capsule");
	struct sigaction sa;
	FILE *in = NULL;
	int rc;
	enum scl_err e;

	/* A long-running process: each status line reaches a log file or
	 * pipe when it is printed. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&l, 0, sizeof(l));
	if (name == NULL || cli_get(a, "broker") == NULL)
		return cli_misuse(a, "--capsule NAME and --broker ENDPOINT are "
				     "required");
	if ((e = scl_tee_parse(&opt.tee, cli_get(a, "tee") ? cli_get(a, "tee")
							: "process")) !=
	    SCL_OK)
		return cli_misuse(a, "%s", scl_err_last());
	if (cli_get(a, "attest") && strcmp(cli_get(a, "attest"), "tsm") == 0)
		opt.attest = SCL_ATTEST_TSM;
	else if (cli_get(a, "attest") == NULL ||
	    strcmp(cli_get(a, "attest"), "sim") == 0)
		opt.attest = SCL_ATTEST_SIM;
	else
		return cli_misuse(a, "--attest must be sim or tsm");
	if ((rc = cli_home(a, home, sizeof(home))) != CLI_OK)
		return rc;
	snprintf(platform, sizeof(platform), "%s/sim-platform.key", home);
	opt.platform_key = cli_get(a, "platform-key") ? cli_get(a,
							    "platform-key")
						      : platform;
	opt.broker = cli_get(a, "broker");
	{
		uint64_t actors, spin_us;
		if (!cli_get_u64(a, "actors", &actors) ||
		    !cli_get_u64(a, "ring-spin-us", &spin_us))
			return CLI_USAGE;
		opt.actor_threads = (unsigned)actors;
		opt.ring_spin_us = (unsigned)spin_us;
	}
	opt.log.fn = scl_log_to_file;
	opt.log.max = SCL_LOG_INFO;
	/* The core first: the process backend forks, which must happen
	 * before any ZeroMQ context exists in this process. */
	if ((e = scl_worker_start(&w, &opt)) != SCL_OK)
		return cli_fail_err(a, e);
	scl_worker_keys(w, writer, box);
	if (opt.tee == SCL_TEE_PROCESS)
		printf("worker: trusted core in the process backend (pid %d, "
		       "seccomp-filtered)\n",
		    scl_enclave_core_pid(scl_worker_enclave(w)));
	else
		printf("worker: trusted core in the %s backend\n",
		    scl_tee_name(opt.tee));
	printf("worker: core writer key %s\n", scl_hex_encode(hex, writer, 32));
	if ((rc = capsule_open(&l, a, name, false, false)) != CLI_OK)
		goto done;
	rc = CLI_FAIL;
	if ((e = scl_worker_attest(w, scl_buf_slice(&l.meta_bytes))) !=
	    SCL_OK) {
		rc = cli_fail(a, "attestation failed: %s", scl_err_last());
		goto done;
	}
	printf("worker: attested by the key broker; the core holds a writer "
	       "certificate and the capsule's data keys\n");
	if (append) {
		if (l.client == NULL) {
			rc = cli_fail(a, "--append needs servers (--servers, or "
					 "a capsule that lists them)");
			goto done;
		}
		in = strcmp(append, "-") == 0 ? stdin : fopen(append, "r");
		if (in == NULL) {
			rc = cli_fail(a, "cannot open %s: %s", append,
			    strerror(errno));
			goto done;
		}
		if ((rc = append_lines(a, w, &l, in)) != CLI_OK)
			goto done;
	}
	rc = CLI_OK;
	if (cli_has(a, "once"))
		goto done;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (cli_get(a, "listen")) {
		rc = serve_kv(a, w, &l);
		goto done;
	}
	printf("worker: ready; idle until SIGTERM\n");
	fflush(stdout);
	while (!stop_requested) {
		struct scl_enclave_exit now;
		if (!scl_enclave_alive(scl_worker_enclave(w), &now)) {
			rc = cli_fail(a, "the trusted core died (signal %d)",
			    now.signal);
			break;
		}
		sleep(1);
	}
done:
	if (in && in != stdin)
		fclose(in);
	capsule_close(&l);
	scl_worker_stop(w, &ex);
	if (ex.signal)
		fprintf(stderr, "worker: the core was killed by signal %d\n",
		    ex.signal);
	return rc;
}

static const struct cli_opt worker_opts[] = {
	{ "actors", "N", "crypto actor threads in the core", NULL,
	    CLI_NUM(SCL_WORKER_ACTORS_DEFAULT, 1, 64) },
	{ "append", "FILE", "seal FILE's lines in the core and store them "
			    "('-' for stdin)", NULL },
	{ "attest", "BACKEND", "sim or tsm (configfs-tsm)", "sim" },
	{ "batch", "N", "KVS: puts per sealed record, at most", NULL,
	    CLI_NUM(SCL_KV_BATCH_PUTS_DEFAULT, 1, 65536) },
	{ "batch-delay-us", "US", "KVS: a batch closes this long after its "
				  "first put at the latest (the seal clock "
				  "closes it sooner)", NULL,
	    CLI_NUM(SCL_WORKER_BATCH_DELAY_US_DEFAULT, 50, 10000000) },
	{ "broker", "ENDPOINT", "the capsule owner's key broker", NULL },
	{ "capsule", "NAME", "the capsule to write", NULL },
	{ "listen", "ENDPOINT", "KVS: serve clients here (scl kv)", NULL },
	{ "no-catch-up", NULL, "KVS: do not rebuild from the servers first",
	    NULL },
	{ "once", NULL, "exit after attesting (and --append)", NULL },
	{ "plain", NULL, "KVS: no crypto, no servers (benchmark baseline)",
	    NULL },
	{ "platform-key", "FILE", "sim platform key",
	    "DIR/sim-platform.key" },
	{ "record-version", "N", "KVS: write records v1 (BLAKE2b) or v2 "
				 "(SHA-256) for older servers and readers, "
				 "or v3", NULL,
	    CLI_NUM(SCL_RECORD_VERSION, SCL_RECORD_VERSION_MIN, SCL_RECORD_VERSION) },
	{ "ring-spin-us", "US", "poll the core's rings at most this long "
				"before sleeping (each end learns how "
				"much of it pays)", NULL,
	    CLI_NUM(SCL_WORKER_RING_SPIN_US_DEFAULT, 1, 1000000) },
	{ "router", "ENDPOINT", "KVS: the multicast router", NULL },
	{ "seal-clock-max", "N", "KVS: the seal clock closes batches early "
				 "only while the worker served fewer client "
				 "operations (reads too) since the last one "
				 "(0: always)", NULL,
	    CLI_NUM(0, 0, UINT32_MAX) },
	{ "seal-gap-us", "US", "KVS: the seal clock closes a batch this long "
			       "after the previous one", NULL,
	    CLI_NUM(SCL_WORKER_SEAL_GAP_US_DEFAULT, 100, 10000000) },
	{ "servers", "LIST", "the capsule's servers", "from its metadata" },
	{ "store-delay-us", "US", "KVS: sealed batches wait this long at "
				  "most to go to the servers together as one "
				  "append (a durable request does not wait)", NULL,
	    CLI_NUM(SCL_WORKER_STORE_DELAY_US_DEFAULT, 0, 10000000) },
	{ "tee", "BACKEND", "thread, process or crossing", "process" },
	{ "unstored-max-mb", "MB", "KVS: sealed writes that may wait for the "
				   "servers; from there on writes are "
				   "refused (reads go on) until they hold "
				   "some", NULL,
	    CLI_NUM((SCL_WORKER_UNSTORED_MAX_DEFAULT >> 20), 1, 65536) },
	CLI_OPTS_END,
};

static const struct cli_cmd worker_cmd = {
	"worker", "--capsule NAME --broker ENDPOINT [options]",
	"run a PSL worker: an attested trusted core behind the rings",
	"Starts a worker: an untrusted host and a trusted core that talk only "
	"over\nshared-memory rings (--tee process: the core is its own "
	"process under seccomp).\nThe core makes its own keys, is attested to "
	"the capsule owner's key broker, and\nreceives a writer certificate "
	"and the data keys wrapped for it alone.  With\n--append it seals "
	"lines into records in the core and stores them on the\ncapsule's "
	"servers.  With --listen it runs the KVS in the core: clients (scl "
	"kv) reach it\nthere, peers through --router, and every batch is "
	"stored on the servers.\nOtherwise it idles (no CPU) until SIGTERM, "
	"or exits with --once.  The sim\nattestation backend proves nothing "
	"against the host.",
	worker_opts, 0, 0,
	"  scl worker --capsule $name --broker tcp://127.0.0.1:7500 \\\n"
	"      --platform-key platform.key --append notes.txt --once\n"
	"  scl worker --capsule $name --broker tcp://127.0.0.1:7500 \\\n"
	"      --router tcp://127.0.0.1:7600 --listen tcp://127.0.0.1:7700\n",
	worker_run,
};

int
cmd_worker(int argc, char **argv)
{
	struct cli_args a;
	int rc;

	if ((rc = cli_parse(&a, &worker_cmd, argc, argv)) >= 0)
		return rc;
	return worker_cmd.run(&a);
}
