/*
 * attest.c - evidence production and verification (attest.h).
 *
 * Evidence v1 (docs/FORMAT.md "Attestation evidence"):
 *   0 4 magic "SCLA"   4 2 version (1)   6 2 backend
 *   sim: 8 32 measurement, 40 64 report data, 104 32 platform key,
 *        136 64 signature over "SCL sim attestation v1" 0x00 || [0,136)
 *   tsm: 8 64 report data, then u16-prefixed provider name and
 *        u32-prefixed hardware report (outblob)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "scl/attest.h"
#include "scl/codec.h"

#define MAGIC "SCLA"
#define VERSION 1
#define SIM_SIGNED 136
#define SIM_CTX "SCL sim attestation v1"
#define TSM_ROOT "/sys/kernel/config/tsm/report"

void
scl_attest_report_data(uint8_t out[SCL_REPORT_DATA_BYTES],
    const uint8_t sign_pk[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t box_pk[SCL_BOX_PUBLIC_BYTES],
    const uint8_t nonce[SCL_NONCE_BYTES])
{
	static const char ctx[] = "SCL report data v1";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, SCL_REPORT_DATA_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof(ctx));
	crypto_generichash_update(&st, sign_pk, SCL_SIGN_PUBLIC_BYTES);
	crypto_generichash_update(&st, box_pk, SCL_BOX_PUBLIC_BYTES);
	crypto_generichash_update(&st, nonce, SCL_NONCE_BYTES);
	crypto_generichash_final(&st, out, SCL_REPORT_DATA_BYTES);
}

enum scl_err
scl_attest_measure_file(uint8_t out[SCL_MEASUREMENT_BYTES], const char *path)
{
	struct scl_hash_state st;
	uint8_t buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return scl_err_set(SCL_EIO, "measuring %s: %s", path,
		    strerror(errno));
	scl_hash_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		scl_hash_update(&st, buf, (size_t)n);
	close(fd);
	if (n < 0)
		return scl_err_set(SCL_EIO, "measuring %s: %s", path,
		    strerror(errno));
	scl_hash_final(&st, out);
	return SCL_OK;
}

static void
sim_message(uint8_t *msg, const uint8_t *signed_part)
{
	memcpy(msg, SIM_CTX, sizeof(SIM_CTX));
	memcpy(msg + sizeof(SIM_CTX), signed_part, SIM_SIGNED);
}

enum scl_err
scl_attest_sim_evidence(struct scl_buf *out, const struct scl_sign_key *platform,
    const uint8_t measurement[SCL_MEASUREMENT_BYTES],
    const uint8_t report_data[SCL_REPORT_DATA_BYTES])
{
	uint8_t part[SIM_SIGNED], msg[sizeof(SIM_CTX) + SIM_SIGNED], sig[64];

	memcpy(part, MAGIC, 4);
	scl_le16_store(part + 4, VERSION);
	scl_le16_store(part + 6, SCL_ATTEST_SIM);
	memcpy(part + 8, measurement, 32);
	memcpy(part + 40, report_data, 64);
	memcpy(part + 104, platform->public_key, 32);
	sim_message(msg, part);
	scl_sign(sig, platform, msg, sizeof(msg));
	if (scl_buf_append(out, part, sizeof(part)) != SCL_OK ||
	    scl_buf_append(out, sig, sizeof(sig)) != SCL_OK)
		return SCL_ENOMEM;
	return SCL_OK;
}

static enum scl_err
write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0)
		return scl_err_set(SCL_EIO, "%s: %s", path, strerror(errno));
	w = write(fd, p, n);
	close(fd);
	if (w != (ssize_t)n)
		return scl_err_set(SCL_EIO, "writing %s: %s", path,
		    strerror(errno));
	return SCL_OK;
}

static enum scl_err
read_file(const char *path, struct scl_buf *out, size_t max)
{
	uint8_t buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return scl_err_set(SCL_EIO, "%s: %s", path, strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (out->len + (size_t)n > max ||
		    scl_buf_append(out, buf, (size_t)n) != SCL_OK) {
			close(fd);
			return scl_err_set(SCL_ELIMIT, "%s is too large", path);
		}
	close(fd);
	return n < 0 ? scl_err_set(SCL_EIO, "%s: %s", path, strerror(errno))
		     : SCL_OK;
}

enum scl_err
scl_attest_tsm_evidence(struct scl_buf *out,
    const uint8_t report_data[SCL_REPORT_DATA_BYTES])
{
	char dir[256], path[320];
	struct scl_buf provider, report;
	struct scl_enc e;
	enum scl_err r;

	if (access(TSM_ROOT, F_OK) != 0)
		return scl_err_set(SCL_ENOTFOUND,
		    "no configfs-tsm at %s: this machine offers no TEE report "
		    "interface (use --attest sim for development)", TSM_ROOT);
	snprintf(dir, sizeof(dir), "%s/scl-%ld", TSM_ROOT, (long)getpid());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return scl_err_set(SCL_EIO, "%s: %s", dir, strerror(errno));
	scl_buf_init(&provider);
	scl_buf_init(&report);
	snprintf(path, sizeof(path), "%s/inblob", dir);
	if ((r = write_file(path, report_data, SCL_REPORT_DATA_BYTES)) ==
	    SCL_OK) {
		snprintf(path, sizeof(path), "%s/outblob", dir);
		r = read_file(path, &report, SCL_EVIDENCE_MAX - 512);
	}
	if (r == SCL_OK) {
		snprintf(path, sizeof(path), "%s/provider", dir);
		r = read_file(path, &provider, 64);
	}
	rmdir(dir);
	if (r == SCL_OK) {
		scl_enc_init(&e, out);
		scl_enc_bytes(&e, MAGIC, 4);
		scl_enc_u16(&e, VERSION);
		scl_enc_u16(&e, SCL_ATTEST_TSM);
		scl_enc_bytes(&e, report_data, SCL_REPORT_DATA_BYTES);
		scl_enc_blob16(&e, provider.ptr, provider.len);
		scl_enc_blob32(&e, report.ptr, report.len);
		r = e.err;
	}
	scl_buf_dispose(&provider);
	scl_buf_dispose(&report);
	return r;
}

static bool
listed(const uint8_t (*list)[32], size_t n, const uint8_t *x)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(list[i], x, 32) == 0)
			return true;
	return false;
}

enum scl_err
scl_attest_verify(struct scl_attest_claims *out,
    const struct scl_attest_policy *policy, struct scl_slice evidence)
{
	uint8_t msg[sizeof(SIM_CTX) + SIM_SIGNED];
	const uint8_t *sig;
	struct scl_dec d;
	uint16_t backend;
	char hex[65];
	enum scl_err r;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, evidence, "attestation evidence");
	if (evidence.len > SCL_EVIDENCE_MAX)
		return scl_dec_fail(&d, SCL_ELIMIT, "%zu bytes", evidence.len);
	scl_dec_magic(&d, MAGIC);
	scl_dec_version(&d, VERSION);
	backend = scl_dec_u16(&d, "backend");
	if (!scl_dec_ok(&d))
		return d.err;
	if (backend == SCL_ATTEST_TSM) {
		struct scl_slice provider;
		out->backend = SCL_ATTEST_TSM;
		scl_dec_copy(&d, out->report_data, 64, "report data");
		provider = scl_dec_blob16(&d, 64, "provider");
		(void)scl_dec_blob32(&d, SCL_EVIDENCE_MAX, "hardware report");
		if ((r = scl_dec_finish(&d)) != SCL_OK)
			return r;
		for (size_t i = 0; i < provider.len; i++)
			if (provider.ptr[i] < 0x20 || provider.ptr[i] > 0x7e)
				provider = scl_slice_of("?", 1);
		/* Well-formed, but its signature chains to the CPU vendor:
		 * refuse rather than pretend. */
		return scl_err_set(SCL_EVERIFY,
		    "attestation evidence from configfs-tsm (provider '%.*s') "
		    "cannot be verified by this build (it needs the vendor's "
		    "certificate chain)", (int)provider.len,
		    (const char *)provider.ptr);
	}
	if (backend != SCL_ATTEST_SIM)
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown backend %u",
		    backend);
	out->backend = SCL_ATTEST_SIM;
	scl_dec_copy(&d, out->measurement, 32, "measurement");
	scl_dec_copy(&d, out->report_data, 64, "report data");
	scl_dec_copy(&d, out->platform, 32, "platform key");
	sig = scl_dec_bytes(&d, 64, "signature");
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		return r;
	if (!listed(policy->platforms, policy->n_platforms, out->platform))
		return scl_err_set(SCL_EVERIFY,
		    "evidence is signed by platform %s, which is not trusted",
		    scl_hex_encode(hex, out->platform, 32));
	sim_message(msg, evidence.ptr);
	if (scl_sign_verify(sig, out->platform, msg, sizeof(msg)) != SCL_OK)
		return scl_err_set(SCL_EVERIFY,
		    "evidence signature does not verify");
	if (!listed(policy->measurements, policy->n_measurements,
		out->measurement))
		return scl_err_set(SCL_EVERIFY,
		    "measured code %s is not on the allow list",
		    scl_hex_encode(hex, out->measurement, 32));
	return SCL_OK;
}
