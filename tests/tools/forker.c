/*
 * forker.c - a writer that equivocates, for tests: it creates a capsule
 * on two servers (N=2, W=1) owned by a fresh key, writes records 1..5 to
 * both, then signs two different records at seqno 6 and sends one to
 * each server.  Both are validly signed: only comparing the two servers'
 * records can show the fork.
 *
 * Usage: forker MODE SERVER_A SERVER_B [THEN_MS]
 *   MODE owner: the owner's own chain forks;
 *   MODE writer: a writer the owner certified forks (its record 1 is
 *   its certificate).
 * Prints the capsule name and the forking writer, one per line.  With
 * THEN_MS it waits that long and tries to append record 7 to server A,
 * printing "record 7 stored" or "record 7 refused: <why>".
 */
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scl/scl.h"

static void
check(enum scl_err e, const char *what)
{
	if (e != SCL_OK) {
		fprintf(stderr, "forker: %s: %s\n", what, scl_err_last());
		exit(1);
	}
}

/* Seals @payload as @w's next record and stores it with @c. */
static void
write_one(struct scl_capsule_writer *w, struct scl_client *c,
    enum scl_record_type type, struct scl_slice payload, unsigned quorum)
{
	struct scl_capsule_batch b;

	scl_capsule_batch_init(&b);
	check(scl_capsule_writer_append(w, &b, type, payload), "seal");
	check(scl_capsule_writer_seal_batch(w, &b, 1), "sign");
	check(scl_client_append(c, &b, quorum, NULL), "append");
	scl_capsule_batch_dispose(&b);
}

int
main(int argc, char **argv)
{
	const char *servers[2];
	struct scl_sign_key owner, signer;
	struct scl_capsule_meta m;
	struct scl_capsule_head head;
	struct scl_capsule_writer *w, *copy;
	struct scl_client *both, *a, *b;
	struct scl_buf meta, cert;
	uint8_t name[SCL_NAME_BYTES], data_key[SCL_AEAD_KEY_BYTES];
	char hex[2 * SCL_NAME_BYTES + 1];
	bool certified;

	if ((argc != 4 && argc != 5) || (strcmp(argv[1], "owner") != 0 &&
			     strcmp(argv[1], "writer") != 0))
		return fprintf(stderr, "usage: forker owner|writer SERVER_A "
				       "SERVER_B\n"), 2;
	certified = strcmp(argv[1], "writer") == 0;
	servers[0] = argv[2];
	servers[1] = argv[3];
	check(scl_init(), "init");
	scl_sign_keygen(&owner);
	memset(&m, 0, sizeof(m));
	memcpy(m.owner, owner.public_key, SCL_SIGN_PUBLIC_BYTES);
	m.created_us = scl_clock_wall_us();
	m.aead = SCL_AEAD_AES256GCM;
	m.replicas = 2;
	m.write_quorum = 1;
	m.n_servers = 2;
	snprintf(m.label, sizeof(m.label), "fork test");
	snprintf(m.servers[0], sizeof(m.servers[0]), "%s", servers[0]);
	snprintf(m.servers[1], sizeof(m.servers[1]), "%s", servers[1]);
	scl_buf_init(&meta);
	scl_buf_init(&cert);
	check(scl_capsule_meta_encode(&meta, &m, &owner), "metadata");
	scl_capsule_name(name, scl_buf_slice(&meta));
	check(scl_client_new(&both, servers, 2, NULL), "servers");
	check(scl_client_new(&a, &servers[0], 1, NULL), "server A");
	check(scl_client_new(&b, &servers[1], 1, NULL), "server B");
	check(scl_client_create(both, scl_buf_slice(&meta), 2), "create");
	scl_random(data_key, sizeof(data_key));
	signer = owner;
	if (certified) {
		struct scl_capsule_cert c;
		struct scl_box_key box;
		scl_sign_keygen(&signer);
		scl_box_keygen(&box);
		memset(&c, 0, sizeof(c));
		memcpy(c.capsule, name, SCL_NAME_BYTES);
		memcpy(c.writer, signer.public_key, SCL_WRITER_BYTES);
		memcpy(c.box_key, box.public_key, SCL_BOX_PUBLIC_BYTES);
		c.issued_us = m.created_us;
		check(scl_capsule_cert_encode(&cert, &c, &owner), "cert");
		scl_box_key_wipe(&box);
	}
	memset(&head, 0, sizeof(head));
	check(scl_capsule_writer_new(&w, name, m.aead, &signer, 1, data_key,
	    &head), "writer");
	if (certified)
		write_one(w, both, SCL_RECORD_CERT, scl_buf_slice(&cert), 2);
	while (scl_capsule_writer_head(w)->seqno < 5)
		write_one(w, both, SCL_RECORD_DATA, scl_slice_of("same", 4), 2);
	/* A copy of the writer's state, as a restored backup holds it. */
	check(scl_capsule_writer_new(&copy, name, m.aead, &signer, 1,
	    data_key, scl_capsule_writer_head(w)), "copy");
	write_one(w, a, SCL_RECORD_DATA, scl_slice_of("left", 4), 1);
	write_one(copy, b, SCL_RECORD_DATA, scl_slice_of("right", 5), 1);
	printf("%s\n", scl_hex_encode(hex, name, SCL_NAME_BYTES));
	printf("%s\n", scl_hex_encode(hex, signer.public_key, SCL_WRITER_BYTES));
	fflush(stdout);
	if (argc == 5) {
		struct scl_capsule_batch next;
		usleep((useconds_t)atoi(argv[4]) * 1000);
		scl_capsule_batch_init(&next);
		check(scl_capsule_writer_append(w, &next, SCL_RECORD_DATA,
		    scl_slice_of("later", 5)), "seal");
		check(scl_capsule_writer_seal_batch(w, &next, 2), "sign");
		if (scl_client_append(a, &next, 1, NULL) == SCL_OK)
			printf("record 7 stored\n");
		else
			printf("record 7 refused: %s\n", scl_err_last());
		scl_capsule_batch_dispose(&next);
	}
	scl_capsule_writer_free(w);
	scl_capsule_writer_free(copy);
	scl_client_free(both);
	scl_client_free(a);
	scl_client_free(b);
	scl_buf_dispose(&meta);
	scl_buf_dispose(&cert);
	scl_sign_key_wipe(&owner);
	scl_sign_key_wipe(&signer);
	return 0;
}
