/*
 * liar.c - test tool: a capsule server that lies.  It sits in front of an
 * honest server and forwards requests, then tampers with the answers:
 *
 *   flip     flips a byte inside every record a READ returns
 *   drop     removes one record from the middle of every READ answer
 *   stale    answers HEADS with the first answer it ever saw (an old
 *            head), and says NOT_FOUND to reads and heartbeats above it
 *   garbage  answers everything with random bytes
 *   honest   changes nothing
 *
 * Usage: liar MODE LISTEN UPSTREAM
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/scl.h"

struct req {
	uint64_t id;		/* the client's id */
	uint8_t route[256];
	size_t route_len;
	uint8_t type;
	uint64_t from, seqno;	/* READ from, HEARTBEAT seqno */
};

#define TABLE 4096

static struct req table[TABLE];
static struct scl_buf stale_heads;
static uint64_t stale_seqno;	/* highest seqno in stale_heads */

static void
send_to(void *router, const struct req *r, const void *p, size_t n)
{
	zmq_send(router, r->route, r->route_len, ZMQ_SNDMORE);
	zmq_send(router, p, n, 0);
}

/* Re-encodes a READ reply with its records altered. */
static void
tamper_read(struct scl_buf *out, const struct scl_msg *m, const char *mode)
{
	struct scl_slice recs[4096], hbs[4096];
	struct scl_buf copies[4096];
	struct scl_msg_iter it;
	struct scl_slice x;
	size_t n = 0, nh = 0;

	scl_msg_iter_init(&it, &m->list);
	while (n < 4096 && scl_msg_iter_next(&it, &x)) {
		scl_buf_init(&copies[n]);
		if (scl_buf_set(&copies[n], x) != SCL_OK)
			exit(1);
		if (strcmp(mode, "flip") == 0 && x.len > 0)
			copies[n].ptr[x.len - 5] ^= 0x10;
		recs[n] = scl_buf_slice(&copies[n]);
		n++;
	}
	scl_msg_iter_init(&it, &m->list2);
	while (nh < 4096 && scl_msg_iter_next(&it, &x))
		hbs[nh++] = x;
	if (strcmp(mode, "drop") == 0 && n > 2) {
		memmove(&recs[n / 2], &recs[n / 2 + 1],
		    (n - n / 2 - 1) * sizeof(recs[0]));
		n--;
	}
	if (scl_msg_encode(out, m, recs, n, hbs, nh) != SCL_OK)
		exit(1);
	for (size_t i = 0; i < (strcmp(mode, "drop") == 0 && n > 2 ? n + 1 : n);
	     i++)
		scl_buf_dispose(&copies[i]);
}

static void
reply_not_found(void *router, const struct req *r)
{
	struct scl_buf b;

	scl_buf_init(&b);
	if (scl_msg_encode_error(&b, r->id, SCL_WIRE_NOT_FOUND, 0,
		"no such record here") == SCL_OK)
		send_to(router, r, b.ptr, b.len);
	scl_buf_dispose(&b);
}

/* Remembers the first HEADS answer; returns it from then on. */
static void
stale_reply(void *router, const struct req *r, struct scl_msg *m,
    struct scl_buf *out)
{
	if (stale_heads.len == 0) {
		struct scl_msg_iter it;
		struct scl_slice x;
		if (scl_buf_set(&stale_heads, scl_slice_of(out->ptr,
						 out->len)) != SCL_OK)
			exit(1);
		scl_msg_iter_init(&it, &m->list);
		while (scl_msg_iter_next(&it, &x)) {
			struct scl_heartbeat hb;
			if (scl_capsule_heartbeat_decode(&hb, x) == SCL_OK &&
			    hb.seqno > stale_seqno)
				stale_seqno = hb.seqno;
		}
	}
	scl_le64_store(stale_heads.ptr + 4, r->id);
	send_to(router, r, stale_heads.ptr, stale_heads.len);
}

