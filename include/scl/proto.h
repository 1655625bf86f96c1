/*
 * proto.h - the capsule server protocol, version 1: message encoding and
 * bounds-checked decoding (docs/PROTOCOL.md).
 *
 * One message is one ZeroMQ frame: a 12-byte envelope (version, type,
 * flags, request id) and a body whose layout depends on the type.  Replies
 * echo the request id and carry the request type with SCL_MSG_REPLY set;
 * failures are SCL_MSG_ERROR.  Lists (records, heartbeats, capsules) are a
 * u32 count of u32-prefixed items, validated whole by the decoder and read
 * back with scl_msg_list_next().
 *
 * This module only shapes bytes; what a server or client does with them
 * lives in src/server and src/client.
 */
#ifndef SCL_PROTO_H
#define SCL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_PROTO_VERSION 1
#define SCL_MSG_ENVELOPE_BYTES 12

/* The largest message either side accepts (ZMQ_MAXMSGSIZE): one append
 * of up to 16 MiB of records plus framing. */
#define SCL_MSG_MAX ((size_t)17 << 20)
#define SCL_APPEND_BYTES_MAX ((size_t)16 << 20)
#define SCL_APPEND_RECORDS_MAX 4096
#define SCL_READ_BYTES_MAX ((size_t)8 << 20)
#define SCL_LIST_MAX 65536
#define SCL_STATUS_TEXT_MAX 16384

enum scl_msg_type {
	SCL_MSG_STATUS = 0x01,	  /* -> status text */
	SCL_MSG_META_PUT = 0x02,  /* metadata -> (stored) */
	SCL_MSG_META_GET = 0x03,  /* name -> metadata */
	SCL_MSG_APPEND = 0x04,	  /* name, heartbeat, records -> receipt */
	SCL_MSG_READ = 0x05,	  /* name, writer, from, to -> records, hbs */
	SCL_MSG_READ_HASH = 0x06, /* name, hash -> record */
	SCL_MSG_HEADS = 0x07,	  /* name -> newest heartbeat per writer */
	SCL_MSG_HEARTBEAT = 0x08, /* name, writer, seqno -> heartbeat >= */
	SCL_MSG_PROOF = 0x09,	  /* name, writer, seqno -> proof */
	SCL_MSG_SUBSCRIBE = 0x0a, /* name, lease -> (NOTIFY pushes) */
	SCL_MSG_SYNC = 0x0b,	  /* after-name -> capsules and heads */
	SCL_MSG_EVIDENCE = 0x0c,  /* name -> equivocation evidence */
	SCL_MSG_KB_NONCE = 0x20,  /* key broker: -> fresh nonce, ttl */
	SCL_MSG_KB_ATTEST = 0x21, /* name, keys, nonce, evidence -> cert, keys */
	SCL_MSG_NOTIFY = 0x7f,	  /* server push: name, heartbeat */
	SCL_MSG_REPLY = 0x80,	  /* flag on a request type */
	SCL_MSG_ERROR = 0xff,
};

/* Error codes on the wire (docs/PROTOCOL.md "Errors"). */
enum scl_wire_err {
	SCL_WIRE_BAD_REQUEST = 1,	/* malformed or not understood */
	SCL_WIRE_NOT_FOUND = 2,		/* capsule, record or heartbeat */
	SCL_WIRE_REJECTED = 3,		/* failed verification */
	SCL_WIRE_GAP = 4,		/* append starts above our head; detail */
	SCL_WIRE_EQUIVOCATION = 5,	/* conflicting signed record; stored */
	SCL_WIRE_BUSY = 6,		/* overloaded; retry later */
	SCL_WIRE_TOO_LARGE = 7,		/* over a limit */
	SCL_WIRE_VERSION = 8,		/* protocol version not spoken */
	SCL_WIRE_INTERNAL = 9,		/* server-side failure (disk, memory) */
};

/** "BAD_REQUEST", ... */
const char *scl_wire_err_name(unsigned code);

/** A list inside a decoded message: count and validated raw bytes. */
struct scl_msg_list {
	uint32_t n;
	struct scl_slice raw;
};

struct scl_msg_iter {
	struct scl_slice rest;
};

