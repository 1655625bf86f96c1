/*
 * gen_corpus.c - writes the seed corpus of every fuzz target: valid
 * encodings produced by the library itself, which the fuzzers then
 * mutate.  Deterministic keys, so rerunning changes only salted bytes.
 *
 * Usage: gen_corpus DIR   (writes DIR/<target>/seed-N)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scl/attest.h"
#include "scl/codec.h"
#include "scl/kv.h"
#include "scl/router.h"
#include "scl/scl.h"
#include "scl/worker.h"

static const char *root;

static void
check(enum scl_err e, const char *what)
{
	if (e != SCL_OK) {
		fprintf(stderr, "gen_corpus: %s: %s\n", what, scl_err_last());
		exit(1);
	}
}

static void
put(const char *target, int n, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		exit(1);
	snprintf(path, sizeof(path), "%s/%s/seed-%d", root, target, n);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, len, f) != len)
		exit(1);
	fclose(f);
}

/* A seed whose first byte picks what the target does with the rest. */
static void
put_tagged(const char *target, int n, uint8_t tag, const void *p, size_t len)
{
	uint8_t *b = malloc(len + 1);

	if (b == NULL)
		exit(1);
	b[0] = tag;
	memcpy(b + 1, p, len);
	put(target, n, b, len + 1);
	free(b);
}

struct chain {
	struct scl_buf rec[16], hb[16];
	int n;
};

static enum scl_err
rec_fn(void *ctx, const uint8_t *w, uint64_t s, struct scl_buf *out)
{
	struct chain *c = ctx;
	(void)w;
	if (s == 0 || (int)s > c->n)
		return scl_err_set(SCL_ENOTFOUND, "none");
	return scl_buf_set(out, scl_buf_slice(&c->rec[s - 1]));
}

static enum scl_err
hb_fn(void *ctx, const uint8_t *w, uint64_t s, uint64_t *at,
    struct scl_buf *out)
{
	struct chain *c = ctx;
	(void)w;
	for (int i = (int)(s ? s : 1); i <= c->n; i++)
		if (c->hb[i - 1].len) {
			*at = (uint64_t)i;
			return scl_buf_set(out, scl_buf_slice(&c->hb[i - 1]));
		}
	return scl_err_set(SCL_ENOTFOUND, "none");
}

/* Appends @n records to @c, a heartbeat every 4, from @w. */
static void
grow(struct chain *c, struct scl_capsule_writer *w, int n, const char *tag)
{
	struct scl_capsule_batch b;
	char p[32];

	scl_capsule_batch_init(&b);
	for (int i = 0; i < n; i++) {
		int len = snprintf(p, sizeof(p), "%s-%d", tag, c->n + 1);
		check(scl_capsule_writer_append(w, &b, SCL_RECORD_DATA,
			  scl_slice_of(p, (size_t)len)), "append");
		scl_buf_init(&c->rec[c->n]);
		scl_buf_init(&c->hb[c->n]);
		check(scl_buf_set(&c->rec[c->n],
			  scl_capsule_batch_record(&b, b.n - 1)), "copy");
		c->n++;
		if (c->n % 4 == 0) {
			check(scl_capsule_writer_seal_batch(w, &b, 1), "seal");
			check(scl_buf_set(&c->hb[c->n - 1],
				  scl_buf_slice(&b.heartbeat)), "copy");
			scl_capsule_batch_clear(&b);
		}
	}
	scl_capsule_batch_dispose(&b);
}

