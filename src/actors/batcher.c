/*
 * batcher.c - puts become records on the actor pool.
 *
 * Per batch: the puts are framed on the caller's thread; a BUILD job on
 * the writer's serial stream seals them into one DATA record (chain state
 * updated by one thread at a time, in order); its completion submits a
 * SIGN job to the ordered delivery stream, where the heartbeat is signed
 * in parallel with later builds, and the finished batch is handed to the
 * caller's function in chain order.  At most MAX_INFLIGHT batches are in
 * flight: put() waits beyond that (back-pressure, never a drop).  A small
 * batch flushed while none is in flight skips the actors: built, signed
 * and delivered on the caller's thread (inline_max_bytes).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scl/actors.h"
#include "scl/clock.h"
#include "scl/codec.h"

#define MAX_INFLIGHT 64

struct scl_batcher;

struct bjob {
	struct scl_actor_job build;
	struct scl_actor_job sign;
	struct scl_batcher *owner;
	struct scl_buf payload;
	struct scl_capsule_batch batch;
	enum scl_err err;
	char msg[256];
};

struct scl_batcher {
	struct scl_actors *pool;
	struct scl_capsule_writer *w;
	struct scl_sign_key key;	/* a copy, for parallel signing */
	struct scl_actor_stream *serial, *ordered;
	struct scl_batcher_options opt;
	scl_batcher_out_fn out;
	void *arg;
	struct bjob *cur;
	size_t cur_puts;
	pthread_mutex_t lock;
	pthread_cond_t room;
	unsigned inflight;
	enum scl_err err;		/* first failure */
	char msg[256];
};

static void
bjob_free(struct bjob *j)
{
	scl_buf_dispose_secret(&j->payload);
	scl_capsule_batch_dispose(&j->batch);
	free(j);
}

static void
note_error(struct scl_batcher *b, struct bjob *j)
{
	pthread_mutex_lock(&b->lock);
	if (b->err == SCL_OK) {
		b->err = j->err;
		memcpy(b->msg, j->msg, sizeof(b->msg));
	}
	pthread_mutex_unlock(&b->lock);
}

static void
sign_run(struct scl_actor_job *job)
{
	struct bjob *j = (struct bjob *)((char *)job -
	    offsetof(struct bjob, sign));

	if (j->err != SCL_OK)
		return;
	j->err = scl_capsule_batch_sign(&j->batch, &j->owner->key, scl_clock_wall_us());
	if (j->err != SCL_OK)
		snprintf(j->msg, sizeof(j->msg), "%s", scl_err_last());
}

static void
sign_done(struct scl_actor_job *job)
{
	struct bjob *j = (struct bjob *)((char *)job -
	    offsetof(struct bjob, sign));
	struct scl_batcher *b = j->owner;

	if (j->err == SCL_OK)
		b->out(b->arg, &j->batch);
	else
		note_error(b, j);
	bjob_free(j);
	pthread_mutex_lock(&b->lock);
	b->inflight--;
	pthread_cond_broadcast(&b->room);
	pthread_mutex_unlock(&b->lock);
}

static void
build_run(struct scl_actor_job *job)
{
	struct bjob *j = (struct bjob *)((char *)job -
	    offsetof(struct bjob, build));

	j->err = scl_capsule_writer_append(j->owner->w, &j->batch,
	    SCL_RECORD_DATA, scl_buf_slice(&j->payload));
	if (j->err != SCL_OK)
		snprintf(j->msg, sizeof(j->msg), "%s", scl_err_last());
	scl_buf_dispose_secret(&j->payload); /* sealed now */
}

static void
build_done(struct scl_actor_job *job)
{
	struct bjob *j = (struct bjob *)((char *)job -
	    offsetof(struct bjob, build));

	/* In chain order (serial stream), so the ordered stream delivers
	 * in chain order too. */
	j->sign.run = sign_run;
	j->sign.done = sign_done;
	scl_actor_submit(j->owner->ordered, &j->sign);
}

