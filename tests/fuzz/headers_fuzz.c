/*
 * headers_fuzz.c - libFuzzer target for the header handling of
 * portcullis: milter/authres.c (ar_is_ours(), which decides which
 * incoming Authentication-Results headers are forgeries of ours and are
 * removed, RFC 8601 5; ar_build(), which writes ours from values taken
 * from the message and the envelope), milter/addr.c's From parser
 * (addr_header_from(), addr_header_domains()) and milter/tag.c
 * (tag_subject(), the rewritten Subject).
 * Input: 1 control byte, then fields separated by NUL bytes:
 *   0 a header value as received (A-R, From and Subject), 1 an
 *   authserv-id, 2 spf result, 3 smtp.mailfrom, 4 smtp.helo, 5 DKIM d=,
 *   6 DKIM s=, 7 DKIM b=, 8 dmarc result, 9 p=, 10 sp=, 11 dis=,
 *   12 header.from.
 * Control bits 0-1: the spf result from field 2 (0) or from the valid
 * names; bits 2-3: the number of DKIM signatures (0-3); bit 4: the dmarc
 * result from field 8 or valid; bit 5: authserv-id from field 1.
 * Owns: per input, every result, freed before returning.
 * Errors: a broken contract aborts (a reported crash):
 * - ar_is_ours() gives different answers for the value and its upper-case
 *   copy; does not match "ID; ..." or "(comment) ID"; matches "IDx; ...";
 * - ar_build() fails on valid results; its value is over AR_VALUE_MAX,
 *   holds CR, a NUL, a control other than LF+TAB folding, does not start
 *   with "ID;", has a ';' outside quoted-strings and comments other than
 *   the method separators, or is not recognised as ours by ar_is_ours();
 * - tag_subject() gives a value with CR, a LF not followed by WSP, a NUL
 *   or a line over TAG_LINE_MAX (with "Subject: ").
 *
 * Build: see tests/fuzz/README.md (run.sh links it with libfz.a)
 *   ./headers_fuzz -max_len=16384 -dict=tests/fuzz/headers.dict \
 *       tests/fuzz/corpus/headers
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "authres.h"
#include "tag.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "headers_fuzz: broken: %s (line %d)\n", #c, \
		    __LINE__); \
		abort(); \
	} \
} while (0)

#define FZ_FIELDS 13

static const char *const fz_spf[] = {
	"none", "neutral", "pass", "fail", "softfail", "policy",
	"temperror", "permerror"
};
static const char *const fz_dkim[] = {
	"pass", "fail", "neutral", "policy", "temperror", "permerror", "none"
};
static const char *const fz_dmarc[] = {
	"none", "pass", "fail", "temperror", "permerror"
};

/* An authserv-id as config.c accepts it. */
static bool
fz_id_ok(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > 255)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
		    v[i] != '-' && v[i] != '_')
			return false;
	return true;
}

static char *
fz_cat(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	char *s = malloc(alen + blen + 1);

	FZ_CHECK(s != NULL);
	memcpy(s, a, alen);
	memcpy(s + alen, b, blen);
	s[alen + blen] = '\0';
	return s;
}

static void
fz_is_ours(const char *v, size_t n, const char *id)
{
	char *up, *s;
	size_t i;
	bool ours;

	ours = ar_is_ours(v, n, id);
	up = malloc(n + 1);
	FZ_CHECK(up != NULL);
	for (i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)v[i]);
	up[n] = '\0';
	FZ_CHECK(ar_is_ours(up, n, id) == ours);
	free(up);
	/* our id first is ours, whatever follows */
	s = fz_cat(id, "; ", 2);
	up = fz_cat(s, v, n);
	FZ_CHECK(ar_is_ours(up, strlen(s) + n, id));
	free(up);
	free(s);
	s = fz_cat(" (a comment (nested) \\) ) ", id, strlen(id));
	FZ_CHECK(ar_is_ours(s, strlen(s), id));
	free(s);
	/* a longer token is another id */
	s = fz_cat(id, "x.evil; spf=pass", 16);
	FZ_CHECK(!ar_is_ours(s, strlen(s), id));
	free(s);
}