int
main(int argc, char **argv)
{
	struct scl_zsock_options fo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_zsock_options bo = SCL_ZSOCK_OPTIONS_INIT;
	void *ctx, *front, *back;
	uint64_t next = 1;
	const char *mode;

	if (argc != 4) {
		fprintf(stderr, "usage: liar MODE LISTEN UPSTREAM\n");
		return 2;
	}
	mode = argv[1];
	scl_buf_init(&stale_heads);
	if (scl_init() != SCL_OK)
		return 1;
	fo.bind = argv[2];
	bo.connect = argv[3];
	if (scl_zsock_open_own(&ctx, &front, ZMQ_ROUTER, &fo) != SCL_OK ||
	    scl_zsock_open(&back, ctx, ZMQ_DEALER, &bo) != SCL_OK) {
		fprintf(stderr, "liar: %s\n", scl_err_last());
		return 1;
	}
	for (;;) {
		zmq_pollitem_t items[2] = { { front, 0, ZMQ_POLLIN, 0 },
			{ back, 0, ZMQ_POLLIN, 0 } };
		zmq_msg_t a, b;
		struct scl_msg m;

		if (zmq_poll(items, 2, -1) < 0)
			break;
		if (items[0].revents) {
			struct req *r;
			zmq_msg_init(&a);
			zmq_msg_init(&b);
			zmq_msg_recv(&a, front, 0);
			zmq_msg_recv(&b, front, 0);
			if (scl_msg_decode(&m, scl_slice_of(zmq_msg_data(&b),
						   zmq_msg_size(&b))) == SCL_OK &&
			    zmq_msg_size(&a) <= 256) {
				r = &table[next % TABLE];
				r->id = m.id;
				r->type = m.type;
				r->from = m.from;
				r->seqno = m.seqno;
				r->route_len = zmq_msg_size(&a);
				memcpy(r->route, zmq_msg_data(&a), r->route_len);
				if (strcmp(mode, "stale") == 0 && stale_seqno &&
				    ((m.type == SCL_MSG_READ &&
					 m.to > stale_seqno) ||
					(m.type == SCL_MSG_HEARTBEAT &&
					    m.seqno > stale_seqno))) {
					reply_not_found(front, r);
				} else {
					scl_le64_store(zmq_msg_data(&b) + 4,
					    next);
					zmq_send(back, zmq_msg_data(&b),
					    zmq_msg_size(&b), 0);
					next++;
				}
			}
			zmq_msg_close(&a);
			zmq_msg_close(&b);
		}
		if (items[1].revents) {
			struct scl_buf out;
			uint64_t ours;
			struct req *r;
			zmq_msg_init(&a);
			zmq_msg_recv(&a, back, 0);
			scl_buf_init(&out);
			if (zmq_msg_size(&a) >= 12) {
				ours = scl_le64_load(
				    (const uint8_t *)zmq_msg_data(&a) + 4);
				r = &table[ours % TABLE];
				scl_le64_store(zmq_msg_data(&a) + 4, r->id);
				if (scl_buf_set(&out, scl_slice_of(
						zmq_msg_data(&a),
						zmq_msg_size(&a))) != SCL_OK)
					return 1;
				if (scl_msg_decode(&m, scl_buf_slice(&out)) !=
				    SCL_OK) {
					send_to(front, r, out.ptr, out.len);
				} else if (strcmp(mode, "garbage") == 0) {
					uint8_t junk[64];
					scl_random(junk, sizeof(junk));
					send_to(front, r, junk, sizeof(junk));
				} else if ((strcmp(mode, "flip") == 0 ||
					       strcmp(mode, "drop") == 0) &&
				    m.type == (SCL_MSG_READ | SCL_MSG_REPLY)) {
					struct scl_buf t;
					scl_buf_init(&t);
					tamper_read(&t, &m, mode);
					send_to(front, r, t.ptr, t.len);
					scl_buf_dispose(&t);
				} else if (strcmp(mode, "stale") == 0 &&
				    m.type == (SCL_MSG_HEADS | SCL_MSG_REPLY)) {
					stale_reply(front, r, &m, &out);
				} else {
					send_to(front, r, out.ptr, out.len);
				}
			}
			scl_buf_dispose(&out);
			zmq_msg_close(&a);
		}
	}
	return 0;
}
