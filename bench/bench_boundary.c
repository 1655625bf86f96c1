/*
 * bench_boundary.c - scl bench boundary: the cost of crossing between the
 * untrusted host and the trusted core, message passing over rings against
 * one kernel round trip per call (the crossing backend), in the same run.
 *
 * For each backend and placement (host and core pinned to the same CPU or
 * to different ones) it measures round trips (p50/p99) and one-way
 * throughput for 64-byte and 4 KiB messages.  Rings are measured in two
 * regimes: hot (the waiting side spins, as under load) and blocking (it
 * sleeps on a futex at once, as when idle).  On one CPU only the blocking
 * regime makes sense: a spinner would hold the CPU its peer needs.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* 'e': echo.  'c': count, no reply.  'z': reply with the count so far. */
static void
bench_core(struct scl_enclave_io *io, void *arg)
{
	static uint8_t buf[8192];
	uint64_t count = 0;
	size_t len;

	(void)arg;
	while (scl_enclave_io_recv(io, buf, sizeof(buf), &len, -1) == SCL_OK) {
		if (len && buf[0] == 'c') {
			count++;
		} else if (len && buf[0] == 'z') {
			if (scl_enclave_io_send(io, &count, sizeof(count)) != SCL_OK)
				return;
			count = 0;
		} else if (scl_enclave_io_send(io, buf, len) != SCL_OK) {
			return;
		}
	}
}


struct result {
	double p50, p99, msgs_per_s;
	bool ok;
};

static enum scl_err
measure(struct result *out, struct scl_enclave *e, size_t size, int rtts,
    int oneway)
{
	static uint8_t msg[8192], rep[8192];
	double *lat = malloc((size_t)rtts * sizeof(double)), t0;
	uint64_t counted = 0;
	size_t len;
	enum scl_err r = SCL_OK;

	if (lat == NULL)
		return scl_err_set(SCL_ENOMEM, "latencies");
	memset(msg, 'x', size);
	msg[0] = 'e';
	for (int i = 0; i < rtts / 10 && r == SCL_OK; i++) /* warm up */
		r = scl_enclave_call(e, msg, size, rep, sizeof(rep), &len, 5000);
	for (int i = 0; i < rtts && r == SCL_OK; i++) {
		t0 = now_us();
		r = scl_enclave_call(e, msg, size, rep, sizeof(rep), &len, 5000);
		lat[i] = now_us() - t0;
	}
	msg[0] = 'c';
	t0 = now_us();
	for (int i = 0; i < oneway && r == SCL_OK; i++)
		r = scl_enclave_send(e, msg, size);
	if (r == SCL_OK)
		r = scl_enclave_call(e, "z", 1, &counted, sizeof(counted), &len,
		    30000);
	if (r == SCL_OK) {
		double secs = (now_us() - t0) / 1e6;
		qsort(lat, (size_t)rtts, sizeof(double), bench_cmp_double);
		out->p50 = lat[rtts / 2];
		out->p99 = lat[(rtts * 99) / 100];
		out->msgs_per_s = (double)counted / secs;
		out->ok = counted == (uint64_t)oneway;
		if (!out->ok)
			r = scl_err_set(SCL_EVERIFY, "core counted %llu of %d",
			    (unsigned long long)counted, oneway);
	}
	free(lat);
	return r;
}

struct config {
	enum scl_tee tee;
	bool same_cpu, hot;
};