static void
fz_check_ar(const char *out, const char *id, size_t ndkim)
{
	size_t i, n = strlen(out), semis = 0, depth = 0;
	bool quoted = false;

	FZ_CHECK(n <= AR_VALUE_MAX);
	FZ_CHECK(strncmp(out, id, strlen(id)) == 0 && out[strlen(id)] == ';');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		FZ_CHECK(c != '\r');
		if (c == '\n')
			FZ_CHECK(out[i + 1] == '\t');
		else if (c < 0x20 || c == 0x7f)
			FZ_CHECK(c == '\t');
		if (quoted) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quoted = false;
		} else if (depth > 0) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '"')
			quoted = true;
		else if (c == '(')
			depth++;
		else if (c == ';')
			semis++;
	}
	FZ_CHECK(!quoted && depth == 0);
	/* "ID; spf; dkim...; dmarc": one ';' after the id, one per method
	 * but the last */
	FZ_CHECK(semis == 2 + (ndkim == 0 ? 1 : ndkim));
	FZ_CHECK(ar_is_ours(out, n, id));
}

static void
fz_tag(const char *tag, const char *v, size_t n)
{
	char *out = (char *)1;
	size_t i, len, col;

	if (tag_subject(tag, v, n, &out) != 0) {
		FZ_CHECK(out == NULL);
		return;
	}
	if (out == NULL)
		return;
	len = strlen(out);
	col = 9;	/* "Subject: " */
	for (i = 0; i < len; i++) {
		FZ_CHECK(out[i] != '\r');
		if (out[i] == '\n') {
			FZ_CHECK(out[i + 1] == ' ' || out[i + 1] == '\t');
			col = 0;
			continue;
		}
		FZ_CHECK(++col <= TAG_LINE_MAX);
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	const char *f[FZ_FIELDS];
	size_t flen[FZ_FIELDS], nf = 0, i, start;
	struct ar_dkim_sig sig[3];
	struct ar_input in;
	unsigned ctrl;
	char *buf, *out, *a, *d, **doms = NULL;
	const char *id = "mx.example.org";
	size_t nd = 0;
	int rc;

	if (!init) {
		addr_init();
		tag_init();
		init = true;
	}
	if (size < 1)
		return 0;
	ctrl = data[0];
	/* the fields, each NUL-terminated in a copy */
	buf = malloc(size);
	FZ_CHECK(buf != NULL);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	for (start = 0, i = 0; i < size && nf < FZ_FIELDS; i++)
		if (buf[i] == '\0') {
			f[nf] = buf + start;
			flen[nf++] = i - start;
			start = i + 1;
			if (start >= size)
				break;
		}
	for (i = nf; i < FZ_FIELDS; i++) {
		f[i] = "";
		flen[i] = 0;
	}
	/* field 0 as any header value: raw bytes up to the next field */
	if ((ctrl & 32) && fz_id_ok(f[1]))
		id = f[1];

	fz_is_ours(f[0], flen[0], id);
	fz_is_ours(f[0], flen[0], "mx.example.org");
	fz_tag("[EXTERNAL]", f[0], flen[0]);
	if (flen[1] > 0)
		fz_tag(f[1], f[0], flen[0]);
	if (addr_header_from(f[0], flen[0], &a, &d) > 0) {
		FZ_CHECK(a != NULL && d != NULL);
		free(a);
		free(d);
	}
	(void)addr_header_domains(f[0], flen[0], &doms, &nd, 8);
	for (i = 0; i < nd; i++)
		free(doms[i]);
	free(doms);

	memset(&in, 0, sizeof(in));
	in.authserv_id = id;
	in.spf = (ctrl & 3) == 0 ? f[2] : fz_spf[(flen[2] + ctrl) % 8];
	in.smtp_mailfrom = f[3];
	in.smtp_helo = f[4];
	in.ndkim = (ctrl >> 2) & 3;
	for (i = 0; i < in.ndkim; i++) {
		memset(&sig[i], 0, sizeof(sig[i]));
		sig[i].result = fz_dkim[(flen[5] + i) % 7];
		sig[i].bits = (unsigned)(flen[6] * 256);
		sig[i].domain = i == 1 ? f[12] : f[5];
		sig[i].selector = f[6];
		sig[i].b = f[7];
		sig[i].ed25519 = (ctrl & 64) != 0;
		sig[i].partial_body = (ctrl & 128) != 0;
		sig[i].testing = i == 2;
	}
	in.dkim = sig;
	in.dmarc = (ctrl & 16) ? fz_dmarc[flen[8] % 5] : f[8];
	in.dmarc_p = f[9];
	in.dmarc_sp = f[10];
	in.dmarc_dis = f[11];
	in.header_from = f[12];
	out = (char *)1;
	rc = ar_build(&in, &out);
	if ((ctrl & 3) != 0 && (ctrl & 16) != 0)
		FZ_CHECK(rc == 0);	/* valid results always build */
	if (rc != 0)
		FZ_CHECK(out == NULL);
	else {
		FZ_CHECK(out != NULL);
		fz_check_ar(out, id, in.ndkim);
		free(out);
	}
	free(buf);
	return 0;
}
