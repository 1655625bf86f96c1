/*
 * appender.c - a writer feeding the group committer.
 *
 * A ring of slots, each a job with its batches.  The caller's thread seals
 * into the current slot while the committer stores earlier slots; a slot
 * is reused only after its job is done, which bounds memory to
 * SLOTS jobs and gives back-pressure when storage is the bottleneck.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scl/clock.h"
#include "store_int.h"

#define SLOTS 64

struct slot {
	struct scl_store_job job;
	struct scl_capsule_batch *batches;	/* n used, cap allocated */
	const struct scl_capsule_batch **ptrs;
	size_t n, cap;
	uint64_t records;
	bool submitted;
};

struct scl_store_appender {
	struct scl_store_committer *committer;
	struct scl_capsule_writer *writer;	/* borrowed */
	size_t batch_records;
	struct slot slots[SLOTS];
	size_t cur;
	enum scl_err failed;
	char message[256];
	struct scl_store_appender_stats stats;
};

enum scl_err
scl_store_appender_new(struct scl_store_appender **out,
    struct scl_store_committer *c, struct scl_capsule_writer *w,
    size_t batch_records)
{
	struct scl_store_appender *a;

	*out = NULL;
	if (batch_records == 0)
		return scl_err_set(SCL_EINVAL, "batch size must be at least 1");
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate appender");
	a->committer = c;
	a->writer = w;
	a->batch_records = batch_records;
	a->stats.first_seqno = scl_capsule_writer_head(w)->seqno + 1;
	*out = a;
	return SCL_OK;
}

void
scl_store_appender_free(struct scl_store_appender *a)
{
	if (a == NULL)
		return;
	/* Jobs in flight borrow the batches freed below: wait for them.
	 * What was added but never submitted is dropped, unstored. */
	for (size_t i = 0; i < SLOTS; i++)
		if (a->slots[i].submitted)
			(void)scl_store_committer_wait(a->committer,
			    &a->slots[i].job);
	for (size_t i = 0; i < SLOTS; i++) {
		for (size_t j = 0; j < a->slots[i].cap; j++)
			scl_capsule_batch_dispose(&a->slots[i].batches[j]);
		free(a->slots[i].batches);
		free(a->slots[i].ptrs);
	}
	free(a);
}

static enum scl_err
fail(struct scl_store_appender *a, enum scl_err e)
{
	if (a->failed == SCL_OK) {
		a->failed = e;
		snprintf(a->message, sizeof(a->message), "%s", scl_err_last());
	}
	return scl_err_set(a->failed, "%s", a->message);
}

/* Waits for slot @s's job if it is in flight, and accounts for it. */
static enum scl_err
slot_drain(struct scl_store_appender *a, struct slot *s)
{
	enum scl_err e;

	if (!s->submitted)
		return SCL_OK;
	e = scl_store_committer_wait(a->committer, &s->job);
	s->submitted = false;
	if (e != SCL_OK)
		return fail(a, e);
	a->stats.records_stored += s->records;
	a->stats.heartbeats_stored += s->n;
	s->n = 0;
	s->records = 0;
	return SCL_OK;
}

static enum scl_err
slot_open_batch(struct slot *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		struct scl_capsule_batch *b = realloc(s->batches,
		    cap * sizeof(*b));
		const struct scl_capsule_batch **p;
		if (b == NULL)
			return scl_err_set(SCL_ENOMEM, "cannot grow job");
		s->batches = b;
		if ((p = realloc(s->ptrs, cap * sizeof(*p))) == NULL)
			return scl_err_set(SCL_ENOMEM, "cannot grow job");
		s->ptrs = p;
		for (size_t i = s->cap; i < cap; i++)
			scl_capsule_batch_init(&s->batches[i]);
		s->cap = cap;
	}
	scl_capsule_batch_clear(&s->batches[s->n]);
	s->n++;
	return SCL_OK;
}

enum scl_err
scl_store_appender_add(struct scl_store_appender *a, struct scl_slice payload)
{
	struct slot *s = &a->slots[a->cur];
	struct scl_capsule_batch *b;
	enum scl_err e;

	if (a->failed != SCL_OK)
		return scl_err_set(a->failed, "%s", a->message);
	if ((e = slot_drain(a, s)) != SCL_OK)
		return e;
	b = s->n ? &s->batches[s->n - 1] : NULL;
	if (b == NULL || b->n == a->batch_records) {
		if (b && (e = scl_capsule_writer_seal_batch(a->writer, b,
			      scl_clock_wall_us())) != SCL_OK)
			return fail(a, e);
		if ((e = slot_open_batch(s)) != SCL_OK)
			return fail(a, e);
		b = &s->batches[s->n - 1];
	}
	if ((e = scl_capsule_writer_append(a->writer, b, SCL_RECORD_DATA,
		 payload)) != SCL_OK)
		return fail(a, e);
	s->records++;
	return SCL_OK;
}

enum scl_err
scl_store_appender_submit(struct scl_store_appender *a)
{
	struct slot *s = &a->slots[a->cur];
	enum scl_err e;

	if (a->failed != SCL_OK)
		return scl_err_set(a->failed, "%s", a->message);
	if (s->submitted || s->n == 0)
		return SCL_OK;
	if ((e = scl_capsule_writer_seal_batch(a->writer,
		 &s->batches[s->n - 1], scl_clock_wall_us())) != SCL_OK)
		return fail(a, e);
	for (size_t i = 0; i < s->n; i++)
		s->ptrs[i] = &s->batches[i];
	memset(&s->job, 0, sizeof(s->job));
	s->job.batches = s->ptrs;
	s->job.n_batches = s->n;
	if ((e = scl_store_committer_submit(a->committer, &s->job)) != SCL_OK)
		return fail(a, e);
	s->submitted = true;
	a->cur = (a->cur + 1) % SLOTS;
	return SCL_OK;
}

enum scl_err
scl_store_appender_finish(struct scl_store_appender *a)
{
	enum scl_err e = scl_store_appender_submit(a), e2;

	/* Drain in submission order so the first failure is reported. */
	for (size_t i = 1; i <= SLOTS; i++) {
		e2 = slot_drain(a, &a->slots[(a->cur + i) % SLOTS]);
		if (e == SCL_OK)
			e = e2;
	}
	if (a->failed != SCL_OK)
		return scl_err_set(a->failed, "%s", a->message);
	return e;
}

void
scl_store_appender_stats(const struct scl_store_appender *a,
    struct scl_store_appender_stats *out)
{
	*out = a->stats;
}
