/*
 * uriscan_test.c - unit tests for milter/uriscan.c (URL host keys).
 * Owns: the cases read from tests/data/uri/cases.txt (format at the top of
 * that file), one cmocka test each; plus table-driven uri_host_key() rows
 * and tests of the limits (keys, depth, bytes per part, long lines).
 * Every corpus case is fed with LF and with CRLF line ends, each whole,
 * one byte at a time and in pseudo-random chunks: all must give the same
 * keys in the same order.
 * Finds the corpus through $abs_top_srcdir or $srcdir (default ".").
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "uriscan.h"

#define KEYS_MAX	64	/* keys named by one case */
#define GOT_MAX		512	/* keys recorded of one run */

struct ucase {
	char	*name;
	int	 line;			/* in cases.txt */
	char	*keys[KEYS_MAX];	/* must be emitted (and, unless
					 * "extra", nothing else) */
	size_t	 nkeys;
	char	*nots[KEYS_MAX];	/* must not be emitted */
	size_t	 nnots;
	bool	 truncated, extra;
	struct uriscan_limits lim;
	char	*msg;			/* LF line ends, expanded */
	size_t	 len;
};

struct got {
	char	*keys[GOT_MAX];
	bool	 ip[GOT_MAX];
	size_t	 n;
	bool	 overflow;
};

static struct ucase *cases;
static size_t ncases;

static void
record(void *ctx, const char *key, bool is_ip)
{
	struct got *g = ctx;
	size_t i;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->keys[i], key) == 0) {
			fail_msg("key %s emitted twice", key);
		}
	if (g->n == GOT_MAX) {
		g->overflow = true;
		return;
	}
	g->ip[g->n] = is_ip;
	g->keys[g->n++] = strdup(key);
}

static void
got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->keys[i]);
	g->n = 0;
}

/*
 * Feeds msg (headers, blank line, body) as a milter would: each header
 * field (folds kept, leading space of the value dropped) then the body in
 * chunks.  chunk: 0 whole, 1 byte by byte, else a seed for random sizes.
 */
static bool
feed(const struct uriscan_limits *lim, const char *msg, size_t len,
    unsigned chunk, struct got *g)
{
	struct uriscan *us;
	const char *p = msg, *end = msg + len, *eol, *colon, *b;
	char name[256], *value;
	size_t n, vlen;
	uint32_t rnd = chunk * 2654435761u + 1;
	bool trunc;

	us = uriscan_new(lim, record, g);
	assert_non_null(us);
	/* header fields up to the blank line */
	for (;;) {
		if (p >= end)
			break;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1;
			break;
		}
		/* the field: this line and its continuation lines */
		b = p;
		do {
			eol = memchr(p, '\n', (size_t)(end - p));
			p = eol != NULL ? eol + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		colon = memchr(b, ':', (size_t)(p - b));
		if (colon == NULL || (size_t)(colon - b) >= sizeof(name))
			continue;
		memcpy(name, b, (size_t)(colon - b));
		name[colon - b] = '\0';
		colon++;
		while (colon < p && (*colon == ' ' || *colon == '\t'))
			colon++;
		vlen = (size_t)(p - colon);
		/* libmilter drops the field's own line end */
		while (vlen > 0 && (colon[vlen - 1] == '\n' ||
		    colon[vlen - 1] == '\r'))
			vlen--;
		value = strndup(colon, vlen);
		assert_non_null(value);
		uriscan_header(us, name, value);
		free(value);
	}
	while (p < end) {
		if (chunk == 0)
			n = (size_t)(end - p);
		else if (chunk == 1)
			n = 1;
		else {
			rnd = rnd * 1103515245u + 12345u;
			n = 1 + (rnd >> 16) % 97;
		}
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		uriscan_body(us, (const unsigned char *)p, n);
		p += n;
	}
	uriscan_end(us);
	trunc = uriscan_truncated(us);
	uriscan_free(us);
	return trunc;
}

static bool
looks_ip(const char *k)
{
	unsigned a, b, c, d;
	char x;

	return sscanf(k, "%u.%u.%u.%u%c", &a, &b, &c, &d, &x) == 4;
}

static char *
to_crlf(const char *s, size_t len, size_t *outlen)
{
	char *o = malloc(2 * len + 1);
	size_t i, n = 0;

	assert_non_null(o);
	for (i = 0; i < len; i++) {
		if (s[i] == '\n')
			o[n++] = '\r';
		o[n++] = s[i];
	}
	o[n] = '\0';
	*outlen = n;
	return o;
}

