/*
 * ring.c - the SPSC shared-memory ring (see ring.h for the contract).
 *
 * Shared layout (docs/FORMAT.md "Rings"), one 64-byte line per field
 * group so producer and consumer never write the same cache line:
 *   line 0: head (u64, bytes ever published), data_seq (u32 futex word
 *           the consumer sleeps on), consumer_waiting (u32)
 *   line 1: tail (u64, bytes ever consumed), space_seq (u32 futex word the
 *           producer sleeps on), producer_waiting (u32)
 *   line 2: magic, version, capacity (written once by format), closed
 *   then:   capacity data bytes
 * A message is a u32 length, then the bytes, padded to 8; it may wrap
 * around the end of the buffer.  Counters only grow (mod 2^64).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "scl/clock.h"
#include "scl/ring.h"

#define RING_MAGIC 0x53434c52u /* "SCLR" */
#define RING_VERSION 1
#define LINE 64
/* Pauses between two polls of the other side's counter while spinning.
 * Measured on the 2-vCPU AMD EPYC guest (bench boundary): 1 pause per
 * poll made the two cores fight over the counter's cache line (64-byte
 * one-way 4.9M/s); 16 or more made the spinner slow to notice (RTT above
 * 1 us); 4 gave 0.27 us round trips and 74-110M messages/s. */
#define PAUSES 4
/*
 * Spinning pays only when the other side answers within the spin; with
 * more runnable threads than CPUs it seldom does, and every spin that
 * ends in a sleep is CPU taken from the side being waited for (the
 * rings' spinning was 6% of the machine during a loaded KVS benchmark).
 * So each end keeps a spin budget: halved after a wait the spin did not
 * end, doubled (up to spin_ns) after one it did, nothing below
 * SPIN_MIN_NS; at nothing, every SPIN_PROBE_EVERY-th wait spins in full
 * to notice when spinning pays again.
 */
#define SPIN_MIN_NS 500
#define SPIN_PROBE_EVERY 64

struct shared {
	_Alignas(LINE) _Atomic uint64_t head;
	_Atomic uint32_t data_seq;
	_Atomic uint32_t consumer_waiting;
	_Alignas(LINE) _Atomic uint64_t tail;
	_Atomic uint32_t space_seq;
	_Atomic uint32_t producer_waiting;
	_Alignas(LINE) uint32_t magic;
	uint32_t version;
	uint64_t capacity;
	_Atomic uint32_t closed;
	_Alignas(LINE) uint8_t data[];
};

_Static_assert(sizeof(struct shared) == 3 * LINE, "ring header layout");

struct scl_ring {
	struct shared *sh;
	uint64_t cap, mask;	/* our own copy: never re-read from sh */
	/* The other side's counter as last read: the producer rereads tail
	 * only when the ring looks full, the consumer rereads head only when
	 * it looks empty, so in steady state neither touches the other's
	 * cache line (the usual SPSC optimization). */
	uint64_t seen;
	enum scl_ring_role role;
	uint64_t spin_ns;	/* the most a wait spins */
	uint64_t spin_budget_ns;	/* what the next wait spins (above) */
	unsigned quiet_waits;	/* waits with no budget, for the probe */
	struct scl_ring_stats st;
};

