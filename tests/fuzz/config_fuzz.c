/*
 * config_fuzz.c - libFuzzer target for milter/config.c, the
 * portcullis.conf parser (config_load(): lines, keys, socket specs,
 * resolver "IP@PORT", counts, store URLs, metrics addresses, the
 * cross-key checks and the "did you mean" suggestions).
 * Input: the file's bytes, written to one temporary file
 * (TMPDIR/portcullis-config-fuzz.XXXXXX/portcullis.conf) and loaded.
 * Owns: per input, the config and the diagnostics, freed before
 * returning, so LeakSanitizer sees every leak.
 * Errors: a broken contract of config.h aborts (a reported crash): NULL
 * without an error diagnostic, a config with one; a diagnostic that is
 * not "FILE..." or holds a control character other than tab; a loaded
 * config without socket, policy or authserv_id, with a relative policy
 * path, or with a value over its documented maximum.
 *
 * Build (run.sh builds the core objects once into libfz.a):
 *   see tests/fuzz/README.md
 *   ./config_fuzz -max_len=16384 -dict=tests/fuzz/config.dict \
 *       tests/fuzz/corpus/config
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "config_fuzz: broken: %s (line %d)\n", #c, \
		    __LINE__); \
		abort(); \
	} \
} while (0)

static char fz_path[4096];

static void
fz_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4000];

	if (fz_path[0] != '\0')
		return;
	snprintf(dir, sizeof(dir), "%s/portcullis-config-fuzz.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	FZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(fz_path, sizeof(fz_path), "%s/portcullis.conf", dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d = { 0 };
	struct config *c;
	FILE *fp;
	size_t i;

	fz_setup();
	FZ_CHECK((fp = fopen(fz_path, "w")) != NULL);
	FZ_CHECK(fwrite(data, 1, size, fp) == size);
	FZ_CHECK(fclose(fp) == 0);

	c = config_load(fz_path, &d);
	FZ_CHECK(d.nerrors <= d.n);
	if (c == NULL)
		FZ_CHECK(d.nerrors > 0);
	else
		FZ_CHECK(d.nerrors == 0);
	for (i = 0; i < d.n; i++) {
		const char *m = d.msgs[i], *p;

		FZ_CHECK(m != NULL);
		FZ_CHECK(strncmp(m, fz_path, strlen(fz_path)) == 0);
		/* user text is quoted into messages: no line breaks */
		for (p = m; *p != '\0'; p++)
			FZ_CHECK(*p != '\n');
	}
	if (c != NULL) {
		FZ_CHECK(c->socket != NULL && *c->socket != '\0');
		FZ_CHECK(c->policy != NULL && c->policy[0] == '/');
		FZ_CHECK(c->authserv_id != NULL && *c->authserv_id != '\0');
		FZ_CHECK(c->dns_timeout_ms <= CONFIG_DNS_TIMEOUT_MAX);
		FZ_CHECK(c->dnsbl_probe_ms <= CONFIG_PROBE_MAX);
		FZ_CHECK(c->uribl_max_lookups <= CONFIG_URIBL_LOOKUPS_MAX);
		FZ_CHECK(c->dkim_max_signatures <= CONFIG_DKIM_SIGS_MAX);
		FZ_CHECK(c->path != NULL && strcmp(c->path, fz_path) == 0);
		config_free(c);
	}
	diag_free(&d);
	return 0;
}
