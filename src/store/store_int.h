/*
 * store_int.h - private to src/store.
 */
#ifndef SCL_STORE_INT_H
#define SCL_STORE_INT_H

#include <lmdb.h>

#include "scl/store.h"

struct scl_store {
	MDB_env *env;
	MDB_dbi meta;		/* name -> metadata */
	MDB_dbi records;	/* name writer seqno(BE) -> record */
	MDB_dbi heartbeats;	/* name writer seqno(BE) -> heartbeat */
	MDB_dbi heads;		/* name writer -> seqno lamport hash */
	MDB_dbi hashes;		/* name hash -> writer seqno(BE) */
	MDB_dbi evidence;	/* name writer seqno(BE) -> evidence */
	MDB_dbi info;		/* "version" -> u32 */
	MDB_dbi revoked;	/* name writer -> u64 max seqno */
	char *dir;
};

/** Sets the thread's message from an LMDB code; returns an scl code. */
enum scl_err scl_store__lmdb_err(int rc, const char *what);

/** The stored head of a chain as seen inside @txn (zeros if none). */
enum scl_err scl_store__get_head(struct scl_store *s, MDB_txn *txn,
    const uint8_t *name, const uint8_t *writer, struct scl_store_head *out);

/** Applies one batch inside an open write transaction. */
enum scl_err scl_store__apply(struct scl_store *s, MDB_txn *txn,
    const struct scl_capsule_batch *b);

/** Drops the store file's clean pages that nobody maps from the page
 * cache (store.c says why).  Slow-ish (ms): not on a commit's path. */
void scl_store__drop_cache(struct scl_store *s);

#endif
