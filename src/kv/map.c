/*
 * map.c - the replica's ordered map: a skip list keyed bytewise, holding
 * each key's newest version (value or tombstone).
 *
 * A skip list rather than a hash table because scans must run in key
 * order, and rather than a balanced tree because it is short, needs no
 * rebalancing and its expected O(log n) is what a memtable wants
 * (LevelDB's and RocksDB's memtables are skip lists for the same
 * reasons).  Heights come from a per-map xorshift generator seeded by the
 * caller: no global state, reproducible in tests.
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

static struct kv_node *
node_new(uint8_t height, struct scl_slice key)
{
	struct kv_node *n = calloc(1, sizeof(*n) +
	    height * sizeof(struct kv_node *) + key.len);

	if (n == NULL)
		return NULL;
	n->height = height;
	n->klen = (uint32_t)key.len;
	if (key.len)
		memcpy((uint8_t *)&n->next[height], key.ptr, key.len);
	return n;
}

enum scl_err
kv_map_init(struct kv_map *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	m->height = 1;
	if ((m->head = node_new(KV_MAP_LEVELS, scl_slice_of(NULL, 0))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate the map");
	return SCL_OK;
}

void
kv_map_dispose(struct kv_map *m)
{
	struct kv_node *n = m->head, *next;

	while (n) {
		next = n->next[0];
		if (n->val) {
			scl_wipe(n->val, n->vcap);
			free(n->val);
		}
		free(n);
		n = next;
	}
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
	const struct kv_node *n = find_ge(m, key, NULL);

	if (n && kv_key_cmp(kv_node_key(n), n->klen, key.ptr, key.len) == 0)
		return n;
	return NULL;
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
		if (n->val) {
			scl_wipe(n->val, n->vcap);
			free(n->val);
		}
		n->val = v;
		m->bytes += value.len - n->vcap;
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
	struct kv_node *prev[KV_MAP_LEVELS], *n;
	enum scl_err e;
	uint8_t h;

	*applied = false;
	n = find_ge(m, key, prev);
	if (n && kv_key_cmp(kv_node_key(n), n->klen, key.ptr, key.len) == 0) {
		if (scl_kv_version_cmp(ver, &n->ver) <= 0)
			return SCL_OK; /* older or the same: superseded */
		if ((e = set_value(m, n, value, tomb)) != SCL_OK)
			return e;
		n->ver = *ver;
		*applied = true;
		return SCL_OK;
	}
	h = random_height(m);
	if ((n = node_new(h, key)) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot store a key");
	n->tomb = false;
	if ((e = set_value(m, n, value, tomb)) != SCL_OK) {
		free(n);
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
	m->keys++;
	m->bytes += key.len;
	*applied = true;
	return SCL_OK;
}