static void
unpin(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static enum scl_err
run_config(const struct config *c, size_t size, bool quick,
    struct result *res)
{
	struct scl_enclave_options opt;
	struct scl_enclave *e;
	bool slow = !c->hot || c->tee == SCL_TEE_CROSSING;
	int rtts = slow ? 3000 : 50000, oneway = slow ? 20000 : 2000000;
	enum scl_err r;

	if (quick) {
		rtts /= 10;
		oneway /= 10;
	}
	if (size > 64)
		oneway /= 8;
	memset(&opt, 0, sizeof(opt));
	opt.tee = c->tee;
	opt.ring.no_spin = !c->hot;
	opt.ring.spin_us = 200;
	opt.ring_capacity = (size_t)1 << 22;
	opt.pin = true;
	opt.host_cpu = 0;
	opt.core_cpu = c->same_cpu ? 0 : 1;
	if ((r = scl_enclave_start(&e, &opt, bench_core, NULL)) != SCL_OK)
		return r;
	r = measure(res, e, size, rtts, oneway);
	scl_enclave_stop(e, NULL);
	unpin();
	return r;
}

int bench_boundary(struct cli_args *a);

int
bench_boundary(struct cli_args *a)
{
	static const struct config configs[] = {
		{ SCL_TEE_CROSSING, true, false },
		{ SCL_TEE_CROSSING, false, false },
		{ SCL_TEE_THREAD, false, true },
		{ SCL_TEE_PROCESS, false, true },
		{ SCL_TEE_THREAD, false, false },
		{ SCL_TEE_PROCESS, false, false },
		{ SCL_TEE_THREAD, true, false },
		{ SCL_TEE_PROCESS, true, false },
	};
	static const size_t sizes[2] = { 64, 4096 };
	struct result res[8][2];
	bool quick = cli_has(a, "quick");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(configs) / sizeof(*configs); i++)
		for (int z = 0; z < 2; z++) {
			const struct config *c = &configs[i];
			enum scl_err r;
			if (!c->same_cpu && ncpu < 2)
				continue;
			fprintf(stderr, "bench boundary: %s, %s, %s, %zu B...\n",
			    scl_tee_name(c->tee),
			    c->same_cpu ? "same CPU" : "two CPUs",
			    c->tee == SCL_TEE_CROSSING ? "kernel"
			    : c->hot		       ? "hot"
						       : "blocking",
			    sizes[z]);
			if ((r = run_config(c, sizes[z], quick, &res[i][z])) !=
			    SCL_OK)
				return cli_fail_err(a, r);
			printf("{\"bench\":\"boundary\",\"backend\":\"%s\","
			       "\"cpus\":\"%s\",\"regime\":\"%s\",\"size\":%zu,"
			       "\"rtt_p50_us\":%.3f,\"rtt_p99_us\":%.3f,"
			       "\"oneway_msgs_per_s\":%.0f}\n",
			    scl_tee_name(c->tee),
			    c->same_cpu ? "same" : "different",
			    c->tee == SCL_TEE_CROSSING ? "kernel"
			    : c->hot		       ? "hot"
						       : "blocking",
			    sizes[z], res[i][z].p50, res[i][z].p99,
			    res[i][z].msgs_per_s);
			fflush(stdout);
		}
	for (int z = 0; z < 2 && ncpu >= 2; z++) {
		double crossing = res[0][z].p50 < res[1][z].p50 ? res[0][z].p50
							      : res[1][z].p50;
		printf("{\"bench\":\"boundary\",\"what\":\"summary\",\"size\":%zu,"
		       "\"crossing_best_rtt_p50_us\":%.3f,"
		       "\"thread_hot_rtt_p50_us\":%.3f,"
		       "\"process_hot_rtt_p50_us\":%.3f,"
		       "\"ratio_thread\":%.1f,\"ratio_process\":%.1f,"
		       "\"process_hot_oneway_msgs_per_s\":%.0f,"
		       "\"crossing_best_oneway_msgs_per_s\":%.0f}\n",
		    sizes[z], crossing, res[2][z].p50, res[3][z].p50,
		    crossing / res[2][z].p50, crossing / res[3][z].p50,
		    res[3][z].msgs_per_s,
		    res[0][z].msgs_per_s > res[1][z].msgs_per_s
			? res[0][z].msgs_per_s
			: res[1][z].msgs_per_s);
	}
	return CLI_OK;
}