static void
test_case(void **state)
{
	const struct ucase *c = *state;
	struct got ref = { 0 }, g;
	static const unsigned chunks[] = { 0, 1, 7, 8, 9 };
	char *crlf;
	size_t crlflen, i, j, v;
	bool trunc, t;

	print_message("# %s (cases.txt:%d)\n", c->name, c->line);
	crlf = to_crlf(c->msg, c->len, &crlflen);
	trunc = feed(&c->lim, c->msg, c->len, 0, &ref);
	assert_false(ref.overflow);
	for (i = 0; i < ref.n; i++)
		print_message("#   key %s%s\n", ref.keys[i],
		    ref.ip[i] ? " (ip)" : "");
	/* the same for every chunking and for CRLF */
	for (v = 0; v < 2; v++) {
		for (j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++) {
			memset(&g, 0, sizeof(g));
			t = v == 0 ? feed(&c->lim, c->msg, c->len, chunks[j],
			    &g) : feed(&c->lim, crlf, crlflen, chunks[j], &g);
			if (g.n != ref.n)
				fail_msg("%s: %zu keys with %s chunking %u, "
				    "%zu whole", c->name, g.n,
				    v ? "CRLF" : "LF", chunks[j], ref.n);
			for (i = 0; i < g.n; i++)
				assert_string_equal(g.keys[i], ref.keys[i]);
			assert_int_equal(t, trunc);
			got_free(&g);
		}
	}
	free(crlf);
	for (i = 0; i < ref.n; i++)
		assert_int_equal(ref.ip[i], looks_ip(ref.keys[i]));
	for (i = 0; i < c->nkeys; i++) {
		for (j = 0; j < ref.n; j++)
			if (strcmp(c->keys[i], ref.keys[j]) == 0)
				break;
		if (j == ref.n)
			fail_msg("%s: key %s missing", c->name, c->keys[i]);
	}
	for (i = 0; i < c->nnots; i++)
		for (j = 0; j < ref.n; j++)
			if (strcmp(c->nots[i], ref.keys[j]) == 0)
				fail_msg("%s: key %s must not be emitted",
				    c->name, c->nots[i]);
	if (!c->extra && ref.n != c->nkeys)
		fail_msg("%s: %zu keys emitted, %zu expected", c->name, ref.n,
		    c->nkeys);
	assert_int_equal(trunc, c->truncated);
	got_free(&ref);
}

/* -- reading cases.txt -- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1)) != NULL) {
		if (fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return s;
}

/* Appends s[0..n) to the message, expanding {{COUNT*TEXT}}. */
static void
msg_append(struct ucase *c, const char *s, size_t n)
{
	const char *o, *star, *cl;
	size_t count, tl, k;

	while (n > 0) {
		o = memmem(s, n, "{{", 2);
		k = o != NULL ? (size_t)(o - s) : n;
		c->msg = realloc(c->msg, c->len + k + 1);
		assert_non_null(c->msg);
		memcpy(c->msg + c->len, s, k);
		c->len += k;
		s += k;
		n -= k;
		if (o == NULL)
			break;
		cl = memmem(s, n, "}}", 2);
		star = memchr(s, '*', n);
		assert_non_null(cl);
		assert_true(star != NULL && star < cl);
		count = strtoul(s + 2, NULL, 10);
		tl = (size_t)(cl - star - 1);
		c->msg = realloc(c->msg, c->len + count * tl + 1);
		assert_non_null(c->msg);
		for (k = 0; k < count; k++) {
			memcpy(c->msg + c->len, star + 1, tl);
			c->len += tl;
		}
		n -= (size_t)(cl + 2 - s);
		s = cl + 2;
	}
	c->msg[c->len] = '\0';
}

static void
words(char *s, char **v, size_t *n)
{
	char *w;

	while ((w = strsep(&s, " \t")) != NULL)
		if (*w != '\0') {
			assert_true(*n < KEYS_MAX);
			v[(*n)++] = strdup(w);
		}
}

