/* fuzz_proto.c - protocol v1 frames, their lists and SYNC entries. */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_msg m;
	struct scl_msg_iter it;
	struct scl_slice item;
	struct scl_sync_entry e;
	size_t total = 0;

	fuzz_init();
	if (scl_msg_decode(&m, scl_slice_of(data, size)) != SCL_OK)
		return 0;
	scl_msg_iter_init(&it, &m.list);
	while (scl_msg_iter_next(&it, &item)) {
		total += item.len;
		if (scl_sync_entry_decode(&e, item) == SCL_OK)
			for (size_t i = 0; i < e.n; i++) {
				const uint8_t *w, *h;
				uint64_t s;
				scl_sync_entry_head(&e, i, &w, &s, &h);
			}
	}
	if (total > size)
		abort(); /* items must lie inside the frame */
	scl_msg_iter_init(&it, &m.list2);
	while (scl_msg_iter_next(&it, &item))
		total += item.len;
	return 0;
}
