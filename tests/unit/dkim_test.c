/*
 * dkim_test.c - unit tests for milter/dkimv.c (DKIM verification).
 * Owns: a temporary directory of fixtures made at start by
 * tests/data/dkim/make-fixtures.py (fresh keys, messages signed by dkimpy),
 * a resolver serving the public keys from memory (no network), and table
 * rows: message, expected best result, per-signature results.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "dkimv.h"
#include "dns.h"
#include "log.h"
#include "util.h"

#define ZONE_MAX	64
/* body chunk sizes tried: every split of CRLF pairs, and whole */
static const size_t chunks[] = { 1, 13, 65536 };
static size_t chunk = 13;

static char fixdir[] = "/tmp/dkim_test.XXXXXX";
static char *zone[ZONE_MAX + 1];
static struct dns *dns;
static struct dkimv_lib *lib;

struct exp_sig {
	const char	*result;
	unsigned	 bits;		/* 0: not checked */
	bool		 has_l;
	bool		 testing;
	const char	*reason;	/* substring, or NULL */
};

struct dkim_case {
	const char	*name;		/* fixture NAME.eml */
	const char	*best;
	size_t		 nsigs;
	struct exp_sig	 sig[2];
};

static const struct dkim_case cases[] = {
	{ "relaxed", "pass", 1, { { "pass", 2048, false, false, "" } } },
	{ "simple", "pass", 1, { { "pass", 2048, false, false, "" } } },
	{ "rsa1024", "pass", 1, { { "pass", 1024, false, false, "" } } },
	{ "rsa512", "fail", 1, { { "fail", 0, false, false, "small" } } },
	{ "ed25519", "pass", 1, { { "pass", 0, false, false, "" } } },
	{ "length", "pass", 1, { { "pass", 2048, true, false, "" } } },
	{ "two", "pass", 2, { { "pass", 2048, false, false, "" },
	    { "fail", 2048, false, false, "mismatch" } } },
	{ "header-tampered", "fail", 1,
	    { { "fail", 2048, false, false, "signature mismatch" } } },
	{ "body-tampered", "fail", 1,
	    { { "fail", 2048, false, false, "body hash" } } },
	{ "expired", "fail", 1, { { "fail", 0, false, false, "expired" } } },
	{ "revoked", "fail", 1, { { "fail", 0, false, false, "revoked" } } },
	{ "testing", "pass", 1,
	    { { "pass", 2048, false, true, "testing key" } } },
	/* RFC 6376 3.6.1: a failing signature of a t=y key counts as no
	 * signature for the dkim fact; its own result stays "fail" */
	{ "testing-tampered", "none", 1,
	    { { "fail", 2048, false, true, "testing key" } } },
	{ "sha1", "fail", 1, { { "fail", 2048, false, false, "RFC 8301" } } },
	{ "sha1-keyh", "permerror", 1,
	    { { "permerror", 0, false, false, NULL } } },
	{ "nokey", "permerror", 1, { { "permerror", 0, false, false, NULL } } },
	{ "nofrom", "permerror", 1,
	    { { "permerror", 0, false, false, NULL } } },
	{ "badsel", "permerror", 1,
	    { { "permerror", 0, false, false, "invalid key name" } } },
	{ "twofrom", "permerror", 1,
	    { { "permerror", 0, false, false, "RFC 5322" } } },
	{ "good-broken", "pass", 2,
	    { { "neutral", 0, false, false, "selector" },
	    { "pass", 2048, false, false, "" } } },
	{ "unsigned", "none", 0, { { NULL, 0, false, false, NULL } } },
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	p = xmalloc((size_t)n + 1);
	if (fread(p, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	p[n] = '\0';
	*len = (size_t)n;
	return p;
}

/*
 * Feeds a CRLF message as libmilter would: each header as name and value
 * (no leading space, folds as "\n" + WSP), then the body in chunks.
 */
static int
feed_head(struct dkimv *v, const char *msg, const char **bodyp)
{
	const char *p = msg, *body;
	int rc = 0;

	body = strstr(msg, "\r\n\r\n");
	if (body == NULL)
		return -1;
	while (p < body + 2) {
		const char *e = p, *colon;
		char *name, *value, *o;

		/* one field: up to a CRLF not followed by WSP */
		while (!(e[0] == '\r' && e[1] == '\n' && e[2] != ' ' &&
		    e[2] != '\t'))
			e++;
		colon = memchr(p, ':', (size_t)(e - p));
		if (colon == NULL)
			return -1;
		name = xstrndup(p, (size_t)(colon - p));
		colon++;
		if (*colon == ' ')
			colon++;
		value = xstrndup(colon, (size_t)(e - colon));
		for (o = value; *o != '\0'; o++)
			if (o[0] == '\r' && o[1] == '\n')
				memmove(o, o + 1, strlen(o + 1) + 1);
		rc |= dkimv_header(v, name, value);
		free(name);
		free(value);
		p = e + 2;
	}
	rc |= dkimv_eoh(v);
	*bodyp = body + 4;
	return rc;
}

static int
feed(struct dkimv *v, const char *msg, size_t len, struct dkimv_result *r)
{
	const char *p = NULL, *end = msg + len;
	int rc;

	rc = feed_head(v, msg, &p);
	if (p == NULL)
		return -1;
	for (; p < end; p += chunk) {
		size_t n = (size_t)(end - p) < chunk ? (size_t)(end - p) :
		    chunk;

		rc |= dkimv_body(v, (const unsigned char *)p, n);
	}
	rc |= dkimv_eom(v, r);
	return rc;
}

static int
run_case(struct dkimv_lib *l, const char *name, struct dkimv_result *r)
{
	char path[512];
	char *msg;
	size_t len;
	struct dkimv *v;
	int rc;

	snprintf(path, sizeof(path), "%s/%s.eml", fixdir, name);
	msg = slurp(path, &len);
	assert_non_null(msg);
	v = dkimv_new(l, name);
	assert_non_null(v);
	rc = feed(v, msg, len, r);
	dkimv_free(v);
	free(msg);
	return rc;
}

static void
test_cases(void **state)
{
	size_t i, j, k;

	(void)state;
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++)
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dkim_case *c = &cases[i];
		struct dkimv_result r;

		chunk = chunks[k];
		print_message("# case %s, body chunks of %zu\n", c->name,
		    chunk);
		assert_int_equal(run_case(lib, c->name, &r), 0);
		for (j = 0; j < r.nsigs; j++)
			print_message("#   sig %zu: %s d=%s s=%s b=%s bits=%u "
			    "l=%d (%s)\n", j, r.sigs[j].result,
			    r.sigs[j].domain, r.sigs[j].selector, r.sigs[j].b,
			    r.sigs[j].bits, r.sigs[j].has_l,
			    r.sigs[j].reason);
		assert_string_equal(r.best, c->best);
		assert_int_equal(r.nsigs, c->nsigs);
		for (j = 0; j < c->nsigs; j++) {
			const struct exp_sig *e = &c->sig[j];
			const struct dkimv_sig *s = &r.sigs[j];

			assert_string_equal(s->result, e->result);
			assert_string_equal(s->domain, "example.test");
			assert_int_equal(strlen(s->b), DKIMV_B_LEN);
			if (e->bits != 0)
				assert_int_equal(s->bits, e->bits);
			assert_int_equal(s->has_l, e->has_l);
			assert_int_equal(s->testing, e->testing);
			/* the A-R comment says "ed25519 key" by it */
			assert_int_equal(s->ed25519,
			    strcmp(c->name, "ed25519") == 0);
			if (e->reason != NULL && e->reason[0] == '\0')
				assert_string_equal(s->reason, "");
			else if (e->reason != NULL)
				assert_non_null(strstr(s->reason, e->reason));
		}
	}
}