static long
futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *t)
{
	/* Not FUTEX_PRIVATE: the word may be shared between processes. */
	return syscall(SYS_futex, (uint32_t *)addr, op, val, t, NULL, 0);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

size_t
scl_ring_memory_size(size_t capacity)
{
	return sizeof(struct shared) + capacity;
}

static bool
capacity_ok(size_t c)
{
	return c >= SCL_RING_MIN_CAPACITY && c <= SCL_RING_MAX_CAPACITY &&
	    (c & (c - 1)) == 0;
}

enum scl_err
scl_ring_format(void *mem, size_t capacity)
{
	struct shared *sh = mem;

	if (!capacity_ok(capacity))
		return scl_err_set(SCL_EINVAL,
		    "ring capacity %zu is not a power of two in [%d, %zu]",
		    capacity, SCL_RING_MIN_CAPACITY, SCL_RING_MAX_CAPACITY);
	if ((uintptr_t)mem % LINE != 0)
		return scl_err_set(SCL_EINVAL, "ring memory is not aligned");
	memset(sh, 0, sizeof(*sh));
	atomic_init(&sh->head, 0);
	atomic_init(&sh->tail, 0);
	atomic_init(&sh->data_seq, 0);
	atomic_init(&sh->space_seq, 0);
	atomic_init(&sh->consumer_waiting, 0);
	atomic_init(&sh->producer_waiting, 0);
	atomic_init(&sh->closed, 0);
	sh->magic = RING_MAGIC;
	sh->version = RING_VERSION;
	sh->capacity = capacity;
	return SCL_OK;
}

enum scl_err
scl_ring_attach(struct scl_ring **out, void *mem, size_t capacity,
    enum scl_ring_role role, const struct scl_ring_options *opt)
{
	struct shared *sh = mem;
	struct scl_ring *r;

	*out = NULL;
	if (!capacity_ok(capacity))
		return scl_err_set(SCL_EINVAL, "bad ring capacity %zu", capacity);
	if (sh->magic != RING_MAGIC || sh->version != RING_VERSION ||
	    sh->capacity != capacity)
		return scl_err_set(SCL_EFORMAT,
		    "memory is not a version %d ring of %zu bytes",
		    RING_VERSION, capacity);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate ring handle");
	r->sh = sh;
	r->cap = capacity;
	r->mask = capacity - 1;
	r->role = role;
	r->spin_ns = opt && opt->no_spin ? 0
	    : (uint64_t)(opt && opt->spin_us ? opt->spin_us : 50) * 1000u;
	r->spin_budget_ns = r->spin_ns;
	*out = r;
	return SCL_OK;
}

void
scl_ring_detach(struct scl_ring *r)
{
	free(r);
}

size_t
scl_ring_max_message(const struct scl_ring *r)
{
	return (size_t)(r->cap / 2 - 8);
}

static uint64_t
padded(size_t len)
{
	return (4 + (uint64_t)len + 7) & ~(uint64_t)7;
}

/* Copies @n bytes in/out of the circular buffer at position @pos. */
static void
copy_in(struct scl_ring *r, uint64_t pos, const void *src, size_t n)
{
	size_t off = (size_t)(pos & r->mask), first = r->cap - off;

	if (first >= n) {
		memcpy(r->sh->data + off, src, n);
	} else {
		memcpy(r->sh->data + off, src, first);
		memcpy(r->sh->data, (const uint8_t *)src + first, n - first);
	}
}

static void
copy_out(struct scl_ring *r, uint64_t pos, void *dst, size_t n)
{
	size_t off = (size_t)(pos & r->mask), first = r->cap - off;

	if (first >= n) {
		memcpy(dst, r->sh->data + off, n);
	} else {
		memcpy(dst, r->sh->data + off, first);
		memcpy((uint8_t *)dst + first, r->sh->data, n - first);
	}
}

/* Wakes the other side if it sleeps.  The seq_cst fence pairs with the
 * sleeper's seq_cst store of its waiting flag (Dekker): either it sees our
 * counter move and does not sleep, or we see its flag and wake it. */
static void
wake(struct scl_ring *r, _Atomic uint32_t *waiting, _Atomic uint32_t *seq)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(waiting, memory_order_relaxed)) {
		atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
		futex(seq, FUTEX_WAKE, 1, NULL);
		r->st.wakes++;
	}
}

/* How long this wait may spin: the budget, or a full spin now and then
 * when the budget is spent (SPIN_PROBE_EVERY). */
static uint64_t
spin_for(struct scl_ring *r)
{
	if (r->spin_budget_ns == 0 && r->spin_ns &&
	    ++r->quiet_waits % SPIN_PROBE_EVERY == 0)
		return r->spin_ns;
	return r->spin_budget_ns;
}

/* Adjusts the budget after a wait that spun @spun ns: whether the spin
 * ended it (@slept false) or a sleep did. */