static int
load_cases(void)
{
	const char *src = getenv("abs_top_srcdir");
	char path[1024], *text, *line, *next, *val;
	size_t len, cap = 0;
	struct ucase *c = NULL;
	bool inmsg = false;
	int lineno = 0;

	if (src == NULL)
		src = getenv("srcdir");
	snprintf(path, sizeof(path), "%s/tests/data/uri/cases.txt",
	    src != NULL ? src : ".");
	if ((text = slurp(path, &len)) == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		return -1;
	}
	for (line = text; *line != '\0'; line = next) {
		lineno++;
		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : line + strlen(line);
		if (strncmp(line, "=== ", 4) == 0) {
			if (ncases == cap) {
				cap = cap ? 2 * cap : 64;
				cases = realloc(cases, cap * sizeof(*cases));
				assert_non_null(cases);
			}
			c = &cases[ncases++];
			memset(c, 0, sizeof(*c));
			c->name = strndup(line + 4, (size_t)(next - line - 5));
			c->line = lineno;
			c->msg = strdup("");
			inmsg = false;
			continue;
		}
		if (c == NULL)
			continue;		/* documentation */
		if (inmsg) {
			msg_append(c, line, (size_t)(next - line));
			continue;
		}
		if (strncmp(line, "---", 3) == 0) {
			inmsg = true;
			continue;
		}
		val = strndup(line, (size_t)(next - line));
		val[strcspn(val, "\n")] = '\0';
		if (strncmp(val, "keys:", 5) == 0)
			words(val + 5, c->keys, &c->nkeys);
		else if (strncmp(val, "not:", 4) == 0)
			words(val + 4, c->nots, &c->nnots);
		else if (strstr(val, "truncated") != NULL ||
		    strstr(val, "extra") != NULL ||
		    strstr(val, "max_") != NULL) {
			c->truncated |= strstr(val, "truncated") != NULL;
			c->extra |= strstr(val, "extra") != NULL;
			if (strstr(val, "max_keys=") != NULL)
				c->lim.max_keys = (unsigned)strtoul(
				    strstr(val, "max_keys=") + 9, NULL, 10);
			if (strstr(val, "max_depth=") != NULL)
				c->lim.max_depth = (unsigned)strtoul(
				    strstr(val, "max_depth=") + 10, NULL, 10);
			if (strstr(val, "max_part=") != NULL)
				c->lim.max_part_scan = strtoul(
				    strstr(val, "max_part=") + 9, NULL, 10);
		}
		free(val);
	}
	free(text);
	return 0;
}

static void
free_cases(void)
{
	size_t i, j;

	for (i = 0; i < ncases; i++) {
		free(cases[i].name);
		free(cases[i].msg);
		for (j = 0; j < cases[i].nkeys; j++)
			free(cases[i].keys[j]);
		for (j = 0; j < cases[i].nnots; j++)
			free(cases[i].nots[j]);
	}
	free(cases);
}

/* -- uri_host_key() -- */

static const struct {
	const char *raw;
	const char *key;	/* NULL: -1 */
	bool ip;
} hosts[] = {
	{ "evil-shop.com", "evil-shop.com", false },
	{ "WWW.Evil-Shop.COM", "evil-shop.com", false },
	{ "a.b.evil.co.uk", "evil.co.uk", false },
	{ "evil.co.uk", "evil.co.uk", false },
	{ "co.uk", NULL, false },
	{ "com", NULL, false },
	{ "localhost", NULL, false },
	{ "foo.github.io", "foo.github.io", false },
	{ "x.foo.github.io", "foo.github.io", false },
	{ "paypal.com@evil.com", "evil.com", false },
	{ "user:pass@evil.com:8080", "evil.com", false },
	{ "evil.com:80/path", "evil.com", false },
	{ "evil.com\\path", "evil.com", false },
	{ "evil.com.", "evil.com", false },
	{ "evil.com...", "evil.com", false },
	{ "%65vil.com", "evil.com", false },
	{ "evil%2ecom", "evil.com", false },
	{ "evil%2Ecom", "evil.com", false },
	{ "evil%00.com", NULL, false },
	{ "evil\xe3\x80\x82" "com", "evil.com", false },
	{ "evil\xef\xbc\x8e" "com", "evil.com", false },
	{ "evil\xef\xbd\xa1" "com", "evil.com", false },
	{ "evil%E3%80%82com", "evil.com", false },
	{ "b\xc3\xbc" "cher.de", "xn--bcher-kva.de", false },
	{ "B\xc3\x9c" "CHER.de", "xn--bcher-kva.de", false },
	{ "www.b\xc3\xbc" "cher.example", "xn--bcher-kva.example", false },
	{ "xn--bcher-kva.de", "xn--bcher-kva.de", false },
	{ "\xef\xbd\x85vil.com", "evil.com", false },	/* full-width e */
	/* nontransitional: sharp s kept */
	{ "fa\xc3\x9f.de", "xn--fa-hia.de", false },
	{ "\xff\xfe.com", NULL, false },
	{ "[2001:db8::1]", NULL, false },
	{ "[::1]:80", NULL, false },
	{ "192.168.0.1", "192.168.0.1", true },
	{ "3232235521", "192.168.0.1", true },
	{ "0300.0250.0.1", "192.168.0.1", true },
	{ "0xc0a80001", "192.168.0.1", true },
	{ "0XC0A80001", "192.168.0.1", true },
	{ "0xc0.0xa8.0.1", "192.168.0.1", true },
	{ "192.168.1", "192.168.0.1", true },
	{ "192.11010305", "192.168.1.1", true },
	{ "192.168.0.1.", "192.168.0.1", true },
	{ "192.168.0.1:8080", "192.168.0.1", true },
	{ "user@192.168.0.1", "192.168.0.1", true },
	{ "256.1.1.1", NULL, false },
	{ "1.2.3.4.5", NULL, false },
	{ "4294967296", NULL, false },
	{ "4294967295", "255.255.255.255", true },
	{ "09.1.1.1", NULL, false },
	{ "v1.2", NULL, false },
	{ "1.2.3.com", "3.com", false },
	{ "", NULL, false },
	{ "@", NULL, false },
	{ ".", NULL, false },
	{ "..evil.com", NULL, false },
	{ "evil..com", NULL, false },
	{ "ev il.com", NULL, false },
	{ "evil.com)", NULL, false },
	{ "-.com", "-.com", false },
	{ "a_b.evil.com", "evil.com", false },
	{ "xn--.com", "xn--.com", false },
	{ "evil.example", "evil.example", false },
	{ "www.evil.example", "evil.example", false },
	{ "label-longer-than-sixty-three-characters-is-not-a-valid-dns-label"
	  ".com", NULL, false },
};