/* Signatures past the maximum are not verified and not reported. */
static void
test_max_signatures(void **state)
{
	struct dkimv_lib *one = dkimv_lib_new(dns, 2000, 1);
	struct dkimv_result r;

	(void)state;
	assert_non_null(one);
	assert_int_equal(run_case(one, "two", &r), 0);
	assert_int_equal(r.nsigs, 1);
	assert_int_equal(r.nignored, 1);
	assert_string_equal(r.sigs[0].result, "pass");
	dkimv_lib_free(one);
}

/*
 * The default maximum (5, as dkim_max_signatures defaults to): of six
 * signatures the first five in header order fail, the sixth would pass.
 * It is neither verified nor reported, so the best result is fail.
 */
static void
test_sixth_signature(void **state)
{
	struct dkimv_result r;
	size_t j;

	(void)state;
	assert_int_equal(DKIMV_SIGS_DEFAULT, 5);
	assert_int_equal(run_case(lib, "six", &r), 0);
	assert_int_equal(r.nsigs, 5);
	assert_int_equal(r.nignored, 1);
	for (j = 0; j < r.nsigs; j++) {
		assert_string_equal(r.sigs[j].result, "fail");
		assert_string_equal(r.sigs[j].selector, "wrong");
	}
	assert_string_equal(r.best, "fail");
}

