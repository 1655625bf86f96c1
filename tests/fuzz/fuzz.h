/*
 * fuzz.h - shared by the fuzz targets: the libFuzzer entry point and a
 * one-time libscl initialization.
 */
#ifndef SCL_FUZZ_H
#define SCL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scl/scl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A rejected input is the expected outcome; only crashes are findings. */
static inline void
fuzz_discard(enum scl_err e)
{
	(void)e;
}

static inline void
fuzz_init(void)
{
	static int done;
	if (!done) {
		if (scl_init() != SCL_OK)
			abort();
		done = 1;
	}
}

#endif