/** One message, decoded (fields used depend on type; slices borrow). */
struct scl_msg {
	uint8_t type;			/* enum scl_msg_type, maybe | REPLY */
	uint64_t id;			/* request id, echoed by replies */
	uint8_t name[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint8_t hash[SCL_HASH_BYTES];
	uint64_t from, to, seqno;
	uint32_t limit;			/* READ: max bytes; SYNC: max capsules */
	uint32_t lease_ms;
	uint8_t duplicate;		/* APPEND reply: already stored */
	uint8_t more;			/* SYNC reply: more capsules follow */
	uint8_t server_key[SCL_SIGN_PUBLIC_BYTES];	/* APPEND reply */
	uint8_t receipt[SCL_SIGNATURE_BYTES];		/* APPEND reply */
	uint8_t box_key[SCL_BOX_PUBLIC_BYTES];		/* KB_ATTEST */
	uint8_t nonce[32];				/* KB_* */
	struct scl_slice blob;		/* metadata, heartbeat, proof, text */
	struct scl_msg_list list;	/* records, heartbeats, capsules */
	struct scl_msg_list list2;	/* READ reply: heartbeats */
	uint16_t err_code;		/* ERROR: enum scl_wire_err */
	uint64_t err_detail;		/* ERROR GAP: the server's head */
};

/**
 * Encodes @m (type, id and the fields its type uses) into @out.  Lists
 * are given as arrays of slices.  SCL_ELIMIT past the size limits.
 */
SCL_NODISCARD enum scl_err scl_msg_encode(struct scl_buf *out,
    const struct scl_msg *m, const struct scl_slice *items, size_t n_items,
    const struct scl_slice *items2, size_t n_items2);

/**
 * Decodes one frame: envelope, then the body for its type, every read
 * bounds-checked and every list validated.  SCL_EVERSION for another
 * protocol version, SCL_EFORMAT naming the field otherwise.
 */
SCL_NODISCARD enum scl_err scl_msg_decode(struct scl_msg *out,
    struct scl_slice frame);

void scl_msg_iter_init(struct scl_msg_iter *it, const struct scl_msg_list *l);
/** Next item of a list, or false at the end. */
bool scl_msg_iter_next(struct scl_msg_iter *it, struct scl_slice *item);

/** Encodes an ERROR reply to request @id. */
SCL_NODISCARD enum scl_err scl_msg_encode_error(struct scl_buf *out,
    uint64_t id, enum scl_wire_err code, uint64_t detail, const char *text);

/** "STATUS", "APPEND", ... (without the reply flag); "?" if unknown. */
const char *scl_msg_type_name(uint8_t type);

/* --- SYNC entries ---------------------------------------------------- */

/*
 * One capsule in a SYNC reply: name, u16 n, n x (writer, u64 seqno, 32
 * head hash).  Servers before 2026-12-04 sent no hash (40 bytes a head);
 * the decoder tells the two apart by the entry's length (they differ for
 * n > 0), so such a server's heads are still pulled from, by seqno alone.
 */
struct scl_sync_entry {
	uint8_t name[SCL_NAME_BYTES];
	uint16_t n;
	size_t head_bytes;	/* 72, or 40 from an older server */
	const uint8_t *heads;	/* n x head_bytes, borrowed */
};

SCL_NODISCARD enum scl_err scl_sync_entry_encode(struct scl_buf *out,
    const uint8_t *name, const uint8_t (*writers)[SCL_WRITER_BYTES],
    const uint64_t *seqnos, const uint8_t (*hashes)[SCL_HASH_BYTES],
    size_t n);
SCL_NODISCARD enum scl_err scl_sync_entry_decode(struct scl_sync_entry *out,
    struct scl_slice in);
/** Head @i (< e->n) of a decoded entry: its writer, seqno and hash (NULL
 * from an older server). */
void scl_sync_entry_head(const struct scl_sync_entry *e, size_t i,
    const uint8_t **writer, uint64_t *seqno, const uint8_t **hash);

/* --- Receipts ------------------------------------------------------- */

/**
 * A server's durable acknowledgement: its signature over (capsule,
 * writer, seqno, hash) of the last record of an append, made after the
 * batch was committed.  A client holding one can prove the server
 * accepted the record.
 */
void scl_receipt_sign(uint8_t sig[SCL_SIGNATURE_BYTES],
    const struct scl_sign_key *server, const uint8_t *capsule,
    const uint8_t *writer, uint64_t seqno, const uint8_t *hash);

SCL_NODISCARD enum scl_err scl_receipt_verify(
    const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t server_key[SCL_SIGN_PUBLIC_BYTES], const uint8_t *capsule,
    const uint8_t *writer, uint64_t seqno, const uint8_t *hash);

#ifdef __cplusplus
}
#endif
#endif
