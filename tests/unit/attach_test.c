/*
 * attach_test.c - unit tests for milter/attach.c (attachment names,
 * archives, limits, the strip action).
 * Owns: the cases of tests/data/attach/expect.txt (format at its top; the
 * corpus and the file are made by tests/data/attach/gen.py) and of
 * expect2.txt (gen2.py: repeated names, broken multiparts, 1,000-deep
 * nesting), one cmocka
 * test each, run on the file as is and converted to CRLF; table-driven
 * attach_name_normalise() rows; generated hostile messages (1,000-deep
 * multipart and message/rfc822 nesting, 2,000 parts); the archive_bytes
 * memory bound (peak RSS growth of a forked child scanning the bombs,
 * under archive_bytes + BOMB_OVERHEAD); strip cases
 * whose output is scanned again.
 * Block list of every test: exe com scr bat js vbs lnk iso cmd hta.
 * Finds the corpus through $abs_top_srcdir or $srcdir (default ".");
 * temporary files go to $TMPDIR (default /tmp) and are removed.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "attach.h"

#define NAMES_MAX	64	/* names expected of one case */

struct acase {
	char	*file;
	int	 line;			/* in expect.txt */
	char	*names[NAMES_MAX];
	size_t	 nnames;
	char	*blocked[NAMES_MAX];
	size_t	 nblocked;
	bool	 encrypted;
	char	*limits;		/* expected limit_what prefix, or NULL */
	struct attach_limits lim;
};

static struct acase *cases;
static size_t ncases;
static const char *srcdir = ".";

static const char *block_exts[] = {
	"exe", "com", "scr", "bat", "js", "vbs", "lnk", "iso", "cmd", "hta",
};

/* The test policy: the extension of the last name component. */
static bool
blocked_fn(void *ctx, const char *name)
{
	const char *base = strrchr(name, '/'), *dot;
	size_t i;

	if (ctx != NULL)
		(*(unsigned *)ctx)++;
	base = base != NULL ? base + 1 : name;
	if ((dot = strrchr(base, '.')) == NULL)
		return false;
	for (i = 0; i < sizeof block_exts / sizeof block_exts[0]; i++)
		if (strcasecmp(dot + 1, block_exts[i]) == 0)
			return true;
	return false;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			cap = cap ? cap * 2 : 131072;
			p = realloc(p, cap);
			if (p == NULL)
				abort();
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	*len = n;
	return p;
}

