/*
 * test_codec.c - encoder round trips and decoder rejections.
 */
#include <string.h>

#include "helpers.h"

static void
test_codec_round_trip(void **state)
{
	struct scl_buf b;
	struct scl_enc e;
	struct scl_dec d;
	uint8_t raw[3] = { 1, 2, 3 }, copy[3];
	struct scl_slice blob;

	(void)state;
	scl_buf_init(&b);
	scl_enc_init(&e, &b);
	scl_enc_u8(&e, 0xab);
	scl_enc_u16(&e, 0xbeef);
	scl_enc_u32(&e, 0xdeadbeef);
	scl_enc_u64(&e, 0x0123456789abcdefull);
	scl_enc_bytes(&e, raw, 3);
	scl_enc_blob16(&e, "hello", 5);
	scl_enc_blob32(&e, "", 0);
	assert_int_equal(e.err, SCL_OK);
	assert_int_equal(b.len, 1 + 2 + 4 + 8 + 3 + 2 + 5 + 4);
	/* Little-endian on the wire, whatever the host. */
	assert_int_equal(b.ptr[1], 0xef);
	assert_int_equal(b.ptr[2], 0xbe);
	assert_int_equal(b.ptr[7], 0xef);
	assert_int_equal(b.ptr[14], 0x01);

	scl_dec_init(&d, scl_buf_slice(&b), "sample");
	assert_int_equal(scl_dec_u8(&d, "a"), 0xab);
	assert_int_equal(scl_dec_u16(&d, "b"), 0xbeef);
	assert_int_equal(scl_dec_u32(&d, "c"), 0xdeadbeef);
	assert_true(scl_dec_u64(&d, "d") == 0x0123456789abcdefull);
	scl_dec_copy(&d, copy, 3, "e");
	assert_memory_equal(copy, raw, 3);
	blob = scl_dec_blob16(&d, 16, "f");
	assert_int_equal(blob.len, 5);
	assert_memory_equal(blob.ptr, "hello", 5);
	blob = scl_dec_blob32(&d, 16, "g");
	assert_int_equal(blob.len, 0);
	assert_scl_ok(scl_dec_finish(&d));
	scl_buf_dispose(&b);
}

static void
test_codec_truncation_is_sticky_and_named(void **state)
{
	uint8_t in[5] = { 1, 2, 3, 4, 5 };
	struct scl_dec d;

	(void)state;
	scl_dec_init(&d, scl_slice_of(in, sizeof(in)), "widget");
	assert_int_equal(scl_dec_u32(&d, "first"), 0x04030201);
	/* Only one byte left: the u64 fails and every later read is inert. */
	assert_true(scl_dec_u64(&d, "second") == 0);
	assert_false(scl_dec_ok(&d));
	assert_int_equal(scl_dec_u8(&d, "third"), 0);
	assert_null(scl_dec_bytes(&d, 1, "fourth"));
	assert_int_equal(scl_dec_remaining(&d), 0);
	assert_scl_fails(scl_dec_finish(&d), SCL_EFORMAT,
	    "widget: truncated at second (offset 4 needs 8 bytes, 1 left)");
}

static void
test_codec_rejects_trailing_bytes(void **state)
{
	uint8_t in[3] = { 1, 0, 9 };
	struct scl_dec d;

	(void)state;
	scl_dec_init(&d, scl_slice_of(in, sizeof(in)), "thing");
	assert_int_equal(scl_dec_u16(&d, "x"), 1);
	assert_scl_fails(scl_dec_finish(&d), SCL_EFORMAT, "1 unexpected trailing");
}

static void
test_codec_blob_limits(void **state)
{
	uint8_t in[] = { 10, 0, 'a', 'b' };
	struct scl_dec d;
	struct scl_buf b;
	struct scl_enc e;
	static uint8_t big[70000];

	(void)state;
	/* Declared length above the caller's limit: rejected before any
	 * read, so a hostile length never causes a large allocation. */
	scl_dec_init(&d, scl_slice_of(in, sizeof(in)), "msg");
	(void)scl_dec_blob16(&d, 4, "name");
	assert_scl_fails(scl_dec_finish(&d), SCL_ELIMIT, "name length 10");
	/* Within the limit but past the end: truncated. */
	scl_dec_init(&d, scl_slice_of(in, sizeof(in)), "msg");
	(void)scl_dec_blob16(&d, 100, "name");
	assert_scl_fails(scl_dec_finish(&d), SCL_EFORMAT, "truncated at name");
	/* The encoder refuses blobs its length field cannot express. */
	scl_buf_init(&b);
	scl_enc_init(&e, &b);
	scl_enc_blob16(&e, big, sizeof(big));
	assert_int_equal(e.err, SCL_ELIMIT);
	scl_buf_dispose(&b);
}

static void
test_codec_empty_and_null_input(void **state)
{
	struct scl_dec d;

	(void)state;
	scl_dec_init(&d, scl_slice_of(NULL, 0), "nothing");
	assert_int_equal(scl_dec_u8(&d, "a"), 0);
	assert_scl_fails(scl_dec_finish(&d), SCL_EFORMAT, "nothing: truncated");
}

static void
test_codec_hex(void **state)
{
	uint8_t in[3] = { 0x00, 0xab, 0xff }, out[3];
	char hex[7];

	(void)state;
	assert_string_equal(scl_hex_encode(hex, in, 3), "00abff");
	assert_scl_ok(scl_hex_decode(out, 3, "00ABff"));
	assert_memory_equal(in, out, 3);
	assert_scl_fails(scl_hex_decode(out, 3, "00abf"), SCL_EFORMAT,
	    "expected 6 hex digits");
	assert_scl_fails(scl_hex_decode(out, 3, "00agff"), SCL_EFORMAT,
	    "position 3");
}

static void
test_codec_error_wrap_keeps_detail(void **state)
{
	(void)state;
	scl_err_set(SCL_EFORMAT, "inner detail");
	assert_int_equal(scl_err_wrap(SCL_EVERIFY, "outer %d: ", 7),
	    SCL_EVERIFY);
	assert_string_equal(scl_err_last(), "outer 7: inner detail");
	scl_err_clear();
	assert_string_equal(scl_err_last(), "success");
	assert_string_equal(scl_err_name(SCL_EVERIFY), "EVERIFY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_codec_truncation_is_sticky_and_named),
		cmocka_unit_test(test_codec_rejects_trailing_bytes),
		cmocka_unit_test(test_codec_blob_limits),
		cmocka_unit_test(test_codec_empty_and_null_input),
		cmocka_unit_test(test_codec_hex),
		cmocka_unit_test(test_codec_error_wrap_keeps_detail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
