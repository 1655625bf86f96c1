/*
 * test_proto.c - protocol v1 messages: every type round-trips, every
 * truncation and malformation is refused with a named reason.
 */
#include <string.h>

#include "helpers.h"

static void
fill(struct scl_msg *m, uint8_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->id = 0x0102030405060708ull;
	memset(m->name, 0x11, sizeof(m->name));
	memset(m->writer, 0x22, sizeof(m->writer));
	memset(m->hash, 0x33, sizeof(m->hash));
	memset(m->server_key, 0x44, sizeof(m->server_key));
	memset(m->receipt, 0x55, sizeof(m->receipt));
	m->from = 5;
	m->to = 9;
	m->seqno = 77;
	m->limit = 4096;
	m->lease_ms = 1500;
	m->duplicate = 1;
	m->more = 1;
	m->blob = scl_slice_of("heartbeat-ish", 13);
}

static const uint8_t all_types[] = { SCL_MSG_STATUS, SCL_MSG_META_PUT,
	SCL_MSG_META_GET, SCL_MSG_APPEND, SCL_MSG_READ, SCL_MSG_READ_HASH,
	SCL_MSG_HEADS, SCL_MSG_HEARTBEAT, SCL_MSG_PROOF, SCL_MSG_SUBSCRIBE,
	SCL_MSG_SYNC, SCL_MSG_EVIDENCE, SCL_MSG_KB_NONCE, SCL_MSG_KB_ATTEST };

static void
test_proto_every_type_round_trips(void **state)
{
	struct scl_slice items[3] = { { (const uint8_t *)"one", 3 },
		{ (const uint8_t *)"", 0 }, { (const uint8_t *)"three", 5 } };
	struct scl_buf b;
	struct scl_msg m, d;

	(void)state;
	scl_buf_init(&b);
	for (size_t t = 0; t < sizeof(all_types); t++) {
		for (int reply = 0; reply < 2; reply++) {
			fill(&m, (uint8_t)(all_types[t] |
				     (reply ? SCL_MSG_REPLY : 0)));
			scl_buf_clear(&b);
			assert_scl_ok(scl_msg_encode(&b, &m, items, 3, items,
			    2));
			assert_scl_ok(scl_msg_decode(&d, scl_buf_slice(&b)));
			assert_int_equal(d.type, m.type);
			assert_true(d.id == m.id);
			/* Every strict prefix is refused, never misread. */
			for (size_t n = 0; n < b.len; n++)
				assert_int_not_equal(scl_msg_decode(&d,
				    scl_slice_of(b.ptr, n)), SCL_OK);
		}
	}
	/* Field fidelity on the two richest messages. */
	fill(&m, SCL_MSG_READ);
	scl_buf_clear(&b);
	assert_scl_ok(scl_msg_encode(&b, &m, NULL, 0, NULL, 0));
	assert_scl_ok(scl_msg_decode(&d, scl_buf_slice(&b)));
	assert_memory_equal(d.name, m.name, 32);
	assert_memory_equal(d.writer, m.writer, 32);
	assert_true(d.from == 5 && d.to == 9 && d.limit == 4096);
	fill(&m, SCL_MSG_READ | SCL_MSG_REPLY);
	scl_buf_clear(&b);
	assert_scl_ok(scl_msg_encode(&b, &m, items, 3, items, 1));
	assert_scl_ok(scl_msg_decode(&d, scl_buf_slice(&b)));
	assert_int_equal(d.list.n, 3);
	assert_int_equal(d.list2.n, 1);
	{
		struct scl_msg_iter it;
		struct scl_slice x;
		size_t k = 0;
		scl_msg_iter_init(&it, &d.list);
		while (scl_msg_iter_next(&it, &x)) {
			assert_int_equal(x.len, items[k].len);
			assert_memory_equal(x.ptr, items[k].ptr, x.len);
			k++;
		}
		assert_int_equal(k, 3);
	}
	scl_buf_dispose(&b);
}

