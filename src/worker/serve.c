/*
 * serve.c - the main loop of a worker's host serving a KVS: its sockets,
 * the seal clock, and the drain on a graceful stop.
 *
 * Three threads, each owning its sockets (ZeroMQ sockets are not
 * thread-safe), joined by inproc PAIR sockets:
 * - this main loop: clients (ROUTER on --listen, clients.c), the router
 *   (DEALER) and every call into the core (replica.c), which is a state
 *   machine driven by requests, peers' messages and ticks;
 * - the appender (appender.c): the core's sealed batches to the servers;
 * - the fetcher (fetcher.c): what the core asks for, from the servers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/clock.h"
#include "scl/zsock.h"
#include "worker_int.h"

/* Messages a client or router socket queues each way. */
#define SOCKET_HWM 100000
/* How long a stopping worker waits for the servers to hold its writes:
 * servers that are gone must not hold it hostage. */
#define DRAIN_MS 3000
/* The timeout of the appender's and fetcher's server requests. */
#define SERVER_TIMEOUT_MS 2000

void
scl_worker__thread_failed(struct host *h, const char *who)
{
	snprintf(h->thread_why, sizeof(h->thread_why), "the %s could not "
	    "start: %s", who, scl_err_last()[0] ? scl_err_last()
						: zmq_strerror(zmq_errno()));
	atomic_store(&h->thread_failed, true);
}

static enum scl_err
open_network(struct host *h)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	size_t len = sizeof(h->w->endpoint);
	enum scl_err e;

	zo.max_msg_bytes = (int64_t)SCL_KVCLIENT_FRAME_MAX;
	zo.send_hwm = zo.recv_hwm = SOCKET_HWM;
	zo.bind = h->opt.listen;
	if ((e = scl_zsock_open(&h->clients, h->zctx, ZMQ_ROUTER, &zo)) !=
	    SCL_OK)
		return e;
	(void)zmq_getsockopt(h->clients, ZMQ_LAST_ENDPOINT, h->w->endpoint,
	    &len);
	if (h->opt.router == NULL)
		return SCL_OK;
	zo.max_msg_bytes = (int64_t)SCL_CORE_MSG_MAX;
	zo.bind = NULL;
	zo.connect = h->opt.router;
	if ((e = scl_zsock_open(&h->router, h->zctx, ZMQ_DEALER, &zo)) !=
	    SCL_OK)
		return scl_err_wrap(e, "the router: ");
	scl_worker__subscribe(h);
	return SCL_OK;
}

/* The pipes to the appender and the fetcher, and the threads. */
static enum scl_err
open_threads(struct host *h)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	enum scl_err e;

	/* An inproc pipe's limits come from the options each end had when
	 * it bound or connected: set before the bind. */
	zo.send_hwm = APPEND_PIPE_FRAMES;
	zo.bind = "inproc://appender";
	if ((e = scl_zsock_open(&h->app, h->zctx, ZMQ_PAIR, &zo)) != SCL_OK)
		return e;
	zo.send_hwm = zo.recv_hwm = SOCKET_HWM;
	zo.bind = "inproc://fetcher";
	if ((e = scl_zsock_open(&h->fetch, h->zctx, ZMQ_PAIR, &zo)) != SCL_OK)
		return e;
	h->copt.timeout_ms = SERVER_TIMEOUT_MS;
	h->copt.cancel = &h->closing;
	h->copt.log = h->w->opt.log;
	if (pthread_create(&h->app_th, NULL, scl_worker__appender_main, h) !=
	    0)
		return scl_err_set(SCL_EIO, "cannot start the appender");
	h->app_started = true;
	if (pthread_create(&h->fetch_th, NULL, scl_worker__fetcher_main, h) !=
	    0)
		return scl_err_set(SCL_EIO, "cannot start the fetcher");
	h->fetch_started = true;
	return SCL_OK;
}

static enum scl_err
host_open(struct host *h)
{
	enum scl_err e;

	if ((h->zctx = zmq_ctx_new()) == NULL)
		return scl_err_set(SCL_EIO, "cannot make a ZeroMQ context: %s",
		    zmq_strerror(zmq_errno()));
	if ((e = open_network(h)) != SCL_OK)
		return e;
	return h->opt.n_servers ? open_threads(h) : SCL_OK;
}

static void
host_close(struct host *h)
{
	atomic_store(&h->closing, true);
	/* The stop signal wakes a thread blocked on its socket.  Never wait
	 * to send it: a thread that saw `closing` may have closed its end
	 * already, and a PAIR socket without a peer blocks a send forever
	 * (a worker stopping while fetching from dead servers hung so). */
	if (h->app_started) {
		(void)zmq_send(h->app, "", 0, ZMQ_DONTWAIT);
		pthread_join(h->app_th, NULL);
	}
	if (h->fetch_started) {
		(void)zmq_send(h->fetch, "", 0, ZMQ_DONTWAIT);
		pthread_join(h->fetch_th, NULL);
	}
	scl_worker__drop_held(h);
	if (h->app)
		zmq_close(h->app);
	if (h->fetch)
		zmq_close(h->fetch);
	if (h->router)
		zmq_close(h->router);
	if (h->clients)
		zmq_close(h->clients);
	if (h->zctx)
		zmq_ctx_term(h->zctx);
	scl_buf_dispose(&h->req);
	scl_buf_dispose(&h->frame);
	free(h->pending);
}