/*
 * The body is hashed as it streams in, never copied whole: a child
 * process (its own resolver, so no thread of ours crosses the fork)
 * verifies the "relaxed" signature over a 64 MiB body given in 64 KiB
 * chunks, and its peak RSS (ru_maxrss, which starts at the resident size
 * the child inherits) may grow by at most STREAM_SLACK.  A verifier that
 * kept the body, in dkimv or in libopendkim, would grow by 64 MiB.
 */
#define STREAM_BODY	((size_t)64 * 1024 * 1024)
#define STREAM_CHUNK	((size_t)64 * 1024)
#define STREAM_SLACK	(16L * 1024)		/* KiB */

struct stream_out {
	long	 grew_kib;
	int	 rc;
	char	 best[16];
	char	 reason[160];
};

static void
stream_child(const char *msg, int fd)
{
	struct dns_options o = { 0 };
	struct stream_out out;
	struct dkimv_result r;
	struct dkimv_lib *l;
	struct dkimv *v;
	struct dns *d;
	struct rusage ru;
	const char *err, *body = NULL;
	unsigned char *buf;
	size_t done, i;
	long before;

	memset(&out, 0, sizeof(out));
	o.local_data = (const char *const *)zone;
	o.no_network = 1;
	buf = xmalloc(STREAM_CHUNK);
	for (i = 0; i < STREAM_CHUNK; i++)	/* lines of 64 octets */
		buf[i] = (i % 64) == 62 ? '\r' : (i % 64) == 63 ? '\n' :
		    (unsigned char)('a' + i % 26);
	if ((d = dns_new(&o, &err)) == NULL ||
	    (l = dkimv_lib_new(d, 2000, DKIMV_SIGS_DEFAULT)) == NULL ||
	    (v = dkimv_new(l, "stream")) == NULL)
		_exit(2);
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		_exit(2);
	before = ru.ru_maxrss;
	out.rc = feed_head(v, msg, &body);
	for (done = 0; done < STREAM_BODY; done += STREAM_CHUNK)
		out.rc |= dkimv_body(v, buf, STREAM_CHUNK);
	out.rc |= dkimv_eom(v, &r);
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		_exit(2);
	out.grew_kib = ru.ru_maxrss - before;
	snprintf(out.best, sizeof(out.best), "%.15s", r.best);
	snprintf(out.reason, sizeof(out.reason), "%.159s",
	    r.nsigs > 0 ? r.sigs[0].reason : "");
	if (write(fd, &out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(3);
	_exit(0);
}

static void
test_body_streams(void **state)
{
	struct stream_out out;
	char path[512], *msg;
	size_t len;
	int pfd[2], st;
	pid_t pid;

	(void)state;
	snprintf(path, sizeof(path), "%s/relaxed.eml", fixdir);
	msg = slurp(path, &len);
	assert_non_null(msg);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		stream_child(msg, pfd[1]);
	}
	close(pfd[1]);
	free(msg);
	assert_int_equal(read(pfd[0], &out, sizeof(out)),
	    (ssize_t)sizeof(out));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	print_message("# %zu MiB body: peak RSS grew %ld KiB (%s: %s)\n",
	    STREAM_BODY >> 20, out.grew_kib, out.best, out.reason);
	assert_int_equal(out.rc, 0);
	/* the whole body was hashed: it is not the signed one */
	assert_string_equal(out.best, "fail");
	assert_non_null(strstr(out.reason, "body hash"));
	assert_true(out.grew_kib < STREAM_SLACK);
}

/* One lib shared by threads, as libmilter's workers share it. */
#define THREADS	4

static void *
thread_run(void *arg)
{
	struct dkimv_result r;
	int i, *bad = arg;

	for (i = 0; i < 5; i++) {
		if (run_case(lib, i % 2 ? "two" : "relaxed", &r) != 0 ||
		    strcmp(r.best, "pass") != 0)
			(*bad)++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[THREADS];
	int bad[THREADS] = { 0 }, i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_run,
		    &bad[i]), 0);
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(bad[i], 0);
	}
}

