/*
 * committer.c - group commit: one thread turns whatever batches are queued
 * into one fsync'd LMDB transaction.
 *
 * While a commit's fsync runs, new submissions queue up; the next commit
 * takes them all.  Under load the fsync cost is thus shared by every batch
 * that arrived during the previous one; at low load a lone batch commits
 * at once.  Each job is checked whole before any of it is written, so a
 * job that does not continue its chains fails alone; a failure while
 * writing or committing (full map, I/O) fails every job in the
 * transaction, since none of them was stored.
 *
 * A second thread drops what the commits wrote from the page cache every
 * RELEASE_BYTES (store.c says why); it takes milliseconds, mostly waiting
 * for every CPU to drain its page lists, so it never runs on the commit
 * path.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define DEFAULT_QUEUE_BYTES ((size_t)64 << 20)
#define TXN_BYTES_MAX ((size_t)64 << 20)
#define RELEASE_BYTES ((size_t)8 << 20)

struct scl_store_committer {
	struct scl_store *store;
	pthread_t thread, releaser;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* queue became non-empty or stopping */
	pthread_cond_t room;	/* queue bytes dropped or jobs completed */
	pthread_cond_t release;	/* unreleased reached RELEASE_BYTES */
	size_t unreleased;	/* committed since the cache was last dropped */
	struct scl_store_job *head, *tail;
	size_t queued_bytes, max_bytes;
	bool stopping;
	struct scl_store_committer_stats stats;
};

static size_t
job_bytes(const struct scl_store_job *j)
{
	size_t n = 0;
	for (size_t i = 0; i < j->n_batches; i++)
		n += j->batches[i]->data.len + j->batches[i]->heartbeat.len;
	return n;
}

/*
 * Checks that every batch of a job would apply (each continues its chain
 * as stored so far in this transaction, or as an earlier batch of the
 * same job leaves it) before anything is written, so a job that fails
 * its checks leaves the transaction untouched.  LMDB's nested
 * transactions would give the same atomicity, but each one allocates a
 * page list of about 2 MiB: measured, they cut the commit rate of small
 * appends several-fold.
 */
static enum scl_err
job_check(struct scl_store *s, MDB_txn *txn, const struct scl_store_job *j)
{
	for (size_t i = 0; i < j->n_batches; i++) {
		const struct scl_capsule_batch *b = j->batches[i];
		struct scl_store_head head;
		uint64_t expect;
		size_t k;
		char ref[32];
		enum scl_err e;

		if (b->n == 0 || b->heartbeat.len == 0)
			return scl_err_set(SCL_EINVAL,
			    "a stored batch needs records and a heartbeat");
		for (k = i; k-- > 0;)
			if (memcmp(j->batches[k]->capsule, b->capsule,
				SCL_NAME_BYTES) == 0 &&
			    memcmp(j->batches[k]->writer, b->writer,
				SCL_WRITER_BYTES) == 0)
				break;
		if (k != (size_t)-1) {
			expect = j->batches[k]->first_seqno + j->batches[k]->n;
		} else {
			if ((e = scl_store__get_head(s, txn, b->capsule,
				 b->writer, &head)) != SCL_OK)
				return e;
			expect = head.seqno + 1;
		}
		if (b->first_seqno != expect)
			return scl_err_set(SCL_ECONFLICT,
			    "batch starts at record %s but the stored chain "
			    "ends at %llu",
			    scl_capsule_record_ref(ref, b->writer,
				b->first_seqno),
			    (unsigned long long)expect - 1);
	}
	return SCL_OK;
}

/* Records a job's own failure; its waiter sees it once done is set. */
static void
note_failure(struct scl_store_job *j, enum scl_err e)
{
	j->result = e;
	snprintf(j->message, sizeof(j->message), "%s", scl_err_last());
}

/* Commits @jobs (a detached list, @bytes of batches) in one transaction;
 * lock not held.  Jobs are private to this thread until `done` is set
 * under the lock. */
static void
commit_group(struct scl_store_committer *c, struct scl_store_job *jobs,
    size_t bytes)
{
	struct scl_store_job *callbacks = NULL;
	MDB_txn *txn = NULL;
	enum scl_err e = SCL_OK;
	int rc;

	if ((rc = mdb_txn_begin(c->store->env, NULL, 0, &txn)) != 0) {
		e = scl_store__lmdb_err(rc, "group commit");
		txn = NULL;
	}
	for (struct scl_store_job *j = jobs; j && e == SCL_OK; j = j->next) {
		enum scl_err je = job_check(c->store, txn, j);
		if (je != SCL_OK) {
			note_failure(j, je);	/* fails alone, wrote nothing */
			continue;
		}
		/* Checked: a failure now is the store's (full map, I/O) and
		 * fails the whole transaction. */
		for (size_t i = 0; i < j->n_batches && e == SCL_OK; i++)
			e = scl_store__apply(c->store, txn, j->batches[i]);
	}
	if (txn != NULL) {
		if (e != SCL_OK)
			mdb_txn_abort(txn);
		else if ((rc = mdb_txn_commit(txn)) != 0)
			e = scl_store__lmdb_err(rc, "group commit");
	}
	for (struct scl_store_job *j = jobs; j; j = j->next)
		if (e != SCL_OK)
			note_failure(j, e);
	/* Waiters see `done` under the lock, and may free their job at once,
	 * so each `next` is read before `done` is set.  Callback jobs are
	 * gathered and handed back after the lock is released; the committer
	 * never touches them again (their callee may free them). */
	pthread_mutex_lock(&c->lock);
	for (struct scl_store_job *j = jobs, *next; j; j = next) {
		next = j->next;
		c->stats.jobs++;
		c->stats.batches += j->n_batches;
		if (j->on_done) {
			j->next = callbacks;
			callbacks = j;
		} else {
			j->next = NULL;
			j->done = true;
		}
	}
	c->stats.commits++;
	if (e == SCL_OK && (c->unreleased += bytes) >= RELEASE_BYTES)
		pthread_cond_signal(&c->release);
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->lock);
	for (struct scl_store_job *j = callbacks, *next; j; j = next) {
		next = j->next;
		j->next = NULL;
		j->done = true;
		j->on_done(j, j->on_done_arg);
	}
}

