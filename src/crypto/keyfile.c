/*
 * keyfile.c - secret key files on disk.
 *
 * Layout v1 (docs/FORMAT.md "Key files"), little-endian:
 *   0   4  magic "SCLK"
 *   4   2  version (1)
 *   6   2  kind (enum scl_keyfile_kind)
 *   8   4  body length n (at most KEYFILE_BODY_MAX)
 *   12  n  body
 *   12+n 32 BLAKE2b-256 of bytes [0, 12+n): catches truncation and bit rot
 *
 * Files are created 0600 under a temporary name, fsync'd, then linked (new
 * file) or renamed (replacement) into place, and the directory is fsync'd.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scl/codec.h"
#include "scl/crypto.h"

#define KEYFILE_MAGIC "SCLK"
#define KEYFILE_VERSION 1
#define KEYFILE_HEADER 12
#define KEYFILE_BODY_MAX 65536

static enum scl_err
encode_keyfile(struct scl_buf *out, enum scl_keyfile_kind kind,
    struct scl_slice secret)
{
	uint8_t sum[SCL_HASH_BYTES];
	struct scl_enc e;

	if (secret.len > KEYFILE_BODY_MAX)
		return scl_err_set(SCL_ELIMIT, "key material of %zu bytes",
		    secret.len);
	scl_enc_init(&e, out);
	scl_enc_bytes(&e, KEYFILE_MAGIC, 4);
	scl_enc_u16(&e, KEYFILE_VERSION);
	scl_enc_u16(&e, (uint16_t)kind);
	scl_enc_blob32(&e, secret.ptr, secret.len);
	if (e.err != SCL_OK)
		return e.err;
	scl_hash(sum, out->ptr, out->len);
	return scl_buf_append(out, sum, sizeof(sum));
}

static enum scl_err
write_all(int fd, const uint8_t *p, size_t n, const char *path)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return scl_err_set(SCL_EIO, "writing %s: %s", path,
			    strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return SCL_OK;
}

static void
sync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

static enum scl_err
write_keyfile(const char *path, enum scl_keyfile_kind kind,
    struct scl_slice secret, bool replace)
{
	char tmp[4096];
	struct scl_buf bytes;
	enum scl_err r;
	int fd = -1;

	scl_buf_init(&bytes);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
		(long)getpid()) >= sizeof(tmp))
		return scl_err_set(SCL_EINVAL, "key file path too long");
	if ((r = encode_keyfile(&bytes, kind, secret)) != SCL_OK)
		goto done;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		r = scl_err_set(SCL_EIO, "creating %s: %s", tmp,
		    strerror(errno));
		goto done;
	}
	if ((r = write_all(fd, bytes.ptr, bytes.len, tmp)) != SCL_OK)
		goto done;
	if (fsync(fd) != 0) {
		r = scl_err_set(SCL_EIO, "fsync %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (replace ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
		r = errno == EEXIST
		    ? scl_err_set(SCL_EEXIST,
			  "%s exists; refusing to overwrite a key file", path)
		    : scl_err_set(SCL_EIO, "installing %s: %s", path,
			  strerror(errno));
		goto done;
	}
	sync_parent_dir(path);
done:
	if (fd >= 0) {
		close(fd);
		unlink(tmp); /* after link(); after rename() it is gone */
	}
	scl_buf_dispose_secret(&bytes);
	return r;
}

enum scl_err
scl_keyfile_write(const char *path, enum scl_keyfile_kind kind,
    struct scl_slice secret)
{
	return write_keyfile(path, kind, secret, false);
}

enum scl_err
scl_keyfile_replace(const char *path, enum scl_keyfile_kind kind,
    struct scl_slice secret)
{
	return write_keyfile(path, kind, secret, true);
}

