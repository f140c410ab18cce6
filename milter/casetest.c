/*
 * casetest.c - "portcullis test": runs policy fixtures through the same
 * core as the milter, with each case's DNS records served from memory by
 * the same resolver code (libunbound local data, no network), and prints
 * a diff per failing case and "N passed, N failed".
 * Owns: one snapshot per case (its records differ).  Limits: CASE_* below.
 * Errors: a case that cannot be read or run counts as failed, with why.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casetest.h"
#include "check.h"
#include "config.h"
#include "core.h"
#include "dns.h"
#include "greylist.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#define CASE_RCPT_MAX		100
#define CASE_DNS_MAX		1000
#define CASE_EXPECT_MAX		100
#define CASE_FILES_MAX		10000

struct expect {
	char *what;	/* owns: "action", "rule", "stage", "reply", "header",
			 * "no-header", "rcpt" */
	char *value;	/* owns */
	unsigned line;
};

struct testcase {
	const char *path;		/* borrows */
	char *text;			/* owns: the whole file */
	const char *ip, *helo, *from, *auth;	/* borrow text */
	int greylist;			/* forced state, -1: none */
	struct check_rcpt rcpts[CASE_RCPT_MAX];
	size_t nrcpt;
	const char *dns[CASE_DNS_MAX + 1];	/* borrow text; NULL-ended */
	size_t ndns;
	struct expect exp[CASE_EXPECT_MAX];
	size_t nexp;
	const char *msg;		/* borrows text */
	size_t msglen;
};

static void
case_free(struct testcase *t)
{
	size_t i;

	for (i = 0; i < t->nexp; i++) {
		free(t->exp[i].what);
		free(t->exp[i].value);
	}
	for (i = 0; i < t->nrcpt; i++)
		verdict_clear(&t->rcpts[i].v);
	free(t->text);
}

/* Splits "word rest" in place: returns rest (may be ""). */
static char *
split_word(char *line)
{
	char *p = line;

	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	if (*p == '\0')
		return p;
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses the case file; -1 with a message in err. */
static int
case_parse(struct testcase *t, char *err, size_t errlen)
{
	char *p = t->text, *line, *rest;
	unsigned ln = 0;

	while (p != NULL && *p != '\0') {
		line = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
		ln++;
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		rest = split_word(line);
		if (strcmp(line, "message") == 0) {
			t->msg = p != NULL ? p : "";
			t->msglen = strlen(t->msg);
			break;
		} else if (strcmp(line, "ip") == 0)
			t->ip = rest;
		else if (strcmp(line, "helo") == 0)
			t->helo = rest;
		else if (strcmp(line, "from") == 0)
			t->from = rest;
		else if (strcmp(line, "auth") == 0)
			t->auth = rest;
		else if (strcmp(line, "greylist") == 0) {
			if ((t->greylist = greylist_state_parse(rest)) < 0) {
				snprintf(err, errlen, "%s:%u: greylist state "
				    "'%s' (new, early, passed or allowed)",
				    t->path, ln, rest);
				return -1;
			}
		}
		else if (strcmp(line, "rcpt") == 0) {
			if (t->nrcpt == CASE_RCPT_MAX) {
				snprintf(err, errlen, "%s:%u: too many "
				    "recipients", t->path, ln);
				return -1;
			}
			t->rcpts[t->nrcpt++].rcpt = rest;
		} else if (strcmp(line, "dns") == 0) {
			if (t->ndns == CASE_DNS_MAX) {
				snprintf(err, errlen, "%s:%u: too many DNS "
				    "records", t->path, ln);
				return -1;
			}
			t->dns[t->ndns++] = rest;
		} else if (strcmp(line, "expect") == 0) {
			char *val = split_word(rest);

			if (strcmp(rest, "action") != 0 &&
			    strcmp(rest, "rule") != 0 &&
			    strcmp(rest, "stage") != 0 &&
			    strcmp(rest, "reply") != 0 &&
			    strcmp(rest, "header") != 0 &&
			    strcmp(rest, "no-header") != 0 &&
			    strcmp(rest, "rcpt") != 0) {
				snprintf(err, errlen, "%s:%u: unknown "
				    "expectation '%s' (action, rule, stage, "
				    "reply, header, no-header, rcpt)", t->path,
				    ln, rest);
				return -1;
			}
			if (t->nexp == CASE_EXPECT_MAX) {
				snprintf(err, errlen, "%s:%u: too many "
				    "expectations", t->path, ln);
				return -1;
			}
			t->exp[t->nexp].what = xstrdup(rest);
			t->exp[t->nexp].value = xstrdup(val);
			t->exp[t->nexp++].line = ln;
		} else {
			snprintf(err, errlen, "%s:%u: unknown keyword '%s' "
			    "(ip, helo, from, rcpt, auth, dns, expect, "
			    "message)", t->path, ln, line);
			return -1;
		}
	}
	if (t->ip == NULL || t->from == NULL || t->nrcpt == 0 ||
	    t->msg == NULL) {
		snprintf(err, errlen, "%s: a case needs ip, from, rcpt and a "
		    "message", t->path);
		return -1;
	}
	t->dns[t->ndns] = NULL;
	return 0;
}

/* A header value as a reader sees it: folds undone. */
static void
unfold(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0' && o + 1 < len; in++) {
		if (*in == '\r')
			continue;
		if (*in == '\n') {
			while (in[1] == ' ' || in[1] == '\t')
				in++;
			out[o++] = ' ';
			continue;
		}
		out[o++] = *in;
	}
	out[o] = '\0';
}