/* Asks the core to seal its open batch now: a call of one durable group
 * with no requests. */
static enum scl_err
close_batch_now(struct host *h)
{
	struct scl_slice results;
	enum scl_err r;

	if ((r = scl_core_ops_begin(&h->req, scl_clock_wall_us())) != SCL_OK ||
	    (r = scl_core_ops_add(&h->req, SCL_CORE_GROUP_DURABLE, 0,
		 scl_slice_of(NULL, 0))) != SCL_OK ||
	    (r = scl_core_ops_finish(&h->req)) != SCL_OK)
		return r;
	r = scl_worker__kv_call(h, scl_buf_slice(&h->req), &results);
	scl_buf_clear(&h->req);
	if (r == SCL_OK && h->more)
		(void)scl_worker__tick(h); /* takes outputs until none is left */
	return r;
}

/*
 * The seal clock.  The core closes a batch when it is full or at the
 * batch delay after its first put; the host closes it sooner: once the
 * previous batch is sealed and seal_gap_us after it.  A lone put then
 * waits for no timer, and below saturation a put is on its way to the
 * peers within a few milliseconds.  The gap bounds how many batches go
 * out, each costing a signature, a verification per peer and a dozen
 * messages and wake-ups whatever it holds (docs/BENCHMARKS.md compares
 * 1 to 5 ms).  A busy worker (one that served seal_clock_max client
 * operations, reads included, since the last batch) leaves batches to
 * their size and delay, as its CPU is better spent on operations; reads
 * count because a read-mostly load has few puts per batch but no CPU to
 * spare.
 */

/* When (monotonic µs) the clock closes the open batch; 0: it does not. */
static uint64_t
clock_due_us(const struct host *h)
{
	if (h->sealing || h->through <= h->sealed ||
	    h->through == h->clock_refused ||
	    (h->opt.seal_clock_max &&
		h->served - h->served_at_seal >= h->opt.seal_clock_max))
		return 0;
	return h->sealed_at_us + h->opt.seal_gap_us;
}

static void
clock_batches(struct host *h)
{
	uint64_t due = clock_due_us(h);

	if (due == 0 || scl_clock_mono_us() < due)
		return;
	if (close_batch_now(h) != SCL_OK) {
		/* Not again until the core takes more operations (it would
		 * refuse the same way, e.g. after a sealing failure). */
		h->clock_refused = h->through;
		scl_err_clear();
	}
}

/* On a graceful stop, writes the clients were told about (with or
 * without waiting for durability) still reach the servers: the core
 * seals its open batch and the appender runs until the write quorum
 * holds everything, for at most DRAIN_MS. */
static void
drain(struct host *h)
{
	uint64_t deadline = scl_clock_mono_ms() + DRAIN_MS;

	if (h->app == NULL)
		return;
	if (close_batch_now(h) != SCL_OK) {
		scl_err_clear();
		return;
	}
	scl_worker__want_durable(h, h->through);
	while (h->durable < h->through && scl_clock_mono_ms() < deadline) {
		zmq_pollitem_t it = { h->app, 0, ZMQ_POLLIN, 0 };
		(void)zmq_poll(&it, 1, h->sealing ? 0 : 10);
		scl_worker__read_appender(h);
		if (scl_worker__tick(h) != SCL_OK)
			break;
	}
	scl_err_clear();
	if (h->durable < h->through)
		scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
		    "stopping with %llu operation%s the servers do not hold",
		    (unsigned long long)(h->through - h->durable),
		    h->through - h->durable == 1 ? "" : "s");
	else
		scl_log(&h->w->opt.log, SCL_LOG_INFO, "worker",
		    "stopping: the servers hold every operation (%llu)",
		    (unsigned long long)h->through);
}

/* How long the loop may sleep in zmq_poll, in whole ms: until the core
 * or the seal clock has work (at most 50 ms), rounded up, so that a timer
 * fires up to 1 ms late rather than the loop waking every 200 us to watch
 * it.  While the actors seal a batch it looks again every 100 us (in
 * *@nap_us, after a poll of 0): a sealed batch is on its way to the peers
 * within that. */
static long
poll_timeout_ms(const struct host *h, uint64_t *nap_us)
{
	uint64_t now = scl_clock_wall_us(), due;
	uint64_t wait_us = h->next_tick > now ? h->next_tick - now : 0;

	if (wait_us > 50000)
		wait_us = 50000;
	if ((due = clock_due_us(h)) != 0) {
		uint64_t mono = scl_clock_mono_us();
		uint64_t left = due > mono ? due - mono : 0;
		if (left < wait_us)
			wait_us = left;
	}
	*nap_us = 0;
	if (h->sealing) {
		*nap_us = wait_us > 100 ? 100 : wait_us;
		return 0;
	}
	return (long)((wait_us + 999) / 1000);
}