enum scl_err
scl_batcher_new(struct scl_batcher **out, struct scl_actors *a,
    struct scl_capsule_writer *w, const struct scl_batcher_options *opt,
    scl_batcher_out_fn fn, void *arg)
{
	struct scl_batcher *b;
	enum scl_err e;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate batcher");
	b->pool = a;
	b->w = w;
	b->out = fn;
	b->arg = arg;
	if (opt)
		b->opt = *opt;
	if (b->opt.max_puts == 0)
		b->opt.max_puts = 256;
	if (b->opt.max_bytes == 0)
		b->opt.max_bytes = (size_t)64 << 10;
	if (b->opt.max_bytes > SCL_PAYLOAD_MAX)
		b->opt.max_bytes = SCL_PAYLOAD_MAX;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->room, NULL);
	if ((e = scl_capsule_writer_copy_key(w, &b->key)) != SCL_OK ||
	    (e = scl_actor_stream_new(a, &b->serial, true)) != SCL_OK ||
	    (e = scl_actor_stream_new(a, &b->ordered, false)) != SCL_OK) {
		scl_batcher_free(b);
		return e;
	}
	*out = b;
	return SCL_OK;
}

enum scl_err
scl_batcher_flush(struct scl_batcher *b)
{
	struct bjob *j = b->cur;
	bool inline_seal;

	if (j == NULL)
		return SCL_OK;
	b->cur = NULL;
	b->cur_puts = 0;
	pthread_mutex_lock(&b->lock);
	while (b->inflight >= MAX_INFLIGHT)
		pthread_cond_wait(&b->room, &b->lock);
	/* None in flight: no actor touches the writer now (a batch counts
	 * until it is delivered), and none can be overtaken. */
	inline_seal = b->inflight == 0 &&
	    j->payload.len <= b->opt.inline_max_bytes;
	b->inflight++;
	pthread_mutex_unlock(&b->lock);
	if (inline_seal) {
		build_run(&j->build);
		sign_run(&j->sign);
		sign_done(&j->sign);
		return SCL_OK;
	}
	j->build.run = build_run;
	j->build.done = build_done;
	scl_actor_submit(b->serial, &j->build);
	return SCL_OK;
}

enum scl_err
scl_batcher_put(struct scl_batcher *b, struct scl_slice put)
{
	uint8_t len[4];
	enum scl_err e;

	if (b->err != SCL_OK)
		return scl_err_set(b->err, "%s", b->msg);
	if (put.len + 4 > b->opt.max_bytes)
		return scl_err_set(SCL_ELIMIT,
		    "put of %zu bytes exceeds the %zu-byte batch", put.len,
		    b->opt.max_bytes);
	if (b->cur && (b->cur_puts == b->opt.max_puts ||
			  b->cur->payload.len + 4 + put.len > b->opt.max_bytes) &&
	    (e = scl_batcher_flush(b)) != SCL_OK)
		return e;
	if (b->cur == NULL) {
		if ((b->cur = calloc(1, sizeof(*b->cur))) == NULL)
			return scl_err_set(SCL_ENOMEM, "cannot allocate batch");
		b->cur->owner = b;
		scl_buf_init(&b->cur->payload);
		scl_capsule_batch_init(&b->cur->batch);
	}
	scl_le32_store(len, (uint32_t)put.len);
	if ((e = scl_buf_append(&b->cur->payload, len, 4)) != SCL_OK ||
	    (e = scl_buf_append(&b->cur->payload, put.ptr, put.len)) != SCL_OK)
		return e;
	b->cur_puts++;
	return SCL_OK;
}

enum scl_err
scl_batcher_finish(struct scl_batcher *b)
{
	enum scl_err e = scl_batcher_flush(b);

	scl_actor_stream_wait(b->serial);
	scl_actor_stream_wait(b->ordered);
	if (e == SCL_OK && b->err != SCL_OK)
		e = scl_err_set(b->err, "%s", b->msg);
	return e;
}

void
scl_batcher_free(struct scl_batcher *b)
{
	if (b == NULL)
		return;
	if (b->cur) {
		bjob_free(b->cur);
		b->cur = NULL;
	}
	scl_actor_stream_free(b->serial);
	scl_actor_stream_free(b->ordered);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->room);
	scl_sign_key_wipe(&b->key);
	free(b);
}

bool
scl_batch_next_put(struct scl_slice *payload, struct scl_slice *put,
    bool *bad)
{
	size_t n;

	*bad = false;
	if (payload->len == 0)
		return false;
	if (payload->len < 4) {
		*bad = true;
		return false;
	}
	n = scl_le32_load(payload->ptr);
	if (n > payload->len - 4) {
		*bad = true;
		return false;
	}
	*put = scl_slice_of(payload->ptr + 4, n);
	payload->ptr += 4 + n;
	payload->len -= 4 + n;
	return true;
}