/* A resolver that never answers: the key lookup times out. */
static void
test_timeout(void **state)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct dns_options o = { 0 };
	struct dns *silent;
	struct dkimv_lib *l;
	struct dkimv_result r;
	char fwd[64];
	const char *err;
	int fd;

	(void)state;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", ntohs(sa.sin_port));
	o.forwarder = fwd;
	silent = dns_new(&o, &err);
	assert_non_null(silent);
	l = dkimv_lib_new(silent, 300, 5);
	assert_non_null(l);
	assert_int_equal(run_case(l, "relaxed", &r), 0);
	assert_string_equal(r.best, "temperror");
	assert_int_equal(r.nsigs, 1);
	assert_string_equal(r.sigs[0].result, "temperror");
	dkimv_lib_free(l);
	dns_free(silent);
	close(fd);

	/* a closed port: refused at once, also temperror */
	o.forwarder = "127.0.0.1@1";
	silent = dns_new(&o, &err);
	assert_non_null(silent);
	l = dkimv_lib_new(silent, 300, 5);
	assert_int_equal(run_case(l, "relaxed", &r), 0);
	assert_string_equal(r.best, "temperror");
	dkimv_lib_free(l);
	dns_free(silent);
}

/* Misuse and limits: no crash, a defined result. */
static void
test_edges(void **state)
{
	struct dkimv *v;
	struct dkimv_result r;
	char *big;
	size_t i;

	(void)state;
	dkimv_free(NULL);
	dkimv_lib_free(NULL);

	v = dkimv_new(lib, "q1");
	assert_int_equal(dkimv_eom(v, &r), 0);	/* no headers at all */
	assert_string_equal(r.best, "none");
	dkimv_free(v);

	v = dkimv_new(lib, "q2");
	big = xmalloc(DKIMV_HEADER_MAX + 10);
	memset(big, 'a', DKIMV_HEADER_MAX + 9);
	big[DKIMV_HEADER_MAX + 9] = '\0';
	assert_int_equal(dkimv_header(v, "X-Big", big), -1);
	assert_int_equal(dkimv_eom(v, &r), -1);
	assert_string_equal(r.best, "temperror");
	free(big);
	dkimv_free(v);

	/* a signature missing s= and b=: a result of its own, neutral */
	v = dkimv_new(lib, "q4");
	assert_int_equal(dkimv_header(v, "DKIM-Signature", "v=1; "
	    "a=rsa-sha256;\n\td=example.test; h=from; bh=AAAA"), 0);
	assert_int_equal(dkimv_header(v, "From", "a@example.test"), 0);
	assert_int_equal(dkimv_eoh(v), 0);
	assert_int_equal(dkimv_body(v, (const unsigned char *)"hi\r\n", 4),
	    0);
	assert_int_equal(dkimv_eom(v, &r), 0);
	assert_string_equal(r.best, "neutral");
	assert_int_equal(r.nsigs, 1);
	assert_string_equal(r.sigs[0].domain, "example.test");
	print_message("# malformed: %s (%s)\n", r.sigs[0].result,
	    r.sigs[0].reason);
	dkimv_free(v);

	/*
	 * A From libopendkim cannot take apart ("nobody": no domain; or
	 * "\"unterminated"): the header block is against RFC 5322 3.6 as
	 * with two From fields, each signature permerror, no signature
	 * none.  libopendkim 2.11 leaks its copy of such a field (its
	 * STRICTHDRS check returns without freeing it), which an attacker
	 * could repeat with every message: dkimv answers it without asking
	 * (LeakSanitizer checks this in the ASan build).
	 */
	for (i = 0; i < 4; i++) {
		v = dkimv_new(lib, "q5");
		if (i % 2 == 0)
			assert_int_equal(dkimv_header(v, "DKIM-Signature",
			    "v=1; a=rsa-sha256; d=example.test; s=sel; "
			    "h=from; bh=AAAA; b=BBBB"), 0);
		assert_int_equal(dkimv_header(v, "From", i < 2 ? "nobody" :
		    " \"unterminated"), 0);
		assert_int_equal(dkimv_header(v, "Date",
		    "Sun, 6 Dec 2026 05:00:00 +0000"), 0);
		assert_int_equal(dkimv_eoh(v), 0);
		assert_int_equal(dkimv_body(v,
		    (const unsigned char *)"hi\r\n", 4), 0);
		assert_int_equal(dkimv_eom(v, &r), 0);
		print_message("# unparsable From %zu: %s, %zu signatures%s%s\n",
		    i, r.best, r.nsigs, r.nsigs > 0 ? ": " : "",
		    r.nsigs > 0 ? r.sigs[0].reason : "");
		if (i % 2 == 0) {
			assert_string_equal(r.best, "permerror");
			assert_int_equal(r.nsigs, 1);
			assert_non_null(strstr(r.sigs[0].reason, "RFC 5322"));
		} else {
			assert_string_equal(r.best, "none");
			assert_int_equal(r.nsigs, 0);
		}
		dkimv_free(v);
	}

	v = dkimv_new(lib, "q3");	/* freed mid-message */
	assert_int_equal(dkimv_header(v, "From", "a@example.test"), 0);
	dkimv_free(v);
}