static enum scl_err
read_file_secret(struct scl_buf *out, const char *path)
{
	struct stat st;
	enum scl_err r = SCL_OK;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return scl_err_set(errno == ENOENT ? SCL_ENOTFOUND : SCL_EIO,
		    "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		r = scl_err_set(SCL_EIO, "key file %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		r = scl_err_set(SCL_EINVAL, "key file %s is not a regular file",
		    path);
		goto done;
	}
	if (st.st_mode & 077) {
		r = scl_err_set(SCL_EINVAL,
		    "key file %s is accessible by others (mode %04o); "
		    "run chmod 600 on it",
		    path, (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_size > KEYFILE_HEADER + KEYFILE_BODY_MAX + SCL_HASH_BYTES) {
		r = scl_err_set(SCL_EFORMAT, "key file %s is too large", path);
		goto done;
	}
	if ((r = scl_buf_resize(out, (size_t)st.st_size)) != SCL_OK)
		goto done;
	for (size_t got = 0; got < out->len;) {
		ssize_t n = read(fd, out->ptr + got, out->len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = scl_err_set(SCL_EIO, "reading key file %s: %s",
			    path, n == 0 ? "short read" : strerror(errno));
			goto done;
		}
		got += (size_t)n;
	}
done:
	close(fd);
	return r;
}

static const char *
kind_name(unsigned kind)
{
	switch (kind) {
	case SCL_KEYFILE_IDENTITY:
		return "signing identity";
	case SCL_KEYFILE_KEYRING:
		return "capsule keyring";
	case SCL_KEYFILE_SEEN:
		return "record of heads seen";
	}
	return "key of unknown kind";
}

enum scl_err
scl_keyfile_decode(struct scl_buf *out, struct scl_slice raw,
    enum scl_keyfile_kind kind, const char *what)
{
	uint8_t sum[SCL_HASH_BYTES];
	struct scl_dec d;
	struct scl_slice body;
	const uint8_t *magic, *stored;
	uint16_t version, got_kind;
	enum scl_err r;

	scl_buf_clear(out);
	if (raw.len < KEYFILE_HEADER + SCL_HASH_BYTES)
		return scl_err_set(SCL_EFORMAT,
		    "key file %s is truncated (%zu bytes)", what, raw.len);
	scl_dec_init(&d, raw, "key file");
	magic = scl_dec_bytes(&d, 4, "magic");
	version = scl_dec_u16(&d, "version");
	got_kind = scl_dec_u16(&d, "kind");
	body = scl_dec_blob32(&d, KEYFILE_BODY_MAX, "body");
	stored = scl_dec_bytes(&d, SCL_HASH_BYTES, "checksum");
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		return scl_err_wrap(r, "%s: ", what);
	if (memcmp(magic, KEYFILE_MAGIC, 4) != 0)
		return scl_err_set(SCL_EFORMAT, "%s is not an SCL key file",
		    what);
	if (version != KEYFILE_VERSION)
		return scl_err_set(SCL_EVERSION,
		    "key file %s has version %u; this build reads version %u",
		    what, version, KEYFILE_VERSION);
	scl_hash(sum, raw.ptr, raw.len - SCL_HASH_BYTES);
	if (!scl_ct_equal(sum, stored, SCL_HASH_BYTES))
		return scl_err_set(SCL_EVERIFY,
		    "key file %s is corrupted (checksum mismatch)", what);
	if (got_kind != kind)
		return scl_err_set(SCL_EINVAL, "key file %s holds a %s, not a %s",
		    what, kind_name(got_kind), kind_name(kind));
	return scl_buf_append(out, body.ptr, body.len);
}

enum scl_err
scl_keyfile_read(struct scl_buf *out, const char *path,
    enum scl_keyfile_kind kind)
{
	struct scl_buf raw;
	enum scl_err r;

	scl_buf_init(&raw);
	scl_buf_clear(out);
	if ((r = read_file_secret(&raw, path)) == SCL_OK)
		r = scl_keyfile_decode(out, scl_buf_slice(&raw), kind, path);
	scl_buf_dispose_secret(&raw);
	return r;
}