/* An unlinked temporary file holding data. */
static int
tmp_fd(const void *data, size_t len)
{
	const char *t = getenv("TMPDIR");
	char path[1024];
	int fd;

	snprintf(path, sizeof path, "%s/attach_test.XXXXXX",
	    t != NULL ? t : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static int
corpus_fd(const char *file, bool crlf)
{
	char path[1024], *d, *o;
	size_t len, i, j;
	int fd;

	snprintf(path, sizeof path, "%s/tests/data/attach/%s", srcdir, file);
	d = slurp(path, &len);
	assert_non_null(d);
	if (!crlf || memchr(d, '\r', len) != NULL) {
		fd = tmp_fd(d, len);
		free(d);
		return fd;
	}
	o = malloc(2 * len + 1);
	assert_non_null(o);
	for (i = j = 0; i < len; i++) {
		if (d[i] == '\n')
			o[j++] = '\r';
		o[j++] = d[i];
	}
	fd = tmp_fd(o, j);
	free(o);
	free(d);
	return fd;
}

static void
check_result(const struct acase *c, const struct attach_result *r,
    const char *how)
{
	size_t i;

	/* cmocka's message buffer cuts long lines, newline included, which
	 * would glue the next TAP line onto this one: print a prefix. */
	for (i = 0; i < r->nnames; i++)
		print_message("  name %.200s%s\n", r->names[i],
		    strlen(r->names[i]) > 200 ? "..." : "");
	if (r->limits)
		print_message("  limits %s\n", r->limit_what);
	if (r->nnames != c->nnames)
		fail_msg("%s (%s, expect.txt:%d): %zu names, expected %zu",
		    c->file, how, c->line, r->nnames, c->nnames);
	for (i = 0; i < c->nnames; i++)
		if (strcmp(r->names[i], c->names[i]) != 0)
			fail_msg("%s (%s): name %zu is '%s', expected '%s'",
			    c->file, how, i, r->names[i], c->names[i]);
	if (r->nblocked != c->nblocked)
		fail_msg("%s (%s): %zu blocked, expected %zu", c->file, how,
		    r->nblocked, c->nblocked);
	for (i = 0; i < c->nblocked; i++)
		if (strcmp(r->blocked[i], c->blocked[i]) != 0)
			fail_msg("%s (%s): blocked %zu is '%s', expected '%s'",
			    c->file, how, i, r->blocked[i], c->blocked[i]);
	if (r->encrypted != c->encrypted)
		fail_msg("%s (%s): encrypted %d", c->file, how, r->encrypted);
	if (r->limits != (c->limits != NULL))
		fail_msg("%s (%s): limits %d (%s)", c->file, how, r->limits,
		    r->limit_what);
	if (c->limits != NULL && strncmp(r->limit_what, c->limits,
	    strlen(c->limits)) != 0)
		fail_msg("%s (%s): limit_what '%s', expected '%s'", c->file,
		    how, r->limit_what, c->limits);
}

static void
test_case(void **state)
{
	const struct acase *c = *state;
	struct attach_result r;
	int fd, crlf;

	for (crlf = 0; crlf < 2; crlf++) {
		fd = corpus_fd(c->file, crlf);
		assert_int_equal(attach_scan(fd, &c->lim, blocked_fn, NULL,
		    &r), 0);
		check_result(c, &r, crlf ? "CRLF" : "as is");
		attach_result_free(&r);
		close(fd);
	}
}

static void
set_lim(struct attach_limits *l, const char *kv, int line)
{
	unsigned long long v;
	const char *eq = strchr(kv, '=');

	if (eq == NULL)
		goto bad;
	v = strtoull(eq + 1, NULL, 10);
	if (strncmp(kv, "mime_depth=", 11) == 0)
		l->mime_depth = (unsigned)v;
	else if (strncmp(kv, "mime_parts=", 11) == 0)
		l->mime_parts = (unsigned)v;
	else if (strncmp(kv, "archive_depth=", 14) == 0)
		l->archive_depth = (unsigned)v;
	else if (strncmp(kv, "archive_entries=", 16) == 0)
		l->archive_entries = (unsigned)v;
	else if (strncmp(kv, "archive_bytes=", 14) == 0)
		l->archive_bytes = v;
	else
		goto bad;
	return;
bad:
	fprintf(stderr, "expect.txt:%d: bad lim '%s'\n", line, kv);
	abort();
}

static int
load_cases(const char *file)
{
	char path[1024], *text, *line, *next;
	size_t len;
	static size_t cap;
	struct acase *c = NULL;
	int lineno = 0;

	snprintf(path, sizeof path, "%s/tests/data/attach/%s", srcdir, file);
	if ((text = slurp(path, &len)) == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		return -1;
	}
	for (line = text; *line != '\0'; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (strncmp(line, "= ", 2) == 0) {
			if (ncases == cap) {
				cap = cap ? 2 * cap : 128;
				cases = realloc(cases, cap * sizeof *cases);
				if (cases == NULL)
					abort();
			}
			c = &cases[ncases++];
			memset(c, 0, sizeof *c);
			c->file = strdup(line + 2);
			c->line = lineno;
			continue;
		}
		if (c == NULL || *line == '#' || *line == '\0')
			continue;
		if (strncmp(line, "name ", 5) == 0 && c->nnames < NAMES_MAX)
			c->names[c->nnames++] = strdup(line + 5);
		else if (strncmp(line, "block ", 6) == 0 &&
		    c->nblocked < NAMES_MAX)
			c->blocked[c->nblocked++] = strdup(line + 6);
		else if (strcmp(line, "encrypted") == 0)
			c->encrypted = true;
		else if (strncmp(line, "limits=", 7) == 0)
			c->limits = strdup(line + 7);
		else if (strncmp(line, "lim ", 4) == 0)
			set_lim(&c->lim, line + 4, lineno);
		else {
			fprintf(stderr, "%s:%d: cannot parse\n", file,
			    lineno);
			free(text);
			return -1;
		}
	}
	free(text);
	return 0;
}

static void
free_cases(void)
{
	size_t i, j;

	for (i = 0; i < ncases; i++) {
		free(cases[i].file);
		free(cases[i].limits);
		for (j = 0; j < cases[i].nnames; j++)
			free(cases[i].names[j]);
		for (j = 0; j < cases[i].nblocked; j++)
			free(cases[i].blocked[j]);
	}
	free(cases);
}

/* ---- normalisation ---- */

static void
test_normalise(void **state)
{
	static const struct {
		const char *in, *out;
		size_t outlen;
	} rows[] = {
		{ "report.exe", "report.exe", 64 },
		{ "x.exe. . ", "x.exe", 64 },
		{ "x.exe...", "x.exe", 64 },
		{ " . .", "", 64 },
		{ "invoice\xe2\x80\xae" "fdp.exe", "invoicefdp.exe", 64 },
		{ "a\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad.js", "a.js",
		    64 },
		{ "\xe2\x81\xa6" "b\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9.js",
		    "b.js", 64 },
		{ "c\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c.js", "c.js", 64 },
		{ "p.e\xe2\x80\x8bxe", "p.exe", 64 },
		{ "p.e\xe2\x80\x8c\xe2\x80\x8dxe\xe2\x81\xa0\xef\xbb\xbf",
		    "p.exe", 64 },
		{ "soft\xc2\xad.scr", "soft.scr", 64 },
		{ "tab\t.exe\r\n", "tab.exe", 64 },
		{ "c1\xc2\x85.exe\x7f", "c1.exe", 64 },
		{ "bad\xff\xfe.lnk", "bad??.lnk", 64 },
		{ "overlong\xc0\xaf.exe", "overlong??.exe", 64 },
		{ "surrogate\xed\xa0\x80.exe", "surrogate???.exe", 64 },
		{ "past\xf4\x90\x80\x80.exe", "past????.exe", 64 },
		{ "cut\xe6\x97", "cut??", 64 },
		{ "r\xc3\xa9sum\xc3\xa9.pdf", "r\xc3\xa9sum\xc3\xa9.pdf", 64 },
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5", 6 },
		{ "abcdef", "abc", 4 },
		{ "", "", 1 },
		{ "x", "", 1 },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		memset(out, 'Z', sizeof out);
		attach_name_normalise(rows[i].in, out, rows[i].outlen);
		if (strcmp(out, rows[i].out) != 0)
			fail_msg("row %zu: '%s', expected '%s'", i, out,
			    rows[i].out);
	}
}

/* ---- generated hostile structure ---- */

struct sbuf {
	char	*p;
	size_t	 len, cap;
};

static void sb_add(struct sbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 1;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->len += (size_t)n;
}

static void
scan_buf(const struct sbuf *b, const struct attach_limits *lim,
    struct attach_result *r)
{
	int fd = tmp_fd(b->p, b->len);

	assert_int_equal(attach_scan(fd, lim, blocked_fn, NULL, r), 0);
	close(fd);
}

static void
test_deep_multipart(void **state)
{
	struct sbuf b = { NULL, 0, 0 };
	struct attach_result r;
	struct attach_limits lim = { 0 };
	int i;

	(void)state;
	sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n");
	for (i = 0; i < 1000; i++)
		sb_add(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n"
		    "\n--b%d\n", i, i);
	sb_add(&b, "Content-Type: application/octet-stream; "
	    "name=\"bottom.exe\"\n\nMZ\n");
	for (i = 999; i >= 0; i--)
		sb_add(&b, "--b%d--\n", i);
	scan_buf(&b, NULL, &r);
	assert_true(r.limits);
	assert_string_equal(r.limit_what, "mime_depth 30");
	assert_int_equal(r.nnames, 0);
	attach_result_free(&r);
	/* the ceiling: still far from GMime's own recursion limit */
	lim.mime_depth = 5000;
	scan_buf(&b, &lim, &r);
	assert_true(r.limits);
	assert_string_equal(r.limit_what, "mime_depth 100");
	attach_result_free(&r);
	/* within the limit, the name is found; without the close
	 * delimiters the multiparts are broken, but the name still counts */
	b.len = 0;
	sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n");
	for (i = 0; i < 30; i++)
		sb_add(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n"
		    "\n--b%d\n", i, i);
	sb_add(&b, "Content-Type: application/octet-stream; "
	    "name=\"bottom.exe\"\n\nMZ\n");
	scan_buf(&b, NULL, &r);
	assert_true(r.limits);
	assert_string_equal(r.limit_what,
	    "broken multipart: missing end boundary");
	assert_int_equal(r.nblocked, 1);
	assert_string_equal(r.blocked[0], "bottom.exe");
	attach_result_free(&r);
	for (i = 29; i >= 0; i--)
		sb_add(&b, "--b%d--\n", i);
	scan_buf(&b, NULL, &r);
	assert_false(r.limits);
	assert_int_equal(r.nblocked, 1);
	assert_string_equal(r.blocked[0], "bottom.exe");
	attach_result_free(&r);
	free(b.p);
}

static void
test_deep_rfc822(void **state)
{
	struct sbuf b = { NULL, 0, 0 };
	struct attach_result r;
	int i;

	(void)state;
	sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n");
	for (i = 0; i < 1000; i++)
		sb_add(&b, "Content-Type: message/rfc822\n\nSubject: %d\n", i);
	sb_add(&b, "Content-Type: application/octet-stream; "
	    "name=\"bottom.exe\"\n\nMZ\n");
	scan_buf(&b, NULL, &r);
	assert_true(r.limits);
	assert_string_equal(r.limit_what, "mime_depth 30");
	assert_int_equal(r.nnames, 0);
	attach_result_free(&r);
	/* alternating multipart and message, digest defaults */
	b.len = 0;
	sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n");
	for (i = 0; i < 1000; i++)
		sb_add(&b, "Content-Type: multipart/digest; boundary=d%d\n\n"
		    "--d%d\n\nSubject: x\n", i, i);
	scan_buf(&b, NULL, &r);
	assert_true(r.limits);
	attach_result_free(&r);
	free(b.p);
}

static void
test_many_parts(void **state)
{
	struct sbuf b = { NULL, 0, 0 };
	struct attach_result r;
	struct attach_limits lim = { 0 };
	int i;

	(void)state;
	sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"p\"\n\n");
	for (i = 0; i < 2000; i++)
		sb_add(&b, "--p\nContent-Type: application/octet-stream; "
		    "name=\"f%d.txt\"\n\nx\n", i);
	sb_add(&b, "--p--\n");
	scan_buf(&b, NULL, &r);
	assert_true(r.limits);
	assert_string_equal(r.limit_what, "mime_parts 1000");
	/* the top-level multipart is part 1 */
	assert_int_equal(r.nnames, 999);
	assert_string_equal(r.names[998], "f998.txt");
	attach_result_free(&r);
	lim.mime_parts = 3000;
	scan_buf(&b, &lim, &r);
	assert_false(r.limits);
	assert_int_equal(r.nnames, ATTACH_NAMES_MAX);
	attach_result_free(&r);
	free(b.p);
}

/* header fields of the message and its parts: ATTACH_HEADER_FIELDS_MAX
 * handed to GMime, the one after it is a limit (GMime's memory) */
static void
test_many_header_fields(void **state)
{
	struct sbuf b = { NULL, 0, 0 };
	struct attach_result r;
	int i, extra;

	(void)state;
	for (extra = 0; extra <= 1; extra++) {
		b.len = 0;
		/* 3 fields here, 1 in the part: 4 + the fillers */
		sb_add(&b, "From: a@example.org\nMIME-Version: 1.0\n"
		    "Content-Type: multipart/mixed; boundary=\"p\"\n");
		for (i = 0; i < ATTACH_HEADER_FIELDS_MAX - 4 + extra; i++)
			sb_add(&b, "X-Filler-%d: %d\n", i, i);
		sb_add(&b, "\n--p\nContent-Type: application/octet-stream; "
		    "name=\"a.exe\"\n\nMZ\n--p--\n");
		scan_buf(&b, NULL, &r);
		if (extra == 0) {
			assert_false(r.limits);
			assert_int_equal(r.nnames, 1);
			assert_string_equal(r.names[0], "a.exe");
		} else {
			assert_true(r.limits);
			assert_string_equal(r.limit_what,
			    "header_fields 10000");
			assert_int_equal(r.nnames, 0);
		}
		attach_result_free(&r);
	}
	free(b.p);
}

/* ---- archive_bytes honoured: memory ---- */

/*
 * Fixed overhead allowed on top of attachment_archive_bytes: GMime's
 * parse of the message, libarchive's readers (one per nesting level, with
 * their decompression windows) and the allocator's slack.  Archives are
 * streamed, so the measured growth is in fact far below the bound; a
 * scanner that buffered what it decompresses (256 MiB in these bombs)
 * would go past it.
 */
#define BOMB_OVERHEAD	((uint64_t)16 * 1024 * 1024)

struct bomb_out {
	long	 grew_kib;	/* peak RSS growth during the scan */
	int	 rv, limits;
	size_t	 nblocked;
	char	 what[96];
};

/*
 * Scans file in a child process with archive_bytes = bytes and reports
 * the growth of its peak RSS (ru_maxrss; a forked child starts with its
 * parent's resident size as its peak), so every measurement starts from
 * the same baseline whatever ran before.
 */
static void
bomb_measure(const char *file, uint64_t bytes, struct bomb_out *o)
{
	struct attach_limits lim = { 0 };
	struct attach_result r;
	struct rusage ru;
	int fd, pfd[2], st;
	long before;
	pid_t pid;

	lim.archive_bytes = bytes;
	fd = corpus_fd(file, false);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bomb_out c;

		memset(&c, 0, sizeof c);
		close(pfd[0]);
		if (getrusage(RUSAGE_SELF, &ru) != 0)
			_exit(2);
		before = ru.ru_maxrss;
		c.rv = attach_scan(fd, &lim, blocked_fn, NULL, &r);
		if (getrusage(RUSAGE_SELF, &ru) != 0)
			_exit(2);
		c.grew_kib = ru.ru_maxrss - before;
		c.limits = r.limits;
		c.nblocked = r.nblocked;
		snprintf(c.what, sizeof c.what, "%s", r.limit_what);
		if (write(pfd[1], &c, sizeof c) != (ssize_t)sizeof c)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], o, sizeof *o), (ssize_t)sizeof *o);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
}