static void
spin_learn(struct scl_ring *r, uint64_t spun, bool slept)
{
	uint64_t b;

	if (spun == 0)
		return;
	if (slept) {
		b = spun / 2;
		r->spin_budget_ns = b < SPIN_MIN_NS ? 0 : b;
	} else {
		b = spun * 2 < SPIN_MIN_NS ? SPIN_MIN_NS : spun * 2;
		r->spin_budget_ns = b < r->spin_ns ? b : r->spin_ns;
		r->st.spins_won++;
	}
}

/*
 * Waits until @ready(r) holds, the ring closes, or @deadline_ns passes
 * (0: no deadline).  Spins for the spin budget first, then sleeps on
 * @seq with @waiting raised.  Returns SCL_OK when ready.
 */
static enum scl_err
wait_for(struct scl_ring *r, bool (*ready)(struct scl_ring *, uint64_t),
    uint64_t arg, _Atomic uint32_t *waiting, _Atomic uint32_t *seq,
    uint64_t deadline_ns)
{
	uint64_t start = scl_clock_mono_ns(), now = start, spin = 0;
	unsigned spins = 0;
	bool slept = false;

	if (!ready(r, arg))
		spin = spin_for(r);
	while (!ready(r, arg)) {
		/* Poll readiness every PAUSES pauses (a PAUSE costs ~65
		 * cycles on AMD Zen); read the clock and the closed flag only
		 * every 128 polls. */
		if (++spins % 128 != 0 && now - start < spin) {
			for (int i = 0; i < PAUSES; i++)
				cpu_relax();
			continue;
		}
		if (atomic_load_explicit(&r->sh->closed, memory_order_acquire))
			return SCL_ECLOSED;
		now = scl_clock_mono_ns();
		if (deadline_ns && now >= deadline_ns)
			return SCL_ETIMEOUT;
		if (now - start < spin)
			continue;
		{
			uint32_t val = atomic_load_explicit(seq,
			    memory_order_seq_cst);
			struct timespec ts, *tp = NULL;
			atomic_store_explicit(waiting, 1, memory_order_seq_cst);
			if (!ready(r, arg) && !atomic_load(&r->sh->closed)) {
				if (deadline_ns) {
					uint64_t left = deadline_ns - now;
					ts.tv_sec = (time_t)(left / 1000000000u);
					ts.tv_nsec = (long)(left % 1000000000u);
					tp = &ts;
				}
				r->st.sleeps++;
				slept = true;
				futex(seq, FUTEX_WAIT, val, tp);
			}
			atomic_store_explicit(waiting, 0, memory_order_seq_cst);
		}
	}
	spin_learn(r, spin, slept);
	return SCL_OK;
}

/* Producer: is there room for @need more bytes? */
static bool
has_room(struct scl_ring *r, uint64_t need)
{
	uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_relaxed);

	if (head - r->seen <= r->cap && r->cap - (head - r->seen) >= need)
		return true;
	r->seen = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	/* A hostile consumer may write any tail: treat an impossible one as
	 * "room" so the caller's own check reports the corruption. */
	if (head - r->seen > r->cap)
		return true;
	return r->cap - (head - r->seen) >= need;
}

static enum scl_err
send_common(struct scl_ring *r, const void *msg, size_t len, bool wait)
{
	uint64_t head, tail, need = padded(len);
	uint32_t hdr = (uint32_t)len;
	enum scl_err e;

	if (r->role != SCL_RING_PRODUCER)
		return scl_err_set(SCL_EINVAL, "send on the consumer side");
	if (len > scl_ring_max_message(r))
		return scl_err_set(SCL_ELIMIT,
		    "message of %zu bytes exceeds the ring's %zu", len,
		    scl_ring_max_message(r));
	if (atomic_load_explicit(&r->sh->closed, memory_order_acquire))
		return scl_err_set(SCL_ECLOSED, "ring closed");
	if (!has_room(r, need)) {
		if (!wait)
			return SCL_EFULL;
		r->st.full_waits++;
		e = wait_for(r, has_room, need, &r->sh->producer_waiting,
		    &r->sh->space_seq, 0);
		if (e != SCL_OK)
			return scl_err_set(e, "ring closed while full");
	}
	head = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
	tail = r->seen; /* fresh: has_room reread it unless room was known */
	if (head - tail > r->cap || r->cap - (head - tail) < need)
		return scl_err_set(SCL_EFORMAT,
		    "ring corrupted: consumer index %llu against %llu",
		    (unsigned long long)tail, (unsigned long long)head);
	copy_in(r, head, &hdr, 4);
	copy_in(r, head + 4, msg, len);
	atomic_store_explicit(&r->sh->head, head + need, memory_order_release);
	r->st.messages++;
	r->st.bytes += len;
	wake(r, &r->sh->consumer_waiting, &r->sh->data_seq);
	return SCL_OK;
}

