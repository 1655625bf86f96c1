/*
 * main.c - the scl command: a thin shell over libscl.
 *
 * One table of command groups; each group dispatches to its own table of
 * subcommands whose option specs drive parsing and help (opts.c).
 */
#include <string.h>

#include "cli.h"

struct group {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct group groups[] = {
	{ "capsule", "create, append to, read, verify and prove DataCapsules",
	    cmd_capsule },
	{ "keys", "identities, measurements, and the owner's key broker",
	    cmd_keys },
	{ "server", "run an untrusted capsule server; 'status ADDR'",
	    cmd_server },
	{ "worker", "run a PSL worker: an attested core behind rings",
	    cmd_worker },
	{ "router", "run the untrusted multicast router; 'status ADDR'",
	    cmd_router },
	{ "kv", "get, put, delete and scan a worker's KVS", cmd_kv },
	{ "bench", "measure SCL against the machine's limits", cmd_bench },
	{ NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "Usage: scl COMMAND [SUBCOMMAND] [options]\n"
	    "\n"
	    "SCL keeps shared, persistent, verifiable state for stateful\n"
	    "serverless functions on machines nobody fully trusts.\n"
	    "\n"
	    "Commands:\n");
	for (size_t i = 0; groups[i].name; i++)
		fprintf(f, "  %-22s %s\n", groups[i].name, groups[i].summary);
	fprintf(f,
	    "  %-22s %s\n"
	    "  %-22s %s\n"
	    "\n"
	    "Data lives in --dir DIR, else $SCL_HOME, else ~/.scl.\n"
	    "Run 'scl COMMAND --help' for the subcommands of a command.\n",
	    "help [COMMAND]", "show help for a command",
	    "version", "print the version");
}

static const struct group *
find_group(const char *name)
{
	for (size_t i = 0; groups[i].name; i++)
		if (strcmp(groups[i].name, name) == 0)
			return &groups[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct group *g;

	if (scl_init() != SCL_OK) {
		fprintf(stderr, "scl: %s\n", scl_err_last());
		return CLI_FAIL;
	}
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("scl %s (format v%d, store v%d)\n", SCL_VERSION_STRING,
		    SCL_FORMAT_VERSION, SCL_STORE_VERSION);
		return CLI_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		char *help[] = { "--help", NULL };
		if (argc < 3) {
			usage(stdout);
			return CLI_OK;
		}
		if ((g = find_group(argv[2])) == NULL) {
			fprintf(stderr, "scl help: unknown command '%s'\n",
			    argv[2]);
			return CLI_USAGE;
		}
		if (argc > 3) {
			char *sub[] = { argv[3], "--help", NULL };
			return g->run(2, sub);
		}
		return g->run(1, help);
	}
	if ((g = find_group(argv[1])) == NULL) {
		fprintf(stderr, "scl: unknown command '%s'\nsee 'scl --help'\n",
		    argv[1]);
		return CLI_USAGE;
	}
	return g->run(argc - 2, argv + 2);
}