static void
test_bomb_memory(void **state)
{
	static const char *files[] = {
		"bomb_nested_zip.eml", "bomb_tgz.eml",
	};
	static const uint64_t bounds[] = {
		(uint64_t)16 * 1024 * 1024, (uint64_t)1024 * 1024,
	};
	struct bomb_out o;
	char want[96];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		for (j = 0; j < sizeof bounds / sizeof bounds[0]; j++) {
			bomb_measure(files[i], bounds[j], &o);
			print_message("%s: archive_bytes %" PRIu64 ": peak RSS "
			    "grew %ld KiB (bound %" PRIu64 " KiB)\n", files[i],
			    bounds[j], o.grew_kib,
			    (bounds[j] + BOMB_OVERHEAD) / 1024);
			assert_int_equal(o.rv, 0);
			assert_true(o.limits);
			snprintf(want, sizeof want, "archive_bytes %" PRIu64,
			    bounds[j]);
			assert_string_equal(o.what, want);
			assert_int_equal(o.nblocked, 0);
			/* 256 MiB decompress inside: the growth stays under
			 * the configured bound plus the fixed overhead */
			assert_true(o.grew_kib >= 0);
			assert_true((uint64_t)o.grew_kib * 1024 <
			    bounds[j] + BOMB_OVERHEAD);
		}
}

