/*
 * enclave_int.h - private to src/enclave.
 */
#ifndef SCL_ENCLAVE_INT_H
#define SCL_ENCLAVE_INT_H

#include "scl/enclave.h"

/**
 * Installs the core's seccomp filter in the calling process: every system
 * call beyond the allow-list (seccomp.c) kills the process (SIGSYS).
 */
enum scl_err scl_enclave__seccomp(void);

#endif