static void *
committer_main(void *arg)
{
	struct scl_store_committer *c = arg;

	pthread_setname_np(pthread_self(), "scl-commit");
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct scl_store_job *group, *last;
		size_t bytes;

		while (c->head == NULL && !c->stopping)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->head == NULL)
			break;
		/* Detach a prefix of at most TXN_BYTES_MAX (and at least one
		 * job) so one transaction stays bounded. */
		group = last = c->head;
		bytes = job_bytes(last);
		while (last->next && bytes + job_bytes(last->next) <=
		    TXN_BYTES_MAX) {
			last = last->next;
			bytes += job_bytes(last);
		}
		c->head = last->next;
		if (c->head == NULL)
			c->tail = NULL;
		last->next = NULL;
		c->queued_bytes -= bytes;
		pthread_cond_broadcast(&c->room);
		pthread_mutex_unlock(&c->lock);
		commit_group(c, group, bytes);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
committer_destroy(struct scl_store_committer *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->room);
	pthread_cond_destroy(&c->release);
	free(c);
}

/* Tells both threads to stop and joins @t (the other is joined by the
 * caller if it was started). */
static void
stop_thread(struct scl_store_committer *c, pthread_t t)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_cond_broadcast(&c->release);
	pthread_mutex_unlock(&c->lock);
	pthread_join(t, NULL);
}

static void *
releaser_main(void *arg)
{
	struct scl_store_committer *c = arg;

	pthread_setname_np(pthread_self(), "scl-release");
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->unreleased < RELEASE_BYTES && !c->stopping)
			pthread_cond_wait(&c->release, &c->lock);
		if (c->stopping)
			break;
		c->unreleased = 0;
		pthread_mutex_unlock(&c->lock);
		scl_store__drop_cache(c->store);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

enum scl_err
scl_store_committer_new(struct scl_store_committer **out, struct scl_store *s,
    size_t max_queued_bytes)
{
	struct scl_store_committer *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate committer");
	c->store = s;
	c->max_bytes = max_queued_bytes ? max_queued_bytes
					: DEFAULT_QUEUE_BYTES;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->room, NULL);
	pthread_cond_init(&c->release, NULL);
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
		committer_destroy(c);
		return scl_err_set(SCL_ENOMEM, "cannot start committer thread");
	}
	if (pthread_create(&c->releaser, NULL, releaser_main, c) != 0) {
		stop_thread(c, c->thread);
		committer_destroy(c);
		return scl_err_set(SCL_ENOMEM, "cannot start releaser thread");
	}
	*out = c;
	return SCL_OK;
}

void
scl_store_committer_free(struct scl_store_committer *c)
{
	if (c == NULL)
		return;
	stop_thread(c, c->thread);
	pthread_join(c->releaser, NULL);
	committer_destroy(c);
}

enum scl_err
scl_store_committer_submit(struct scl_store_committer *c,
    struct scl_store_job *job)
{
	size_t bytes;

	if (job->n_batches == 0)
		return scl_err_set(SCL_EINVAL, "empty store job");
	bytes = job_bytes(job);
	job->done = false;
	job->result = SCL_OK;	/* stays OK unless the committer notes one */
	job->message[0] = '\0';
	job->next = NULL;
	pthread_mutex_lock(&c->lock);
	/* A job larger than the whole budget still goes in, alone. */
	while (c->queued_bytes > 0 && c->queued_bytes + bytes > c->max_bytes &&
	    !c->stopping)
		pthread_cond_wait(&c->room, &c->lock);
	if (c->stopping) {
		pthread_mutex_unlock(&c->lock);
		return scl_err_set(SCL_ECLOSED, "committer is stopping");
	}
	if (c->tail)
		c->tail->next = job;
	else
		c->head = job;
	c->tail = job;
	c->queued_bytes += bytes;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	return SCL_OK;
}

enum scl_err
scl_store_committer_wait(struct scl_store_committer *c,
    struct scl_store_job *job)
{
	enum scl_err e;

	pthread_mutex_lock(&c->lock);
	while (!job->done)
		pthread_cond_wait(&c->room, &c->lock);
	e = job->result;
	pthread_mutex_unlock(&c->lock);
	if (e != SCL_OK)
		scl_err_set(e, "%s", job->message);
	return e;
}

void
scl_store_committer_stats(struct scl_store_committer *c,
    struct scl_store_committer_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}
