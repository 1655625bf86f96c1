/*
 * actors.c - the crypto actor pool: one run queue, N threads, and
 * streams that deliver completions in submission order.
 *
 * Lock order: a stream's lock, then the pool's.  Completion callbacks
 * run with no lock held, one at a time per stream (the `delivering`
 * flag), so a callback may submit more work, even to its own stream.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "scl/actors.h"

struct scl_actors {
	pthread_t *threads;
	unsigned n;
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct scl_actor_job *head, *tail;	/* runnable jobs */
	bool stop;
	unsigned started;	/* threads that finished starting up */
};

struct scl_actor_stream {
	struct scl_actors *pool;
	bool serial;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	uint64_t next_seq;
	uint64_t outstanding;			/* submitted, not delivered */
	struct scl_actor_job *order_head, *order_tail;	/* undelivered */
	struct scl_actor_job *wait_head, *wait_tail;	/* serial backlog */
	bool running;				/* serial: a job is out */
	bool delivering;
};

static void
pool_push(struct scl_actors *a, struct scl_actor_job *j)
{
	pthread_mutex_lock(&a->lock);
	j->next_ = NULL;
	if (a->tail)
		a->tail->next_ = j;
	else
		a->head = j;
	a->tail = j;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
}

/* Delivers finished jobs at the head of the stream's order, in order.
 * Called with the stream's lock held; returns with it held. */
static void
deliver(struct scl_actor_stream *s)
{
	if (s->delivering)
		return;
	s->delivering = true;
	while (s->order_head && s->order_head->finished_) {
		struct scl_actor_job *j = s->order_head;
		s->order_head = j->order_;
		if (s->order_head == NULL)
			s->order_tail = NULL;
		pthread_mutex_unlock(&s->lock);
		if (j->done)
			j->done(j); /* may free j */
		pthread_mutex_lock(&s->lock);
		if (--s->outstanding == 0)
			pthread_cond_broadcast(&s->idle);
	}
	s->delivering = false;
}

static void
finish(struct scl_actor_job *j)
{
	struct scl_actor_stream *s = j->stream_;

	pthread_mutex_lock(&s->lock);
	j->finished_ = true;
	if (s->serial) {
		struct scl_actor_job *next = s->wait_head;
		if (next) {
			s->wait_head = next->next_;
			if (s->wait_head == NULL)
				s->wait_tail = NULL;
			pool_push(s->pool, next);
		} else {
			s->running = false;
		}
	}
	deliver(s);
	pthread_mutex_unlock(&s->lock);
}

static void *
actor_main(void *arg)
{
	struct scl_actors *a = arg;

	pthread_setname_np(pthread_self(), "scl-actor");
	pthread_mutex_lock(&a->lock);
	a->started++;
	pthread_cond_broadcast(&a->work);
	for (;;) {
		struct scl_actor_job *j;
		while (a->head == NULL && !a->stop)
			pthread_cond_wait(&a->work, &a->lock);
		if (a->head == NULL)
			break;
		j = a->head;
		a->head = j->next_;
		if (a->head == NULL)
			a->tail = NULL;
		pthread_mutex_unlock(&a->lock);
		j->run(j);
		finish(j);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

enum scl_err
scl_actors_new(struct scl_actors **out, unsigned threads)
{
	struct scl_actors *a;

	*out = NULL;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->threads = calloc(threads, sizeof(*a->threads))) == NULL) {
		free(a);
		return scl_err_set(SCL_ENOMEM, "cannot allocate actor pool");
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&a->threads[i], NULL, actor_main, a) != 0) {
			scl_actors_free(a);
			return scl_err_set(SCL_ENOMEM,
			    "cannot start actor thread %u", i);
		}
		a->n++;
	}
	/* Every thread is past its start-up when this returns: a trusted
	 * core installs its seccomp filter next, and thread start-up makes
	 * system calls the filter forbids. */
	pthread_mutex_lock(&a->lock);
	while (a->started < a->n)
		pthread_cond_wait(&a->work, &a->lock);
	pthread_mutex_unlock(&a->lock);
	*out = a;
	return SCL_OK;
}

void
scl_actors_free(struct scl_actors *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->n; i++)
		pthread_join(a->threads[i], NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->work);
	free(a->threads);
	free(a);
}

unsigned
scl_actors_threads(const struct scl_actors *a)
{
	return a->n;
}

enum scl_err
scl_actor_stream_new(struct scl_actors *a, struct scl_actor_stream **out,
    bool serial)
{
	struct scl_actor_stream *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate stream");
	s->pool = a;
	s->serial = serial;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	*out = s;
	return SCL_OK;
}

void
scl_actor_stream_free(struct scl_actor_stream *s)
{
	if (s == NULL)
		return;
	scl_actor_stream_wait(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}

void
scl_actor_submit(struct scl_actor_stream *s, struct scl_actor_job *job)
{
	bool dispatch = true;

	job->stream_ = s;
	job->finished_ = false;
	job->order_ = NULL;
	job->next_ = NULL;
	pthread_mutex_lock(&s->lock);
	job->seq_ = s->next_seq++;
	s->outstanding++;
	if (s->order_tail)
		s->order_tail->order_ = job;
	else
		s->order_head = job;
	s->order_tail = job;
	if (s->serial) {
		if (s->running) {
			dispatch = false;
			if (s->wait_tail)
				s->wait_tail->next_ = job;
			else
				s->wait_head = job;
			s->wait_tail = job;
		} else {
			s->running = true;
		}
	}
	if (dispatch)
		pool_push(s->pool, job);
	pthread_mutex_unlock(&s->lock);
}

void
scl_actor_stream_wait(struct scl_actor_stream *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->outstanding > 0)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}