static void
test_host_key(void **state)
{
	char out[256];
	bool ip;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		rc = uri_host_key(hosts[i].raw, strlen(hosts[i].raw), out,
		    sizeof(out), &ip);
		if (hosts[i].key == NULL) {
			if (rc != -1)
				fail_msg("%s: got %s, want -1", hosts[i].raw,
				    out);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: -1, want %s", hosts[i].raw,
			    hosts[i].key);
		if (strcmp(out, hosts[i].key) != 0 || ip != hosts[i].ip)
			fail_msg("%s: got %s ip=%d, want %s ip=%d",
			    hosts[i].raw, out, ip, hosts[i].key, hosts[i].ip);
	}
	/* short output buffer, length not NUL-bounded */
	assert_int_equal(uri_host_key("evil.com", 8, out, 8, &ip), -1);
	assert_int_equal(uri_host_key("evil.com", 8, out, 9, &ip), 0);
	assert_int_equal(uri_host_key("evil.comXYZ", 8, out, 9, &ip), 0);
	assert_string_equal(out, "evil.com");
	assert_int_equal(uri_host_key(NULL, 0, out, 9, &ip), -1);
}

/* -- limits and API edges -- */

static void
test_long_line(void **state)
{
	static const char *tails[] = {
		" http://evil-end.com/x\n",	/* after a space */
		"http://evil-end.com/x\n",	/* glued to the run */
		" evil-end.com\n",		/* bare, after a space */
	};
	struct got g;
	char *m;
	size_t n = 300 * 1024, i, t;

	(void)state;
	for (t = 0; t < 3; t++) {
		m = malloc(n + 64);
		assert_non_null(m);
		strcpy(m, "Content-Type: text/plain\n\n");
		i = strlen(m);
		for (; i < n; i++)
			m[i] = t == 0 ? "abc def "[i % 8] : 'x';
		strcpy(m + n, tails[t]);
		memset(&g, 0, sizeof(g));
		assert_false(feed(NULL, m, strlen(m), 0, &g));
		assert_int_equal(g.n, 1);
		assert_string_equal(g.keys[0], "evil-end.com");
		got_free(&g);
		memset(&g, 0, sizeof(g));
		assert_false(feed(NULL, m, strlen(m), 5, &g));
		assert_int_equal(g.n, 1);
		got_free(&g);
		free(m);
	}
}