/* One turn of the loop: waits for work, then does all there is. */
static enum scl_err
serve_once(struct host *h)
{
	zmq_pollitem_t items[4];
	int ni = 0, ir = -1, ia = -1, ifch = -1, ready;
	uint64_t nap_us;
	long timeout = poll_timeout_ms(h, &nap_us);

	items[ni++] = (zmq_pollitem_t){ h->clients, 0, ZMQ_POLLIN, 0 };
	if (h->router) {
		ir = ni;
		items[ni++] = (zmq_pollitem_t){ h->router, 0, ZMQ_POLLIN, 0 };
	}
	if (h->app) {
		ia = ni;
		items[ni++] = (zmq_pollitem_t){ h->app, 0, ZMQ_POLLIN, 0 };
		ifch = ni;
		items[ni++] = (zmq_pollitem_t){ h->fetch, 0, ZMQ_POLLIN, 0 };
	}
	ready = zmq_poll(items, ni, timeout);
	if (ready < 0 && zmq_errno() != EINTR)
		return scl_err_set(SCL_EIO, "zmq_poll: %s",
		    zmq_strerror(zmq_errno()));
	if (atomic_load(&h->thread_failed))
		return scl_err_set(SCL_EIO, "%s", h->thread_why);
	if (ready == 0 && nap_us > 0)
		usleep((useconds_t)nap_us);
	/* Peers' batches first: the clients' reads waiting behind them
	 * then see their writes, and a batch does not wait for a group of
	 * client requests to be served. */
	if (ir >= 0 && (items[ir].revents & ZMQ_POLLIN))
		scl_worker__read_router(h);
	if (items[0].revents & ZMQ_POLLIN)
		scl_worker__read_clients(h);
	if (ifch >= 0 && (items[ifch].revents & ZMQ_POLLIN))
		scl_worker__read_fetcher(h);
	if (ia >= 0 && (items[ia].revents & ZMQ_POLLIN))
		scl_worker__read_appender(h);
	if (!h->app)
		scl_worker__release_durable(h);
	clock_batches(h);
	if (scl_clock_wall_us() >= h->next_tick || h->sealing) {
		enum scl_err e = scl_worker__tick(h);
		if (e != SCL_OK)
			return e;
	}
	if (h->router && scl_clock_mono_ms() >= h->next_sub_ms)
		scl_worker__subscribe(h);
	return SCL_OK;
}

/* The host for @opt, its options checked and completed. */
static enum scl_err
host_new(struct host **out, struct scl_worker *w,
    const struct scl_worker_serve_options *opt)
{
	struct host *h;
	enum scl_err e;

	*out = NULL;
	if (opt->listen == NULL)
		return scl_err_set(SCL_EINVAL, "serving needs an endpoint to "
		    "listen on");
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->pending = calloc(SCL_CORE_GROUPS_MAX,
		 sizeof(*h->pending))) == NULL) {
		free(h);
		return scl_err_set(SCL_ENOMEM, "cannot allocate the host");
	}
	h->w = w;
	h->opt = *opt;
	scl_capsule_name(h->name, opt->meta);
	if ((e = scl_capsule_meta_check(&h->meta, h->name, opt->meta)) !=
	    SCL_OK) {
		free(h->pending);
		free(h);
		return scl_err_wrap(e, "the capsule's metadata: ");
	}
	if (h->opt.seal_gap_us == 0)
		h->opt.seal_gap_us = SCL_WORKER_SEAL_GAP_US_DEFAULT;
	h->unstored_max = opt->unstored_max_bytes
	    ? opt->unstored_max_bytes : SCL_WORKER_UNSTORED_MAX_DEFAULT;
	h->caught_up = !opt->catch_up || opt->n_servers == 0;
	scl_buf_init(&h->req);
	scl_buf_init(&h->frame);
	*out = h;
	return SCL_OK;
}

enum scl_err
scl_worker_serve(struct scl_worker *w, const struct scl_worker_serve_options *opt)
{
	struct host *h;
	enum scl_err e;

	if ((e = host_new(&h, w, opt)) != SCL_OK)
		return e;
	atomic_store(&w->stop_serving, false);
	if ((e = host_open(h)) != SCL_OK || (e = scl_worker__tick(h)) != SCL_OK)
		goto done;
	scl_log(&w->opt.log, SCL_LOG_INFO, "worker", "serving clients on %s%s%s",
	    w->endpoint, opt->router ? ", router " : "",
	    opt->router ? opt->router : "");
	while (!atomic_load(&w->stop_serving) && (e = serve_once(h)) == SCL_OK)
		;
	if (e == SCL_OK && !scl_enclave_alive(w->e, NULL))
		e = scl_err_set(SCL_EIO, "the trusted core died");
	if (e == SCL_OK)
		drain(h);
done:
	host_close(h);
	free(h);
	return e;
}

void
scl_worker_stop_serving(struct scl_worker *w)
{
	atomic_store(&w->stop_serving, true);
}

const char *
scl_worker_endpoint(const struct scl_worker *w)
{
	return w->endpoint;
}