static int
setup(void **state)
{
	const char *src = getenv("abs_top_srcdir");
	struct dns_options o = { 0 };
	char cmd[1024], path[512], *text, *line, *next;
	const char *err;
	size_t len, n = 0;

	(void)state;
	if (mkdtemp(fixdir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 "
	    "%s/tests/data/dkim/make-fixtures.py %s", src != NULL ? src : ".",
	    fixdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "fixtures failed: %s\n", cmd);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/zone", fixdir);
	if ((text = slurp(path, &len)) == NULL)
		return -1;
	for (line = text; *line != '\0' && n < ZONE_MAX; line = next) {
		next = strchr(line, '\n');
		if (next == NULL)
			next = line + strlen(line);
		else
			*next++ = '\0';
		if (*line != '\0')
			zone[n++] = xstrdup(line);
	}
	free(text);
	zone[n] = NULL;
	o.local_data = (const char *const *)zone;
	o.no_network = 1;
	if ((dns = dns_new(&o, &err)) == NULL) {
		fprintf(stderr, "dns_new: %s\n", err);
		return -1;
	}
	if ((lib = dkimv_lib_new(dns, 2000, DKIMV_SIGS_DEFAULT)) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];
	size_t i;

	(void)state;
	dkimv_lib_free(lib);
	dns_free(dns);
	for (i = 0; zone[i] != NULL; i++)
		free(zone[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_max_signatures),
		cmocka_unit_test(test_sixth_signature),
		cmocka_unit_test(test_body_streams),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_edges),
	};

	log_open("dkim_test", LOG_TO_STDERR);
	/* the fixtures need dkimpy, python3-cryptography and openssl */
	if (system("/usr/bin/python3 -c 'import dkim, cryptography' "
	    ">/dev/null 2>&1 && openssl version >/dev/null 2>&1") != 0) {
		printf("1..0 # SKIP python3-dkim, python3-cryptography or "
		    "openssl missing\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