static void
test_max_keys(void **state)
{
	struct uriscan_limits lim = { 0 };
	struct got g = { 0 };
	char *m, *p;
	size_t i;

	(void)state;
	m = malloc(300 * 40 + 64);
	assert_non_null(m);
	p = m + sprintf(m, "Subject: many\n\n");
	for (i = 0; i < 300; i++)
		p += sprintf(p, "http://host%zu-shop.com/\n", i);
	assert_true(feed(NULL, m, strlen(m), 0, &g));
	assert_int_equal(g.n, URISCAN_KEYS_DEFAULT);
	assert_string_equal(g.keys[0], "host0-shop.com");
	got_free(&g);
	lim.max_keys = 300;
	assert_false(feed(&lim, m, strlen(m), 0, &g));
	assert_int_equal(g.n, 300);
	got_free(&g);
	free(m);
}

static void
test_depth(void **state)
{
	struct uriscan_limits lim = { 0 };
	struct got g = { 0 };
	char *m, *p;
	int i, levels = 30;

	(void)state;
	m = malloc(200 * 64 + 256);
	assert_non_null(m);
	p = m + sprintf(m, "Content-Type: multipart/mixed; boundary=b0\n\n");
	for (i = 1; i <= levels; i++)
		p += sprintf(p, "--b%d\nContent-Type: multipart/mixed; "
		    "boundary=\"b%d\"\n\nhttp://pre%d-shop.com/ (preamble)\n",
		    i - 1, i, i);
	p += sprintf(p, "--b%d\n\nhttp://deep-shop.com/\n", levels);
	for (i = levels; i >= 0; i--)
		p += sprintf(p, "--b%d--\n", i);
	p += sprintf(p, "epilogue http://epi-shop.com/\n");
	/* default depth 20: the text at depth 31 is not reached */
	assert_true(feed(NULL, m, strlen(m), 1, &g));
	assert_int_equal(g.n, 0);
	got_free(&g);
	lim.max_depth = 40;
	assert_false(feed(&lim, m, strlen(m), 1, &g));
	assert_int_equal(g.n, 1);
	assert_string_equal(g.keys[0], "deep-shop.com");
	got_free(&g);
	free(m);
}

#define FILLER	"0123456789 0123456789 0123456789 0123456789 0123456789 "\
		"0123456789 0123456789 0123456789 0123456789 0123456789"

static void
test_part_limit(void **state)
{
	struct uriscan_limits lim = { .max_part_scan = 100 };
	struct got g = { 0 };
	const char *m = "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n"
	    "http://first-shop.com/ " FILLER " and far later "
	    "http://second-shop.com/"
	    "\n--x\n\nhttp://third-shop.com/\n--x--\n";

	(void)state;
	assert_true(feed(&lim, m, strlen(m), 0, &g));
	assert_int_equal(g.n, 2);
	assert_string_equal(g.keys[0], "first-shop.com");
	assert_string_equal(g.keys[1], "third-shop.com");
	got_free(&g);
}

static void
test_api_edges(void **state)
{
	struct uriscan *us;
	struct got g = { 0 };

	(void)state;
	assert_null(uriscan_new(NULL, NULL, NULL));
	uriscan_free(NULL);
	assert_false(uriscan_truncated(NULL));
	us = uriscan_new(NULL, record, &g);
	assert_non_null(us);
	uriscan_end(us);		/* no header, no body */
	uriscan_body(us, (const unsigned char *)"http://late.com\n", 16);
	uriscan_end(us);
	assert_int_equal(g.n, 0);
	uriscan_free(us);
	/* header after body is ignored; body without final newline */
	us = uriscan_new(NULL, record, &g);
	uriscan_body(us, (const unsigned char *)"see http://a-shop.com", 21);
	uriscan_header(us, "Content-Type", "application/octet-stream");
	uriscan_end(us);
	assert_int_equal(g.n, 1);
	uriscan_free(us);
	got_free(&g);
}

int
main(void)
{
	struct CMUnitTest *t;
	size_t i, n;
	int rc;
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_host_key),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_max_keys),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_part_limit),
		cmocka_unit_test(test_api_edges),
	};

	if (load_cases() < 0)
		return 1;
	n = sizeof(fixed) / sizeof(fixed[0]);
	t = calloc(n + ncases, sizeof(*t));
	if (t == NULL)
		return 1;
	memcpy(t, fixed, sizeof(fixed));
	for (i = 0; i < ncases; i++) {
		t[n + i].name = cases[i].name;
		t[n + i].test_func = test_case;
		t[n + i].initial_state = &cases[i];
	}
	rc = _cmocka_run_group_tests("uriscan", t, n + ncases, NULL, NULL);
	free(t);
	free_cases();
	return rc;
}