enum scl_err
scl_ring_send(struct scl_ring *r, const void *msg, size_t len)
{
	return send_common(r, msg, len, true);
}

enum scl_err
scl_ring_try_send(struct scl_ring *r, const void *msg, size_t len)
{
	return send_common(r, msg, len, false);
}

static bool
has_data(struct scl_ring *r, uint64_t unused)
{
	uint64_t tail = atomic_load_explicit(&r->sh->tail, memory_order_relaxed);

	(void)unused;
	if (r->seen != tail)
		return true;
	r->seen = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	return r->seen != tail;
}

enum scl_err
scl_ring_recv(struct scl_ring *r, void *buf, size_t cap, size_t *len,
    int timeout_ms)
{
	uint64_t head, tail, deadline = 0;
	uint32_t hdr;
	enum scl_err e;

	*len = 0;
	if (r->role != SCL_RING_CONSUMER)
		return scl_err_set(SCL_EINVAL, "recv on the producer side");
	if (!has_data(r, 0)) {
		if (timeout_ms == 0)
			return SCL_ETIMEOUT;
		if (timeout_ms > 0)
			deadline = scl_clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
		e = wait_for(r, has_data, 0, &r->sh->consumer_waiting,
		    &r->sh->data_seq, deadline);
		if (e == SCL_ECLOSED && has_data(r, 0))
			e = SCL_OK; /* drain what was sent before the close */
		/* A poll (timeout 0, above) leaves the message alone: it
		 * is the hot path and "nothing yet" is no error there. */
		if (e == SCL_ETIMEOUT)
			return scl_err_set(e, "nothing arrived on the ring "
			    "within %d ms", timeout_ms);
		if (e != SCL_OK)
			return scl_err_set(e, "ring closed");
	}
	head = r->seen; /* acquired by has_data */
	tail = atomic_load_explicit(&r->sh->tail, memory_order_relaxed);
	/* Everything below is checked against our own geometry: a hostile
	 * producer controls head and the bytes, not our bounds. */
	if (head - tail > r->cap || head - tail < 4)
		return scl_err_set(SCL_EFORMAT,
		    "ring corrupted: producer index %llu against %llu",
		    (unsigned long long)head, (unsigned long long)tail);
	copy_out(r, tail, &hdr, 4);
	if (hdr > scl_ring_max_message(r) || padded(hdr) > head - tail)
		return scl_err_set(SCL_EFORMAT,
		    "ring corrupted: message length %u with %llu bytes "
		    "published", hdr, (unsigned long long)(head - tail));
	if (hdr > cap)
		return scl_err_set(SCL_ELIMIT,
		    "message of %u bytes does not fit a %zu-byte buffer", hdr,
		    cap);
	copy_out(r, tail + 4, buf, hdr);
	atomic_store_explicit(&r->sh->tail, tail + padded(hdr),
	    memory_order_release);
	*len = hdr;
	r->st.messages++;
	r->st.bytes += hdr;
	wake(r, &r->sh->producer_waiting, &r->sh->space_seq);
	return SCL_OK;
}

void
scl_ring_close(struct scl_ring *r)
{
	atomic_store_explicit(&r->sh->closed, 1, memory_order_seq_cst);
	atomic_fetch_add(&r->sh->data_seq, 1);
	atomic_fetch_add(&r->sh->space_seq, 1);
	futex(&r->sh->data_seq, FUTEX_WAKE, INT_MAX, NULL);
	futex(&r->sh->space_seq, FUTEX_WAKE, INT_MAX, NULL);
}

void
scl_ring_stats(const struct scl_ring *r, struct scl_ring_stats *out)
{
	*out = r->st;
}