int
main(int argc, char **argv)
{
	uint8_t seed[32], key[32], name[32];
	struct scl_sign_key owner;
	struct scl_capsule_meta m;
	struct scl_capsule_head head;
	struct scl_capsule_writer *w, *fork;
	struct scl_capsule_cert cert;
	struct scl_capsule_keyring *ring = calloc(1, sizeof(*ring));
	struct scl_buf buf, buf2, ev;
	struct chain c, c2;
	struct scl_capsule_source src = { &c, rec_fn, hb_fn };
	struct scl_capsule_source src2 = { &c2, rec_fn, hb_fn };

	if (argc != 2 || ring == NULL)
		return fprintf(stderr, "usage: gen_corpus DIR\n"), 2;
	root = argv[1];
	check(scl_init(), "init");
	memset(seed, 3, 32);
	memset(key, 4, 32);
	scl_sign_key_from_seed(&owner, seed);
	memset(&m, 0, sizeof(m));
	memcpy(m.owner, owner.public_key, 32);
	m.created_us = 1764000000000000ull;
	m.aead = SCL_AEAD_AES256GCM;
	m.replicas = 3;
	m.write_quorum = 2;
	m.n_servers = 3;
	snprintf(m.label, sizeof(m.label), "fuzz seed");
	for (int i = 0; i < 3; i++)
		snprintf(m.servers[i], sizeof(m.servers[i]),
		    "tcp://127.0.0.1:740%d", i);
	scl_buf_init(&buf);
	scl_buf_init(&buf2);
	scl_buf_init(&ev);
	check(scl_capsule_meta_encode(&buf, &m, &owner), "meta");
	put("meta", 1, buf.ptr, buf.len);
	scl_capsule_name(name, scl_buf_slice(&buf));
	m.n_servers = 0;
	m.replicas = m.write_quorum = 1;
	scl_buf_clear(&buf2);
	check(scl_capsule_meta_encode(&buf2, &m, &owner), "meta");
	put("meta", 2, buf2.ptr, buf2.len);

	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, name, 32);
	memset(cert.writer, 9, 32);
	scl_buf_clear(&buf2);
	check(scl_capsule_cert_encode(&buf2, &cert, &owner), "cert");
	put("cert", 1, buf2.ptr, buf2.len);

	memset(&head, 0, sizeof(head));
	check(scl_capsule_writer_new(&w, name, SCL_AEAD_AES256GCM, &owner, 1,
		  key, &head), "writer");
	memset(&c, 0, sizeof(c));
	grow(&c, w, 8, "seed");
	for (int i = 0; i < 8; i++)
		put("record", i + 1, c.rec[i].ptr, c.rec[i].len);
	put("heartbeat", 1, c.hb[3].ptr, c.hb[3].len);
	put("heartbeat", 2, c.hb[7].ptr, c.hb[7].len);

	/* verify: the 8-record chain as (kind, u16 len, bytes) entries */
	scl_buf_clear(&buf2);
	for (int i = 0; i < 8; i++) {
		uint8_t h[3] = { 0, (uint8_t)c.rec[i].len,
			(uint8_t)(c.rec[i].len >> 8) };
		check(scl_buf_append(&buf2, h, 3), "v");
		check(scl_buf_append(&buf2, c.rec[i].ptr, c.rec[i].len), "v");
		if (c.hb[i].len) {
			uint8_t k[3] = { 1, (uint8_t)c.hb[i].len, 0 };
			check(scl_buf_append(&buf2, k, 3), "v");
			check(scl_buf_append(&buf2, c.hb[i].ptr, c.hb[i].len),
			    "v");
		}
	}
	put("verify", 1, buf2.ptr, buf2.len);

	memcpy(ring->capsule, name, 32);
	ring->has_owner = true;
	memcpy(ring->owner_seed, seed, 32);
	memcpy(ring->writer_seed, seed, 32);
	ring->n_epochs = 2;
	ring->epochs[0].epoch = 1;
	ring->epochs[1].epoch = 2;
	scl_buf_clear(&buf2);
	check(scl_capsule_keyring_encode(&buf2, ring), "keyring");
	put("keyring", 1, buf2.ptr, buf2.len);
	{
		/* the same body inside a key file envelope */
		char path[4096];
		FILE *f;
		long n;
		snprintf(path, sizeof(path), "%s/.tmp-keyfile", root);
		remove(path);
		check(scl_keyfile_write(path, SCL_KEYFILE_KEYRING,
			  scl_buf_slice(&buf2)), "keyfile");
		f = fopen(path, "rb");
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		check(scl_buf_resize(&buf2, (size_t)n), "r");
		if (fread(buf2.ptr, 1, (size_t)n, f) != (size_t)n)
			return 1;
		fclose(f);
		remove(path);
		put("keyring", 2, buf2.ptr, buf2.len);
	}

	for (int s = 1; s <= 8; s += 3) {
		scl_buf_clear(&buf2);
		check(scl_capsule_proof_build(&buf2, &src, scl_buf_slice(&buf),
			  scl_slice_of(NULL, 0), owner.public_key,
			  (uint64_t)s), "proof");
		put("proof", s, buf2.ptr, buf2.len);
	}
	/* evidence: fork the chain at 4 and prove record 6 both ways */
	check(scl_capsule_head_load(&head, &src, name, owner.public_key,
		  owner.public_key, 4), "head");
	check(scl_capsule_writer_new(&fork, name, SCL_AEAD_AES256GCM, &owner, 1,
		  key, &head), "fork");
	memset(&c2, 0, sizeof(c2));
	for (int i = 0; i < 4; i++) {
		scl_buf_init(&c2.rec[i]);
		scl_buf_init(&c2.hb[i]);
		check(scl_buf_set(&c2.rec[i], scl_buf_slice(&c.rec[i])), "c");
		check(scl_buf_set(&c2.hb[i], scl_buf_slice(&c.hb[i])), "c");
	}
	c2.n = 4;
	grow(&c2, fork, 4, "fork");
	scl_buf_clear(&buf2);
	check(scl_capsule_proof_build(&buf2, &src, scl_buf_slice(&buf),
		  scl_slice_of(NULL, 0), owner.public_key, 6), "proof a");
	{
		struct scl_buf pb;
		scl_buf_init(&pb);
		check(scl_capsule_proof_build(&pb, &src2, scl_buf_slice(&buf),
			  scl_slice_of(NULL, 0), owner.public_key, 6),
		    "proof b");
		check(scl_capsule_evidence_build(&ev, scl_buf_slice(&buf2),
			  scl_buf_slice(&pb)), "evidence");
		scl_buf_dispose(&pb);
	}
	put("proof", 100, ev.ptr, ev.len);

	/* proto: one frame of every type, requests and replies, with the
	 * chain's real records and heartbeats in the lists. */
	{
		static const uint8_t types[] = { SCL_MSG_STATUS,
			SCL_MSG_META_PUT, SCL_MSG_META_GET, SCL_MSG_APPEND,
			SCL_MSG_READ, SCL_MSG_READ_HASH, SCL_MSG_HEADS,
			SCL_MSG_HEARTBEAT, SCL_MSG_PROOF, SCL_MSG_SUBSCRIBE,
			SCL_MSG_SYNC, SCL_MSG_EVIDENCE };
		struct scl_slice recs[8], hbs[2];
		struct scl_msg msg;
		struct scl_buf f, entry;
		uint64_t seqnos[1] = { 8 };
		int k = 1;
		scl_buf_init(&f);
		scl_buf_init(&entry);
		for (int i = 0; i < 8; i++)
			recs[i] = scl_buf_slice(&c.rec[i]);
		hbs[0] = scl_buf_slice(&c.hb[3]);
		hbs[1] = scl_buf_slice(&c.hb[7]);
		check(scl_sync_entry_encode(&entry, name,
			  (const uint8_t(*)[32])owner.public_key, seqnos,
			  (const uint8_t(*)[32])name, 1),
		    "entry");
		for (size_t t = 0; t < sizeof(types); t++)
			for (int reply = 0; reply < 2; reply++) {
				memset(&msg, 0, sizeof(msg));
				msg.type = (uint8_t)(types[t] |
				    (reply ? SCL_MSG_REPLY : 0));
				msg.id = (uint64_t)k;
				memcpy(msg.name, name, 32);
				memcpy(msg.writer, owner.public_key, 32);
				msg.from = 1;
				msg.to = 8;
				msg.blob = types[t] == SCL_MSG_APPEND
				    ? hbs[1] : scl_buf_slice(&buf);
				scl_buf_clear(&f);
				if (types[t] == SCL_MSG_SYNC && reply)
					check(scl_msg_encode(&f, &msg,
						  (struct scl_slice[]){
						      scl_buf_slice(&entry) },
						  1, NULL, 0), "sync");
				else
					check(scl_msg_encode(&f, &msg, recs, 8,
						  hbs, 2), "frame");
				put("proto", k++, f.ptr, f.len);
			}
		scl_buf_clear(&f);
		check(scl_msg_encode_error(&f, 3, SCL_WIRE_GAP, 7, "behind"),
		    "error");
		put("proto", k, f.ptr, f.len);
		scl_buf_dispose(&f);
		scl_buf_dispose(&entry);
	}
	/* attest: sim evidence from a deterministic platform key */
	{
		struct scl_sign_key plat;
		uint8_t pseed[32], meas[32], rd[64];
		memset(pseed, 5, 32);
		memset(meas, 6, 32);
		memset(rd, 7, 64);
		scl_sign_key_from_seed(&plat, pseed);
		scl_buf_clear(&buf2);
		check(scl_attest_sim_evidence(&buf2, &plat, meas, rd), "ev");
		put("attest", 1, buf2.ptr, buf2.len);
		scl_sign_key_wipe(&plat);
	}
	/* core: request sequences (u16 length, bytes) as a host sends */
	{
		static const uint8_t sealed[SCL_CORE_WRAPPED_KEY_BYTES];
		uint8_t nonce[SCL_NONCE_BYTES] = { 0 };
		struct scl_core_install inst;
		struct scl_buf req, cb;
		struct scl_enc e;
		struct scl_slice payloads[2] = { { (const uint8_t *)"alpha", 5 },
			{ NULL, 0 } };
		scl_buf_init(&req);
		scl_buf_init(&cb);
		scl_buf_clear(&buf2);
		scl_enc_init(&e, &buf2);
		scl_enc_u16(&e, 1);
		scl_enc_u8(&e, SCL_CORE_INIT);
		check(scl_core_report_encode(&req, nonce), "report");
		scl_enc_u16(&e, (uint16_t)req.len);
		scl_enc_bytes(&e, req.ptr, req.len);
		put("core", 1, buf2.ptr, buf2.len);
		/* an installation: real metadata and certificate */
		check(scl_capsule_cert_encode(&cb, &cert, &owner), "c");
		memset(&inst, 0, sizeof(inst));
		inst.meta = scl_buf_slice(&buf);
		inst.cert = scl_buf_slice(&cb);
		inst.n_keys = 1;
		inst.keys[0].epoch = 1;
		inst.keys[0].wrapped = sealed;
		check(scl_core_install_encode(&req, &inst), "install");
		scl_enc_u16(&e, (uint16_t)req.len);
		scl_enc_bytes(&e, req.ptr, req.len);
		put("core", 2, buf2.ptr, buf2.len);
		/* a write request */
		check(scl_core_write_encode(&req, payloads, 2), "write");
		scl_enc_u16(&e, (uint16_t)req.len);
		scl_enc_bytes(&e, req.ptr, req.len);
		check(e.err, "core");
		put("core", 3, buf2.ptr, buf2.len);
		/* core_msg: the first byte picks the decoder (fuzz_core_msg) */
		{
			struct scl_buf cm, ops, res;
			struct scl_core_kv_reply kvh;
			struct scl_core_output o;
			struct scl_kvreq q = { .op = SCL_KVREQ_PUT };
			size_t at;
			uint8_t writer[SCL_WRITER_BYTES] = { 9 };
			scl_buf_init(&cm);
			scl_buf_init(&ops);
			scl_buf_init(&res);
			q.key = scl_slice_of("key", 3);
			q.value = scl_slice_of("value", 5);
			check(scl_kvreq_encode(&ops, &q), "kvreq");
			q.op = SCL_KVREQ_GET;
			check(scl_kvreq_encode(&ops, &q), "kvreq");
			/* 2: install, 3: write (requests without the op) */
			put_tagged("core_msg", 2, 2, req.ptr + 1, req.len - 1);
			check(scl_core_install_encode(&cm, &inst), "install");
			put_tagged("core_msg", 1, 2, cm.ptr + 1, cm.len - 1);
			put_tagged("core_msg", 3, 3, req.ptr + 1, req.len - 1);
			/* 5: KV_OPS with two groups */
			check(scl_core_ops_begin(&cm, 7), "ops");
			check(scl_core_ops_add(&cm, SCL_CORE_GROUP_DURABLE, 2,
			    scl_buf_slice(&ops)), "ops");
			check(scl_core_ops_add(&cm, 0, 1, scl_slice_of(ops.ptr,
			    16)), "ops");
			check(scl_core_ops_finish(&cm), "ops");
			put_tagged("core_msg", 4, 5, cm.ptr + 1, cm.len - 1);
			/* 6: KV_RECEIVE; 7: KV_TIMED */
			check(scl_core_receive_begin(&cm, 7), "receive");
			check(scl_core_receive_add(&cm, scl_slice_of("abc", 3)),
			    "receive");
			check(scl_core_receive_finish(&cm), "receive");
			put_tagged("core_msg", 5, 6, cm.ptr + 1, cm.len - 1);
			check(scl_core_timed_encode(&cm, 7, 2,
			    scl_buf_slice(&ops)), "timed");
			put_tagged("core_msg", 6, 7, cm.ptr + 1, cm.len - 1);
			/* 8: a KV reply with an output and a group's result */
			at = scl_core_group_result_begin(&res);
			scl_enc_init(&e, &res);
			scl_enc_u8(&e, 0);
			check(e.err, "results");
			check(scl_core_group_result_end(&res, at, SCL_OK, "",
			    3), "results");
			at = scl_core_group_result_begin(&res);
			check(scl_core_group_result_end(&res, at, SCL_ELIMIT,
			    "too big", 3), "results");
			check(scl_core_reply_begin(&cm, SCL_CORE_KV_OPS), "kv");
			check(scl_core_kv_reply_begin(&cm), "kv");
			memset(&o, 0, sizeof(o));
			o.kind = SCL_KV_OUT_FETCH;
			o.writer = writer;
			o.from = 1;
			o.to = 4;
			o.msg = scl_slice_of("cm", 1);
			check(scl_core_kv_reply_add(&cm, &o), "kv");
			memset(&kvh, 0, sizeof(kvh));
			kvh.through = 3;
			check(scl_core_kv_reply_finish(&cm, &kvh,
			    scl_buf_slice(&res)), "kv");
			put_tagged("core_msg", 7, 8, cm.ptr + 2, cm.len - 2);
			/* 9: KV_DURABLE */
			{
				struct scl_core_durable dh = { { 9 }, 12 };
				check(scl_core_durable_encode(&cm, 7, &dh, 1),
				    "durable");
				put_tagged("core_msg", 9, 9, cm.ptr + 1,
				    cm.len - 1);
			}
			/* 0: an error reply to KV_OPS ('V' >> 4 == 5) */
			check(scl_core_reply_error(&cm, 5, SCL_EVERIFY, "no"),
			    "error");
			put_tagged("core_msg", 8, 0x50, cm.ptr, cm.len);
			/* kvclient: a request and a reply frame */
			{
				struct scl_kvclient_request kq = {
					SCL_KVCLIENT_OPS, 42,
					SCL_KVCLIENT_DURABLE, 2,
					scl_buf_slice(&ops) };
				struct scl_kvclient_reply kr = {
					SCL_KVCLIENT_OPS, 42, SCL_OK,
					scl_slice_of("\0", 1) };
				check(scl_kvclient_request_encode(&cm, &kq),
				    "kvclient");
				put("kvclient", 1, cm.ptr, cm.len);
				check(scl_kvclient_reply_encode(&cm, &kr),
				    "kvclient");
				put("kvclient", 2, cm.ptr, cm.len);
			}
			scl_buf_dispose(&cm);
			scl_buf_dispose(&ops);
			scl_buf_dispose(&res);
		}
		scl_buf_dispose(&req);
		scl_buf_dispose(&cb);
	}
	/* kv: messages from the owner of fuzz_kv's capsule, as a replica
	 * receives them (u32 length, bytes) */
	{
		struct scl_capsule_meta km;
		struct scl_capsule_keyring *kr = calloc(1, sizeof(*kr));
		struct scl_actors *act;
		struct scl_kv *kv;
		struct scl_kv_options ko;
		struct scl_kv_output o;
		struct scl_buf kmeta, all;
		uint64_t through;
		int k = 1;
		memset(&km, 0, sizeof(km));
		memcpy(km.owner, owner.public_key, 32);
		km.created_us = 1764000000000000ull;
		km.aead = SCL_AEAD_AES256GCM;
		km.replicas = km.write_quorum = 1;
		scl_buf_init(&kmeta);
		scl_buf_init(&all);
		check(scl_capsule_meta_encode(&kmeta, &km, &owner), "kv meta");
		scl_capsule_name(kr->capsule, scl_buf_slice(&kmeta));
		kr->n_epochs = 1;
		kr->epochs[0].epoch = 1;
		memset(kr->epochs[0].key, 4, 32);
		memset(&ko, 0, sizeof(ko));
		ko.meta = scl_buf_slice(&kmeta);
		ko.keys = kr;
		ko.sign = &owner;
		ko.batch_max_puts = 3;
		check(scl_actors_new(&act, 1), "actors");
		ko.actors = act;
		check(scl_kv_new(&kv, &ko), "kv");
		for (int i = 0; i < 7; i++) {
			char kname[8], val[16];
			int kl = snprintf(kname, sizeof(kname), "k%d", i % 4);
			int vl = snprintf(val, sizeof(val), "value-%d", i);
			if (i == 5)
				check(scl_kv_delete(kv, scl_slice_of(kname,
					  (size_t)kl), 1), "del");
			else
				check(scl_kv_put(kv, scl_slice_of(kname,
					  (size_t)kl), scl_slice_of(val,
					  (size_t)vl), 1), "put");
		}
		check(scl_kv_flush(kv, &through), "flush");
		check(scl_kv_drain(kv), "drain");
		check(scl_kv_tick(kv, 1000000), "tick");
		scl_kv_output_init(&o);
		while (scl_kv_next_output(kv, &o)) {
			uint8_t len[4];
			scl_le32_store(len, (uint32_t)o.msg.len);
			check(scl_buf_append(&all, len, 4), "kv");
			check(scl_buf_append(&all, o.msg.ptr, o.msg.len), "kv");
			scl_buf_clear(&buf2);
			check(scl_buf_append(&buf2, len, 4), "kv");
			check(scl_buf_append(&buf2, o.msg.ptr, o.msg.len), "kv");
			put("kv", k++, buf2.ptr, buf2.len);
		}
		put("kv", k, all.ptr, all.len);
		scl_kv_output_dispose(&o);
		scl_kv_free(kv);
		scl_actors_free(act);
		scl_buf_dispose(&kmeta);
		scl_buf_dispose(&all);
		scl_capsule_keyring_wipe(kr);
		free(kr);
	}
	/* router: one frame of each type */
	{
		struct scl_router_msg rm;
		memset(&rm, 0, sizeof(rm));
		memcpy(rm.name, name, 32);
		for (int t = SCL_ROUTER_SUB; t <= SCL_ROUTER_STATUS; t++) {
			rm.type = (enum scl_router_msg_type)t;
			rm.payload = scl_slice_of("{\"payload\":1}", 13);
			check(scl_router_msg_encode(&buf2, &rm), "router");
			put("router", t, buf2.ptr, buf2.len);
		}
		put("router", 1, "loss=0.3,dup=0.1,reorder=0.2,seed=7", 35);
	}
	printf("corpus written under %s\n", root);
	for (int i = 0; i < c.n; i++) {
		scl_buf_dispose(&c.rec[i]);
		scl_buf_dispose(&c.hb[i]);
	}
	for (int i = 0; i < c2.n; i++) {
		scl_buf_dispose(&c2.rec[i]);
		scl_buf_dispose(&c2.hb[i]);
	}
	scl_capsule_writer_free(w);
	scl_capsule_writer_free(fork);
	scl_buf_dispose(&buf);
	scl_buf_dispose(&buf2);
	scl_buf_dispose(&ev);
	scl_capsule_keyring_wipe(ring);
	free(ring);
	scl_sign_key_wipe(&owner);
	return 0;
}
