/*
 * map.c - the replica's ordered map: a skip list keyed bytewise, holding
 * each key's newest version (value or tombstone).
 *
 * A skip list rather than a hash table because scans must run in key
 * order, and rather than a balanced tree because it is short, needs no
 * rebalancing and its expected O(log n) is what a memtable wants
 * (LevelDB's and RocksDB's memtables are skip lists for the same
 * reasons).  Heights come from a per-map xorshift generator seeded by the
 * caller: no global state, reproducible in tests.  Point lookups go
 * through a hash table of the same nodes instead of down the list: with
 * 100k keys the walk's cache misses made a get three times slower.
 */
#include <stdlib.h>
#include <string.h>

#include "kv_int.h"
#include "scl/crypto.h"

int
scl_kv_version_cmp(const struct scl_kv_version *a,
    const struct scl_kv_version *b)
{
	int c;

	if (a->lamport != b->lamport)
		return a->lamport < b->lamport ? -1 : 1;
	c = memcmp(a->writer, b->writer, SCL_WRITER_BYTES);
	return (c > 0) - (c < 0);
}

int
kv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* Values are stored with their node, in room rounded up to this. */
#define INLINE_ROUND 16

static uint8_t *
node_inline(struct kv_node *n)
{
	return (uint8_t *)&n->next[n->height] + n->klen;
}

static struct kv_node *
node_new(uint8_t height, struct scl_slice key, size_t value_len)
{
	size_t icap = (value_len + INLINE_ROUND - 1) / INLINE_ROUND *
	    INLINE_ROUND;
	struct kv_node *n;

	if (icap > UINT32_MAX - INLINE_ROUND)
		icap = 0; /* a value this big gets its own allocation */
	n = calloc(1, sizeof(*n) + height * sizeof(struct kv_node *) +
	    key.len + icap);
	if (n == NULL)
		return NULL;
	n->height = height;
	n->klen = (uint32_t)key.len;
	n->icap = (uint32_t)icap;
	if (key.len)
		memcpy((uint8_t *)&n->next[height], key.ptr, key.len);
	n->val = node_inline(n);
	n->vcap = n->icap;
	return n;
}

/* Frees @n, wiping its value wherever it is. */
static void
node_free(struct kv_node *n)
{
	if (n->val != node_inline(n)) {
		scl_wipe(n->val, n->vcap);
		free(n->val);
	}
	scl_wipe(node_inline(n), n->icap);
	free(n);
}

enum scl_err
kv_map_init(struct kv_map *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	m->height = 1;
	scl_random(m->hash_key, sizeof(m->hash_key));
	m->n_slots = 1024;
	if ((m->slots = calloc(m->n_slots, sizeof(*m->slots))) == NULL ||
	    (m->head = node_new(KV_MAP_LEVELS, scl_slice_of(NULL, 0), 0)) ==
		NULL) {
		free(m->slots);
		return scl_err_set(SCL_ENOMEM, "cannot allocate the map");
	}
	return SCL_OK;
}

uint64_t
kv_map_hash(const struct kv_map *m, struct scl_slice key)
{
	return scl_shorthash(m->hash_key, key.ptr, key.len);
}

/* The slot of @key (whose hash is @hash): its node, or the empty slot
 * where it would go. */
static struct kv_node **
slot_of(const struct kv_map *m, uint64_t hash, struct scl_slice key)
{
	size_t mask = m->n_slots - 1;
	size_t i = (size_t)hash & mask;

	while (m->slots[i] && kv_key_cmp(kv_node_key(m->slots[i]),
				  m->slots[i]->klen, key.ptr, key.len) != 0)
		i = (i + 1) & mask;
	return &m->slots[i];
}

void
kv_map_prefetch(const struct kv_map *m, uint64_t hash, int stage)
{
	struct kv_node *const *slot = &m->slots[(size_t)hash &
	    (m->n_slots - 1)];

	if (stage == 0) {
		__builtin_prefetch(slot);
	} else if (*slot) {
		/* the header and key, and the value's first line after it */
		__builtin_prefetch(*slot);
		__builtin_prefetch((const char *)*slot + 64);
		__builtin_prefetch((const char *)*slot + 128);
	}
}

/* Doubles the table (nodes never leave it: deletes are tombstones). */
static enum scl_err
grow_slots(struct kv_map *m)
{
	struct kv_node **old = m->slots;
	size_t n_old = m->n_slots;

	if ((m->slots = calloc(n_old * 2, sizeof(*m->slots))) == NULL) {
		m->slots = old;
		return scl_err_set(SCL_ENOMEM, "cannot grow the map's index");
	}
	m->n_slots = n_old * 2;
	for (size_t i = 0; i < n_old; i++) {
		struct scl_slice key;
		if (old[i] == NULL)
			continue;
		key = scl_slice_of(kv_node_key(old[i]), old[i]->klen);
		*slot_of(m, kv_map_hash(m, key), key) = old[i];
	}
	free(old);
	return SCL_OK;
}