static void
test_proto_rejections(void **state)
{
	struct scl_buf b;
	struct scl_msg m, d;

	(void)state;
	scl_buf_init(&b);
	fill(&m, SCL_MSG_HEADS);
	assert_scl_ok(scl_msg_encode(&b, &m, NULL, 0, NULL, 0));
	b.ptr[0] = 2;
	assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)), SCL_EVERSION,
	    "version 2");
	b.ptr[0] = 1;
	b.ptr[3] = 1;
	assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)), SCL_EFORMAT,
	    "unknown flags");
	b.ptr[3] = 0;
	b.ptr[2] = 0x42;
	assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)), SCL_EFORMAT,
	    "unknown message type 0x42");
	b.ptr[2] = SCL_MSG_HEADS;
	assert_scl_ok(scl_buf_append(&b, "!", 1));
	assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)), SCL_EFORMAT,
	    "trailing");
	/* A list that claims more items than it holds. */
	scl_buf_clear(&b);
	fill(&m, SCL_MSG_HEADS | SCL_MSG_REPLY);
	assert_scl_ok(scl_msg_encode(&b, &m, NULL, 0, NULL, 0));
	b.ptr[12] = 5;
	assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)), SCL_EFORMAT,
	    "truncated at heartbeats");
	/* A heartbeat item larger than a heartbeat can be. */
	{
		uint8_t big[300] = { 0 };
		struct scl_slice it = { big, sizeof(big) };
		scl_buf_clear(&b);
		assert_scl_ok(scl_msg_encode(&b, &m, &it, 1, NULL, 0));
		assert_scl_fails(scl_msg_decode(&d, scl_buf_slice(&b)),
		    SCL_ELIMIT, "heartbeats length 300");
	}
	/* An error reply carries code, detail and text. */
	scl_buf_clear(&b);
	assert_scl_ok(scl_msg_encode_error(&b, 9, SCL_WIRE_GAP, 41, "behind"));
	assert_scl_ok(scl_msg_decode(&d, scl_buf_slice(&b)));
	assert_int_equal(d.type, SCL_MSG_ERROR);
	assert_int_equal(d.err_code, SCL_WIRE_GAP);
	assert_true(d.err_detail == 41);
	assert_int_equal(d.blob.len, 6);
	assert_string_equal(scl_wire_err_name(SCL_WIRE_GAP), "GAP");
	scl_buf_dispose(&b);
}

static void
test_proto_sync_entries(void **state)
{
	uint8_t name[32], writers[2][32], hashes[2][32];
	uint64_t seqnos[2] = { 10, 20 };
	struct scl_sync_entry e;
	struct scl_buf b;
	const uint8_t *w, *h;
	uint64_t s;

	(void)state;
	memset(name, 1, 32);
	memset(writers[0], 2, 32);
	memset(writers[1], 3, 32);
	scl_buf_init(&b);
	memset(hashes[0], 4, 32);
	memset(hashes[1], 5, 32);
	assert_scl_ok(scl_sync_entry_encode(&b, name,
	    (const uint8_t(*)[32])writers, seqnos,
	    (const uint8_t(*)[32])hashes, 2));
	assert_scl_ok(scl_sync_entry_decode(&e, scl_buf_slice(&b)));
	assert_int_equal(e.n, 2);
	scl_sync_entry_head(&e, 1, &w, &s, &h);
	assert_memory_equal(w, writers[1], 32);
	assert_true(s == 20);
	assert_non_null(h);
	assert_memory_equal(h, hashes[1], 32);
	assert_scl_fails(scl_sync_entry_decode(&e, scl_slice_of(b.ptr,
	    b.len - 1)), SCL_EFORMAT, "truncated at heads");
	/* An older server's entry, without hashes, still decodes. */
	scl_buf_clear(&b);
	assert_scl_ok(scl_buf_append(&b, name, 32));
	assert_scl_ok(scl_buf_append(&b, "\2\0", 2));
	for (int i = 0; i < 2; i++) {
		uint8_t sq[8];
		scl_le64_store(sq, seqnos[i]);
		assert_scl_ok(scl_buf_append(&b, writers[i], 32));
		assert_scl_ok(scl_buf_append(&b, sq, 8));
	}
	assert_scl_ok(scl_sync_entry_decode(&e, scl_buf_slice(&b)));
	scl_sync_entry_head(&e, 1, &w, &s, &h);
	assert_memory_equal(w, writers[1], 32);
	assert_true(s == 20);
	assert_null(h);
	scl_buf_dispose(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_every_type_round_trips),
		cmocka_unit_test(test_proto_rejections),
		cmocka_unit_test(test_proto_sync_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
