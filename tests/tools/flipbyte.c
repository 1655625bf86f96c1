/*
 * flipbyte.c - test tool: corrupts one byte of a file the way a hostile
 * disk would.  Finds the first occurrence of a hex pattern and XORs the
 * byte DELTA bytes after its start with 0x01; prints the offset.
 *
 * Usage: flipbyte FILE HEXPATTERN DELTA
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
	unsigned char pat[256], *data;
	size_t plen, n;
	long size, delta;
	FILE *f;

	if (argc != 4 || strlen(argv[2]) % 2 || strlen(argv[2]) / 2 > 256) {
		fprintf(stderr, "usage: flipbyte FILE HEXPATTERN DELTA\n");
		return 2;
	}
	plen = strlen(argv[2]) / 2;
	for (size_t i = 0; i < plen; i++)
		if (sscanf(argv[2] + 2 * i, "%2hhx", &pat[i]) != 1)
			return 2;
	delta = strtol(argv[3], NULL, 10);
	if ((f = fopen(argv[1], "r+b")) == NULL)
		return perror(argv[1]), 1;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	data = malloc((size_t)size);
	if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size)
		return 1;
	for (n = 0; n + plen <= (size_t)size; n++)
		if (memcmp(data + n, pat, plen) == 0)
			break;
	if (n + plen > (size_t)size || (long)n + delta >= size) {
		fprintf(stderr, "flipbyte: pattern not found in %s\n", argv[1]);
		return 1;
	}
	data[n + (size_t)delta] ^= 1;
	fseek(f, (long)n + delta, SEEK_SET);
	fputc(data[n + (size_t)delta], f);
	fclose(f);
	printf("%ld\n", (long)n + delta);
	free(data);
	return 0;
}