/* ---- API edges ---- */

static void
test_api_edges(void **state)
{
	struct attach_result r;
	struct attach_stripped s;
	unsigned calls = 0;
	int fd;

	(void)state;
	assert_int_equal(attach_scan(-1, NULL, blocked_fn, NULL, &r), -1);
	attach_result_free(&r);
	attach_result_free(NULL);
	attach_stripped_free(NULL);
	fd = corpus_fd("zip_exe.eml", false);
	assert_int_equal(attach_scan(fd, NULL, NULL, NULL, &r), 0);
	assert_int_equal(r.nnames, 3);
	assert_int_equal(r.nblocked, 0);
	attach_result_free(&r);
	/* the callback sees each name once, normalised */
	assert_int_equal(attach_scan(fd, NULL, blocked_fn, &calls, &r), 0);
	assert_int_equal(calls, 3);
	attach_result_free(&r);
	assert_int_equal(attach_strip(fd, NULL, NULL, NULL, &s), 0);
	assert_int_equal(s.removed, 0);
	assert_null(s.body);
	attach_stripped_free(&s);
	close(fd);
}

/* ---- strip ---- */

/* Header of msg (up to the empty line) and where the body starts. */
static size_t
header_len(const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++)
		if (msg[i] == '\n' && (msg[i + 1] == '\n' ||
		    (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')))
			return i + 1;
	return len;
}

/* The original message with a new body and maybe new top fields. */
static char *
rebuild(const char *orig, size_t olen, const struct attach_stripped *s,
    size_t *len)
{
	size_t hl = header_len(orig, olen), o = 0;
	const char *nl = memchr(orig, '\r', hl) != NULL ? "\r\n" : "\n";
	char *m = malloc(olen + s->len + 1024);
	const char *line, *end;

	assert_non_null(m);
	for (line = orig; line < orig + hl; line = end) {
		end = memchr(line, '\n', (size_t)(orig + hl - line));
		end = end != NULL ? end + 1 : orig + hl;
		/* drop the top-level Content-* fields (attach.h), folds
		 * too */
		if (s->content_type != NULL &&
		    strncasecmp(line, "Content-", 8) == 0) {
			while (end < orig + hl && (*end == ' ' || *end == '\t')) {
				end = memchr(end, '\n',
				    (size_t)(orig + hl - end));
				end = end != NULL ? end + 1 : orig + hl;
			}
			continue;
		}
		memcpy(m + o, line, (size_t)(end - line));
		o += (size_t)(end - line);
	}
	if (s->content_type != NULL)
		o += (size_t)sprintf(m + o, "Content-Type: %s%sContent-Transfer-"
		    "Encoding: %s%s", s->content_type, nl, s->cte, nl);
	o += (size_t)sprintf(m + o, "%s", nl);
	memcpy(m + o, s->body, s->len);
	o += s->len;
	m[o] = '\0';
	*len = o;
	return m;
}

static void
strip_one(const char *file, bool crlf, unsigned removed, const char *notice,
    const char *const *kept)
{
	struct attach_stripped s;
	struct attach_result r;
	char path[1024], *orig, *m;
	size_t olen, mlen, i;
	int fd, fd2;

	fd = corpus_fd(file, crlf);
	assert_int_equal(attach_strip(fd, NULL, blocked_fn, NULL, &s), 0);
	assert_int_equal(s.removed, removed);
	assert_non_null(s.body);
	assert_int_equal(strlen(s.body), s.len);
	/* the output as the MTA would deliver it, scanned again */
	snprintf(path, sizeof path, "%s/tests/data/attach/%s", srcdir, file);
	orig = slurp(path, &olen);
	assert_non_null(orig);
	if (crlf) {
		char *c = malloc(2 * olen + 1);
		size_t j = 0;

		assert_non_null(c);
		for (i = 0; i < olen; i++) {
			if (orig[i] == '\n')
				c[j++] = '\r';
			c[j++] = orig[i];
		}
		c[j] = '\0';
		free(orig);
		orig = c;
		olen = j;
	}
	m = rebuild(orig, olen, &s, &mlen);
	fd2 = tmp_fd(m, mlen);
	assert_int_equal(attach_scan(fd2, NULL, blocked_fn, NULL, &r), 0);
	if (r.nblocked != 0)
		fail_msg("%s: '%s' still there", file, r.blocked[0]);
	assert_false(r.limits);
	attach_result_free(&r);
	close(fd2);
	if (strstr(s.body, notice) == NULL)
		fail_msg("%s: notice '%s' missing in:\n%s", file, notice,
		    s.body);
	if (crlf)
		assert_non_null(strstr(s.body, "\r\n"));
	/* the parts kept are byte-identical, CRLF as received */
	for (i = 0; kept != NULL && kept[i] != NULL; i++) {
		char *k = strdup(kept[i]), *c;
		size_t j = 0, n;

		assert_non_null(k);
		if (crlf) {
			c = malloc(2 * strlen(k) + 1);
			assert_non_null(c);
			for (n = 0; k[n] != '\0'; n++) {
				if (k[n] == '\n')
					c[j++] = '\r';
				c[j++] = k[n];
			}
			c[j] = '\0';
			free(k);
			k = c;
		}
		if (memmem(s.body, s.len, k, strlen(k)) == NULL)
			fail_msg("%s: kept part changed:\n%s\nin:\n%s", file, k,
			    s.body);
		free(k);
	}
	free(m);
	free(orig);
	attach_stripped_free(&s);
	close(fd);
}

#define TEXT_PART \
	"Content-Type: text/plain; charset=us-ascii\n" \
	"Content-Transfer-Encoding: 7bit\n\nPlease find the file attached.\n"

static void
test_strip(void **state)
{
	static const char *const text[] = { TEXT_PART, NULL };
	static const char *const nested[] = {
		"Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n"
		"level 5\n", "level 1\n", NULL,
	};
	static const char *const images[] = {
		"Content-Type: multipart/related", "Content-ID: <logo>\n",
		NULL,
	};
	static const char *const mixed[] = {
		TEXT_PART, "Content-Type: text/plain; name=\"ok.txt\"\n"
		"Content-Disposition: attachment; filename=\"ok.txt\"\n"
		"Content-Transfer-Encoding: base64\n\neA==\n", NULL,
	};
	static const char *const dig[] = {
		"Content-Type: text/plain\n\nplain\n", NULL,
	};
	struct attach_stripped s;
	int fd;

	(void)state;
	strip_one("plain_exe.eml", false, 1, "The attachment report.exe was "
	    "removed by the mail filter portcullis: files of this type are "
	    "not accepted.", text);
	strip_one("plain_exe.eml", true, 1, "The attachment report.exe was "
	    "removed", text);
	strip_one("zip_exe.eml", false, 1, "The attachment "
	    "docs.zip/bin/tool.exe was removed", text);
	strip_one("rfc822.eml", false, 1, "The attachment fwd.exe was removed",
	    text);
	strip_one("nested5.eml", false, 1, "The attachment deep.exe was "
	    "removed", nested);
	strip_one("many_blocked.eml", false, 6, "The attachment f.lnk was "
	    "removed", mixed);
	strip_one("rfc2231_charset.eml", false, 1, "Content-Transfer-Encoding:"
	    " quoted-printable\n\nThe attachment =E6=97=A5", text);
	strip_one("digest.eml", false, 1, "The attachment dig1.exe was "
	    "removed", dig);
	strip_one("zip_encrypted.eml", true, 1, "enc.zip/sub/tool.exe", text);
	strip_one("single_part_exe.eml", false, 1, "The attachment tool.exe "
	    "was removed", NULL);
	/* the blocked name is the part's second: the part goes all the
	 * same, and the notice names the blocked one */
	strip_one("dup_filename.eml", false, 1, "The attachment a.exe was "
	    "removed", NULL);
	strip_one("disp_all_four.eml", true, 1, "The attachment k4.hta was "
	    "removed", NULL);
	fd = corpus_fd("single_part_exe.eml", false);
	assert_int_equal(attach_strip(fd, NULL, blocked_fn, NULL, &s), 0);
	assert_string_equal(s.content_type, "text/plain; charset=us-ascii");
	assert_string_equal(s.cte, "7bit");
	attach_stripped_free(&s);
	close(fd);
	/* nothing blocked: nothing to do */
	fd = corpus_fd("inline_images.eml", false);
	assert_int_equal(attach_strip(fd, NULL, blocked_fn, NULL, &s), 0);
	assert_int_equal(s.removed, 0);
	assert_null(s.body);
	close(fd);
	(void)images;
	/* past a limit nothing is delivered */
	fd = corpus_fd("nested31.eml", false);
	errno = 0;
	assert_int_equal(attach_strip(fd, NULL, blocked_fn, NULL, &s), -1);
	assert_int_equal(errno, E2BIG);
	assert_null(s.body);
	close(fd);
}

int
main(void)
{
	struct CMUnitTest *t;
	size_t i, n;
	int rc;
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_bomb_memory),
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_deep_multipart),
		cmocka_unit_test(test_deep_rfc822),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_many_header_fields),
		cmocka_unit_test(test_api_edges),
		cmocka_unit_test(test_strip),
	};

	if (getenv("abs_top_srcdir") != NULL)
		srcdir = getenv("abs_top_srcdir");
	else if (getenv("srcdir") != NULL)
		srcdir = getenv("srcdir");
	/* expect.txt: gen.py; expect2.txt: gen2.py */
	if (load_cases("expect.txt") < 0 || load_cases("expect2.txt") < 0)
		return 1;
	n = sizeof fixed / sizeof fixed[0];
	t = calloc(n + ncases, sizeof *t);
	if (t == NULL)
		return 1;
	memcpy(t, fixed, sizeof fixed);
	for (i = 0; i < ncases; i++) {
		t[n + i].name = cases[i].file;
		t[n + i].test_func = test_case;
		t[n + i].initial_state = &cases[i];
	}
	rc = _cmocka_run_group_tests("attach", t, n + ncases, NULL, NULL);
	free(t);
	free_cases();
	return rc;
}
