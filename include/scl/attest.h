/*
 * attest.h - attestation: evidence that binds a trusted core's public
 * keys (and a verifier's nonce) to the code it runs (DESIGN §7).
 *
 * The core hashes its keys and the nonce into 64 bytes of report data;
 * a backend turns the report data into evidence signed by the platform;
 * a verifier checks the platform signature, that the measured code is
 * allowed, and that the report data is the one it expects.
 *
 * Backends:
 *   sim  a software platform key signs (measurement, report data).  It
 *        proves nothing against the host, which holds that key: every
 *        use says so.  For development and tests.
 *   tsm  Linux configfs-tsm (/sys/kernel/config/tsm/report): the report
 *        data goes into `inblob`, the hardware report (Intel TDX quote,
 *        AMD SEV-SNP report) comes out of `outblob`.  Producing evidence
 *        works wherever the kernel offers it; verifying it needs the
 *        vendor's certificate chain (Intel PCS, AMD KDS), which this
 *        build does not fetch, so verification reports that plainly.
 */
#ifndef SCL_ATTEST_H
#define SCL_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/crypto.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_REPORT_DATA_BYTES 64
#define SCL_MEASUREMENT_BYTES 32
#define SCL_NONCE_BYTES 32
#define SCL_EVIDENCE_MAX 16384

enum scl_attest_backend {
	SCL_ATTEST_SIM = 1,
	SCL_ATTEST_TSM = 2,
};

/** The warning every sim-backend command prints. */
#define SCL_ATTEST_SIM_WARNING                                                \
	"WARNING: simulated attestation (sim backend): the platform key "     \
	"lives on this host, so the evidence proves nothing against the "    \
	"host.  Use a TEE backend (configfs-tsm) for real protection."

/** Report data binding a core's keys to a verifier's nonce:
 * BLAKE2b-512("SCL report data v1" 0x00 || sign pk || box pk || nonce). */
void scl_attest_report_data(uint8_t out[SCL_REPORT_DATA_BYTES],
    const uint8_t sign_pk[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t box_pk[SCL_BOX_PUBLIC_BYTES],
    const uint8_t nonce[SCL_NONCE_BYTES]);

/** The code measurement of a file (BLAKE2b-256 of its bytes): what the
 * sim backend reports for the running binary. */
SCL_NODISCARD enum scl_err scl_attest_measure_file(
    uint8_t out[SCL_MEASUREMENT_BYTES], const char *path);

/**
 * Sim backend: signs (measurement, report data) with @platform into
 * @out (appended).
 */
SCL_NODISCARD enum scl_err scl_attest_sim_evidence(struct scl_buf *out,
    const struct scl_sign_key *platform,
    const uint8_t measurement[SCL_MEASUREMENT_BYTES],
    const uint8_t report_data[SCL_REPORT_DATA_BYTES]);

/**
 * TSM backend: asks the kernel's configfs-tsm for a hardware report over
 * @report_data.  SCL_ENOTFOUND when this machine has no configfs-tsm
 * (no TEE, or configfs not mounted), naming the path.
 */
SCL_NODISCARD enum scl_err scl_attest_tsm_evidence(struct scl_buf *out,
    const uint8_t report_data[SCL_REPORT_DATA_BYTES]);

/** What a verifier accepts. */
struct scl_attest_policy {
	const uint8_t (*platforms)[SCL_SIGN_PUBLIC_BYTES];	/* sim keys */
	size_t n_platforms;
	const uint8_t (*measurements)[SCL_MEASUREMENT_BYTES];
	size_t n_measurements;
};

/** What verified evidence says. */
struct scl_attest_claims {
	enum scl_attest_backend backend;
	uint8_t measurement[SCL_MEASUREMENT_BYTES];
	uint8_t report_data[SCL_REPORT_DATA_BYTES];
	uint8_t platform[SCL_SIGN_PUBLIC_BYTES];	/* sim: the signer */
};

/**
 * Parses and verifies evidence against @policy: a trusted platform's
 * valid signature and an allowed measurement.  The caller still compares
 * claims->report_data with what it expects (keys and its nonce).  Every
 * refusal names its reason.
 */
SCL_NODISCARD enum scl_err scl_attest_verify(struct scl_attest_claims *out,
    const struct scl_attest_policy *policy, struct scl_slice evidence);

#ifdef __cplusplus
}
#endif
#endif