void
kv_map_dispose(struct kv_map *m)
{
	struct kv_node *n = m->head, *next;

	while (n) {
		next = n->next[0];
		node_free(n);
		n = next;
	}
	free(m->slots);
	scl_wipe(m->hash_key, sizeof(m->hash_key));
	memset(m, 0, sizeof(*m));
}

/* Geometric heights with p = 1/4, as in LevelDB. */
static uint8_t
random_height(struct kv_map *m)
{
	uint8_t h = 1;

	for (;;) {
		m->rng ^= m->rng << 13;
		m->rng ^= m->rng >> 7;
		m->rng ^= m->rng << 17;
		if (h == KV_MAP_LEVELS || (m->rng & 3) != 0)
			return h;
		h++;
	}
}

/* Fills prev[] with, per level, the last node whose key is < @key; returns
 * the node at level 0 after it (the first >= key). */
static struct kv_node *
find_ge(const struct kv_map *m, struct scl_slice key,
    struct kv_node **prev)
{
	struct kv_node *x = m->head;

	for (int lvl = m->height - 1; lvl >= 0; lvl--) {
		struct kv_node *n;
		while ((n = x->next[lvl]) != NULL &&
		    kv_key_cmp(kv_node_key(n), n->klen, key.ptr, key.len) < 0)
			x = n;
		if (prev)
			prev[lvl] = x;
	}
	return x->next[0];
}

const struct kv_node *
kv_map_find(const struct kv_map *m, struct scl_slice key)
{
	return *slot_of(m, kv_map_hash(m, key), key);
}

const struct kv_node *
kv_map_seek(const struct kv_map *m, struct scl_slice key)
{
	return find_ge(m, key, NULL);
}

static enum scl_err
set_value(struct kv_map *m, struct kv_node *n, struct scl_slice value,
    bool tomb)
{
	if (tomb)
		value = scl_slice_of(NULL, 0);
	if (value.len > n->vcap) {
		uint8_t *v = malloc(value.len);
		if (v == NULL)
			return scl_err_set(SCL_ENOMEM, "cannot store a value of "
			    "%zu bytes", value.len);
		if (n->val != node_inline(n)) {
			m->bytes -= n->vcap;
			scl_wipe(n->val, n->vcap);
			free(n->val);
		} else {
			scl_wipe(n->val, n->icap);
		}
		n->val = v;
		m->bytes += value.len;
		n->vcap = (uint32_t)value.len;
	}
	if (value.len)
		memcpy(n->val, value.ptr, value.len);
	n->vlen = (uint32_t)value.len;
	if (tomb != n->tomb) {
		if (tomb)
			m->tombstones++;
		else
			m->tombstones--;
	}
	n->tomb = tomb;
	return SCL_OK;
}

enum scl_err
kv_map_apply(struct kv_map *m, struct scl_slice key, struct scl_slice value,
    bool tomb, const struct scl_kv_version *ver, bool *applied)
{
	return kv_map_apply_hashed(m, kv_map_hash(m, key), key, value, tomb,
	    ver, applied);
}

enum scl_err
kv_map_apply_hashed(struct kv_map *m, uint64_t hash, struct scl_slice key,
    struct scl_slice value, bool tomb, const struct scl_kv_version *ver,
    bool *applied)
{
	struct kv_node *prev[KV_MAP_LEVELS], *n, **slot;
	enum scl_err e;
	uint8_t h;

	*applied = false;
	if ((n = *slot_of(m, hash, key)) != NULL) {
		if (scl_kv_version_cmp(ver, &n->ver) <= 0)
			return SCL_OK; /* older or the same: superseded */
		if ((e = set_value(m, n, value, tomb)) != SCL_OK)
			return e;
		n->ver = *ver;
		*applied = true;
		return SCL_OK;
	}
	if ((m->keys + 1) * 2 > m->n_slots && (e = grow_slots(m)) != SCL_OK)
		return e;
	(void)find_ge(m, key, prev);
	h = random_height(m);
	if ((n = node_new(h, key, tomb ? 0 : value.len)) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot store a key");
	m->bytes += n->icap;
	if ((e = set_value(m, n, value, tomb)) != SCL_OK) {
		m->bytes -= n->icap;
		node_free(n);
		return e;
	}
	n->ver = *ver;
	for (uint8_t lvl = m->height; lvl < h; lvl++)
		prev[lvl] = m->head;
	if (h > m->height)
		m->height = h;
	for (uint8_t lvl = 0; lvl < h; lvl++) {
		n->next[lvl] = prev[lvl]->next[lvl];
		prev[lvl]->next[lvl] = n;
	}
	slot = slot_of(m, hash, key);
	*slot = n;
	m->keys++;
	m->bytes += key.len;
	*applied = true;
	return SCL_OK;
}