/* The header "Name: value" as added or changed by the verdict. */
static bool
verdict_has_header(const struct verdict *v, const char *want,
    char *got, size_t gotlen, bool any_of_name)
{
	const struct hdr_edit *lists[2] = { v->changed, v->added };
	size_t counts[2] = { v->nchanged, v->nadded }, i, k;
	char buf[4096];

	got[0] = '\0';
	for (k = 0; k < 2; k++)
		for (i = 0; i < counts[k]; i++) {
			const struct hdr_edit *e = &lists[k][i];
			size_t nl = strlen(e->name);

			if (any_of_name) {
				if (str_ieq(e->name, want))
					return true;
				continue;
			}
			if (strncasecmp(want, e->name, nl) != 0 ||
			    want[nl] != ':')
				continue;
			unfold(e->value, buf, sizeof(buf));
			if (snprintf(got, gotlen, "%s: %.3000s", e->name, buf) < 0)
				got[0] = '\0';
			if (strcmp(want + nl + 1 + (want[nl + 1] == ' '),
			    buf) == 0)
				return true;
		}
	return false;
}

static void
reply_text(const struct verdict *v, char *out, size_t len)
{
	if (v->action == POL_ACT_REJECT || v->action == POL_ACT_TEMPFAIL)
		snprintf(out, len, "%d %s %s", v->code, v->dsn, v->text);
	else
		snprintf(out, len, "(none)");
}

/* Compares; prints a diff line per difference.  Returns differences. */
static unsigned
case_compare(const struct testcase *t, const struct verdict *v,
    struct buf *out)
{
	unsigned bad = 0;
	size_t i, j;
	char got[4096];

	for (i = 0; i < t->nexp; i++) {
		const struct expect *e = &t->exp[i];
		bool ok = true;

		got[0] = '\0';
		if (strcmp(e->what, "action") == 0) {
			snprintf(got, sizeof(got), "%s",
			    pol_action_name(v->action));
			ok = strcmp(got, e->value) == 0;
		} else if (strcmp(e->what, "rule") == 0) {
			snprintf(got, sizeof(got), "%s", v->rule);
			ok = strcmp(got, e->value) == 0;
		} else if (strcmp(e->what, "stage") == 0) {
			snprintf(got, sizeof(got), "%s",
			    pol_stage_name(v->stage));
			ok = strcmp(got, e->value) == 0;
		} else if (strcmp(e->what, "reply") == 0) {
			reply_text(v, got, sizeof(got));
			ok = strcmp(got, e->value) == 0;
		} else if (strcmp(e->what, "header") == 0) {
			ok = verdict_has_header(v, e->value, got, sizeof(got),
			    false);
			if (!ok && got[0] == '\0')
				snprintf(got, sizeof(got), "(no such header "
				    "added or changed)");
		} else if (strcmp(e->what, "no-header") == 0) {
			ok = !verdict_has_header(v, e->value, got,
			    sizeof(got), true);
			if (!ok)
				snprintf(got, sizeof(got), "%s added or "
				    "changed", e->value);
		} else if (strcmp(e->what, "rcpt") == 0) {
			/* "ADDR ACTION": the answer at RCPT */
			const char *sp = strchr(e->value, ' ');
			size_t al = sp ? (size_t)(sp - e->value) : 0;

			ok = false;
			snprintf(got, sizeof(got), "(no such recipient)");
			for (j = 0; sp != NULL && j < t->nrcpt; j++) {
				const struct check_rcpt *r = &t->rcpts[j];

				if (strlen(r->rcpt) != al ||
				    strncmp(r->rcpt, e->value, al) != 0)
					continue;
				snprintf(got, sizeof(got), "%.*s %s", (int)al,
				    e->value, r->v.decided ?
				    pol_action_name(r->v.action) :
				    "continue");
				ok = strcmp(got, e->value) == 0;
			}
		}
		if (!ok) {
			buf_appendf(out, "  line %u: expect %s\n  - %s\n"
			    "  + %s\n", e->line, e->what, e->value, got);
			bad++;
		}
	}
	return bad;
}

/* Runs one case.  0 passed, 1 failed. */
static int
case_run(const char *conf, const char *path)
{
	struct testcase t;
	struct diag d = { 0 };
	struct dns_options o = { 0 };
	struct snapshot *s;
	struct verdict v;
	char err[1024];
	size_t len, i;
	char *json;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	t.greylist = -1;
	memset(&v, 0, sizeof(v));
	t.path = path;
	if ((t.text = check_read_file(path, &len)) == NULL) {
		printf("FAIL %s\n  cannot read: %s\n", path, strerror(errno));
		return 1;
	}
	if (strlen(t.text) != len) {
		printf("FAIL %s\n  NUL byte in the case file\n", path);
		case_free(&t);
		return 1;
	}
	if (case_parse(&t, err, sizeof(err)) != 0) {
		printf("FAIL %s\n  %s\n", path, err);
		case_free(&t);
		return 1;
	}
	if ((s = snapshot_load(conf, &d)) == NULL) {
		printf("FAIL %s\n", path);
		for (i = 0; i < d.n; i++)
			printf("  %s\n", d.msgs[i]);
		diag_free(&d);
		case_free(&t);
		return 1;
	}
	/* the case's records, and nothing from the network */
	o.local_data = t.dns;
	o.no_network = 1;
	snapshot_private_greylist(s);
	if (t.greylist >= 0) {
		s->grey_forced = true;
		s->grey_state = (unsigned)t.greylist;
	}
	if (snapshot_start_with(s, &o, &d) != 0) {
		printf("FAIL %s\n", path);
		for (i = 0; i < d.n; i++)
			printf("  %s\n", d.msgs[i]);
		diag_free(&d);
		snapshot_release(s);
		case_free(&t);
		return 1;
	}
	diag_free(&d);
	snapshot_publish(s);
	{
		struct check_msg m = { t.ip, t.helo, t.from, t.auth, t.rcpts,
		    t.nrcpt, t.msg, t.msglen, false };

		json = check_message(s, &m, &v);
	}
	{
		struct buf diff;

		buf_init(&diff, 1024 * 1024);
		if (case_compare(&t, &v, &diff) != 0) {
			printf("FAIL %s\n%s  verdict: %s", path,
			    diff.p != NULL ? diff.p : "", json);
			rc = 1;
		} else
			printf("ok   %s\n", path);
		buf_free(&diff);
	}
	free(json);
	verdict_clear(&v);
	snapshot_clear();
	case_free(&t);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.case files of a directory, sorted. */
static size_t
dir_cases(const char *dir, char ***out)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	if (dp == NULL)
		return 0;
	while ((de = readdir(dp)) != NULL && n < CASE_FILES_MAX) {
		size_t l = strlen(de->d_name);

		if (l > 5 && strcmp(de->d_name + l - 5, ".case") == 0) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n++] = xasprintf("%s/%s", dir, de->d_name);
		}
	}
	closedir(dp);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	return n;
}

int
casetest_main(int argc, char **argv)
{
	const char *conf = NULL;
	unsigned passed = 0, failed = 0;
	int ch, i;

	while ((ch = getopt(argc, argv, "c:h")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		default:
			fputs("usage: portcullis test [-c conf] CASE...|DIR\n",
			    ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (optind == argc) {
		fputs("usage: portcullis test [-c conf] CASE...|DIR\n",
		    stderr);
		return 2;
	}
	if (conf == NULL && access(config_default_path(), F_OK) == 0)
		conf = config_default_path();
	/* the per-message log lines would only repeat the verdicts */
	log_set_info(false);
	for (i = optind; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			char **files;
			size_t n = dir_cases(argv[i], &files), k;

			if (n == 0) {
				printf("FAIL %s\n  no *.case files\n",
				    argv[i]);
				failed++;
			}
			for (k = 0; k < n; k++) {
				if (case_run(conf, files[k]) == 0)
					passed++;
				else
					failed++;
				free(files[k]);
			}
			free(files);
		} else if (case_run(conf, argv[i]) == 0)
			passed++;
		else
			failed++;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
