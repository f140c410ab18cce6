/*
 * check.c - "portcullis check": drives the same core as the milter from
 * command-line envelope data and an .eml file, and prints one JSON object.
 * Owns: one connection for the run.  Limits: CHECK_FILE_MAX bytes of
 * message.  Errors: exit 1 with a message on stderr when the check cannot
 * run (bad config, unreadable file).
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "check.h"
#include "core.h"
#include "greylist.h"
#include "log.h"
#include "snapshot.h"
#include "tag.h"
#include "util.h"

#define CHECK_FILE_MAX	(256u * 1024 * 1024)
#define CHECK_RCPT_MAX	1000

/* The rules evaluated, for --trace, as JSON array members. */
struct trace_buf {
	struct buf b;
	size_t n;
};


static void
trace_step(void *ctx, const struct pol_trace_step *st)
{
	static const char *const tri[] = { "false", "true", "unknown" };
	struct trace_buf *t = ctx;
	size_t i;

	buf_appendf(&t->b, "%s{\"stage\": \"%s\", \"kind\": \"%s\", "
	    "\"rule\": ", t->n++ ? ", " : "", pol_stage_name(st->stage),
	    st->kind);
	buf_append_json(&t->b, st->name);
	buf_appendf(&t->b, ", \"value\": \"%s\", \"facts\": [",
	    tri[st->value <= POL_UNKNOWN ? st->value : POL_UNKNOWN]);
	for (i = 0; i < st->nfacts; i++) {
		if (i)
			buf_append(&t->b, ", ", 2);
		buf_append_json(&t->b, st->facts[i]);
	}
	buf_append(&t->b, "]}", 2);
}



static void
json_edits(struct buf *b, const char *key, const struct hdr_edit *e,
    size_t n, bool with_value)
{
	size_t i;

	buf_appendf(b, ", \"%s\": [", key);
	for (i = 0; i < n; i++) {
		buf_appendf(b, "%s{\"name\": ", i ? ", " : "");
		buf_append_json(b, e[i].name);
		if (with_value) {
			buf_append(b, ", \"value\": ", 11);
			buf_append_json(b, e[i].value);
		}
		if (!with_value || e[i].index > 0)
			buf_appendf(b, ", \"index\": %u", e[i].index);
		buf_append(b, "}", 1);
	}
	buf_append(b, "]", 1);
}

static void
json_smtp(struct buf *b, const struct verdict *v)
{
	buf_appendf(b, ", \"smtp\": {\"code\": %d, \"dsn\": ", v->code);
	buf_append_json(b, v->dsn);
	buf_append(b, ", \"text\": ", 10);
	buf_append_json(b, v->text);
	buf_append(b, "}", 1);
}

char *
check_read_file(const char *path, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct buf b;
	char chunk[65536];
	size_t n;

	if (fp == NULL)
		return NULL;
	buf_init(&b, CHECK_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_append(&b, chunk, n) != 0) {
			errno = EFBIG;
			buf_free(&b);
			if (fp != stdin)
				fclose(fp);
			return NULL;
		}
	if (fp != stdin)
		fclose(fp);
	*len = b.len;
	return b.p != NULL ? b.p : xstrdup("");
}

/*
 * Feeds the header of the message as an MTA does: one call per field,
 * the value without the white space after the colon, continuation lines
 * joined with "\n".  Returns the offset of the body.
 */
static size_t
feed_headers(struct core_conn *c, const char *msg, size_t len)
{
	struct buf name, value;
	size_t i = 0;
	bool have = false;

	buf_init(&name, 1000);
	buf_init(&value, CORE_HDR_KEEP_MAX);
	while (i < len) {
		const char *line = msg + i, *nl;
		size_t ll, next;

		nl = memchr(line, '\n', len - i);
		ll = nl ? (size_t)(nl - line) : len - i;
		next = i + ll + (nl ? 1 : 0);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0) {		/* end of header */
			i = next;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && have) {
			buf_append(&value, "\n", 1);
			buf_append(&value, line, ll);
		} else {
			const char *colon = memchr(line, ':', ll);
			size_t v;

			if (have)
				core_header(c, name.p, value.p ? value.p : "");
			have = false;
			name.len = value.len = 0;
			if (name.p)
				name.p[0] = '\0';
			if (value.p)
				value.p[0] = '\0';
			if (colon == NULL) {
				/* not a header field: the body starts here,
				 * as MTAs treat it */
				break;
			}
			buf_append(&name, line, (size_t)(colon - line));
			while (name.len > 0 && (name.p[name.len - 1] == ' ' ||
			    name.p[name.len - 1] == '\t'))
				name.p[--name.len] = '\0';
			v = (size_t)(colon - line) + 1;
			while (v < ll && (line[v] == ' ' || line[v] == '\t'))
				v++;
			buf_append(&value, line + v, ll - v);
			if (value.p == NULL)
				buf_append(&value, "", 0);
			have = true;
		}
		i = next;
	}
	if (have)
		core_header(c, name.p, value.p ? value.p : "");
	buf_free(&name);
	buf_free(&value);
	return i;
}

/* Body with CRLF line ends, as MTAs hand it to milters. */
static void
feed_body(struct core_conn *c, const char *p, size_t len)
{
	struct buf b;
	size_t i;

	buf_init(&b, 2 * (size_t)len + 2);
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_append(&b, "\r\n", 2);
		else
			buf_append(&b, p + i, 1);
		if (b.len >= 65536) {
			core_body(c, (const unsigned char *)b.p, b.len);
			b.len = 0;
		}
	}
	if (b.len > 0)
		core_body(c, (const unsigned char *)b.p, b.len);
	buf_free(&b);
}

static char *
result_json(struct core_conn *c, const struct verdict *v,
    const struct check_rcpt *rr, size_t nrr, const struct trace_buf *tr)
{
	struct buf b;
	char *facts, *mon;
	size_t i;

	buf_init(&b, 64 * 1024 * 1024);
	buf_appendf(&b, "{\"action\": \"%s\"", pol_action_name(v->action));
	if (v->action == POL_ACT_REJECT || v->action == POL_ACT_TEMPFAIL)
		json_smtp(&b, v);
	buf_append(&b, ", \"rule\": ", 10);
	buf_append_json(&b, v->rule);
	buf_appendf(&b, ", \"stage\": \"%s\", \"score\": %g",
	    pol_stage_name(v->stage), v->score);
	facts = core_facts_json(c);
	mon = core_monitored_json(c);
	buf_appendf(&b, ", \"facts\": {%s}, \"monitored\": %s", facts, mon);
	free(facts);
	free(mon);
	json_edits(&b, "headers_added", v->added, v->nadded, true);
	json_edits(&b, "headers_changed", v->changed, v->nchanged, true);
	json_edits(&b, "headers_removed", v->removed, v->nremoved, false);
	/* "strip": the new body, as the MTA would get it */
	if (v->new_body != NULL) {
		char *body = xstrndup(v->new_body, v->new_body_len);

		buf_append(&b, ", \"body_replaced\": ", 19);
		buf_append_json(&b, body);
		free(body);
	}
	buf_append(&b, ", \"recipients\": [", 17);
	for (i = 0; i < nrr; i++) {
		buf_appendf(&b, "%s{\"rcpt\": ", i ? ", " : "");
		buf_append_json(&b, rr[i].rcpt);
		if (rr[i].v.decided) {
			buf_appendf(&b, ", \"action\": \"%s\", \"rule\": ",
			    pol_action_name(rr[i].v.action));
			buf_append_json(&b, rr[i].v.rule);
			json_smtp(&b, &rr[i].v);
		} else
			buf_append(&b, ", \"action\": \"continue\"", 22);
		buf_append(&b, "}", 1);
	}
	buf_append(&b, "]", 1);
	if (tr != NULL)
		buf_appendf(&b, ", \"trace\": [%s]", tr->b.p ? tr->b.p : "");
	buf_append(&b, "}\n", 2);
	return b.p;
}

/* Runs the events; *v gets the message's verdict. */
static void
run_events(struct core_conn *c, const char *helo, const char *from,
    const char *auth, struct check_rcpt *rr, size_t nrr,
    const char *msg, size_t len, struct verdict *v)
{
	size_t i, open = 0, body;

	core_helo(c, helo, v);
	if (v->decided)
		return;
	core_mail(c, from, auth, v);
	if (v->decided)
		return;
	for (i = 0; i < nrr; i++) {
		core_rcpt(c, rr[i].rcpt, &rr[i].v);
		if (!rr[i].v.decided)
			open++;
	}
	if (open == 0) {
		/* every recipient refused: the last refusal answers */
		for (i = nrr; i-- > 0;)
			if (rr[i].v.decided) {
				*v = rr[i].v;
				rr[i].v.added = rr[i].v.changed = NULL;
				rr[i].v.removed = NULL;
				return;
			}
	}
	body = feed_headers(c, msg, len);
	core_eoh(c, v);
	if (v->decided)
		return;
	feed_body(c, msg + body, len - body);
	core_eom(c, v);
}

char *
check_message(struct snapshot *s, const struct check_msg *m,
    struct verdict *v)
{
	struct core_client cl;
	struct trace_buf tr;
	struct core_conn *c;
	char helobuf[80], *json;
	const char *helo = m->helo;

	addr_init();
	tag_init();
	if (helo == NULL) {
		snprintf(helobuf, sizeof(helobuf), "[%s]", m->ip);
		helo = helobuf;
	}
	cl.ip = m->ip;
	cl.name = NULL;
	buf_init(&tr.b, 64 * 1024 * 1024);
	tr.n = 0;
	cl.trace = m->trace ? trace_step : NULL;
	cl.trace_ctx = &tr;
	c = core_connect(snapshot_ref(s), &cl, v);
	if (!v->decided)
		run_events(c, helo, m->from, m->auth, m->rcpts, m->nrcpt,
		    m->msg, m->len, v);
	json = result_json(c, v, m->rcpts, m->nrcpt, m->trace ? &tr : NULL);
	buf_free(&tr.b);
	core_close(c);
	return json;
}

int
check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'F' },
		{ "rcpt", required_argument, NULL, 'R' },
		{ "auth", required_argument, NULL, 'A' },
		{ "trace", no_argument, NULL, 'T' },
		{ "greylist", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *conf = NULL, *ip = NULL, *helo = NULL, *from = NULL;
	const char *auth = NULL;
	bool trace = false;
	int grey = -1;
	struct check_rcpt *rr = xcalloc(CHECK_RCPT_MAX, sizeof(*rr));
	struct diag d = { 0 };
	struct snapshot *s;
	struct verdict v;
	size_t nrr = 0, len, i;
	char *msg;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'i': ip = optarg; break;
		case 'H': helo = optarg; break;
		case 'F': from = optarg; break;
		case 'A': auth = optarg; break;
		case 'T': trace = true; break;
		case 'G':
			if ((grey = greylist_state_parse(optarg)) < 0) {
				fprintf(stderr, "portcullis check: --greylist "
				    "'%s' (new, early, passed or allowed)\n",
				    optarg);
				free(rr);
				return 2;
			}
			break;
		case 'R':
			if (nrr == CHECK_RCPT_MAX) {
				fprintf(stderr, "portcullis check: too many "
				    "recipients\n");
				free(rr);
				return 2;
			}
			rr[nrr++].rcpt = optarg;
			break;
		default:
			fputs("usage: portcullis check [-c conf] --ip IP "
			    "[--helo NAME] --from ADDR --rcpt ADDR... "
			    "[--auth USER] [--greylist STATE] [--trace] "
			    "MESSAGE.eml\n", stderr);
			free(rr);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (ip == NULL || from == NULL || nrr == 0 || optind != argc - 1) {
		fputs("portcullis check: --ip, --from, --rcpt and one "
		    "MESSAGE.eml are required\n", stderr);
		free(rr);
		return 2;
	}
	if (conf == NULL && access(config_default_path(), F_OK) == 0)
		conf = config_default_path();
	if ((msg = check_read_file(argv[optind], &len)) == NULL) {
		fprintf(stderr, "portcullis check: %s: %s\n", argv[optind],
		    strerror(errno));
		free(rr);
		return 1;
	}
	s = snapshot_load(conf, &d);
	for (i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	diag_free(&d);
	/* a check must not record triplets in the daemon's store */
	if (s != NULL) {
		snapshot_private_greylist(s);
		if (grey >= 0) {
			s->grey_forced = true;
			s->grey_state = (unsigned)grey;
		}
	}
	if (s == NULL || snapshot_start(s, &d) != 0) {
		for (i = 0; i < d.n; i++)
			fprintf(stderr, "%s\n", d.msgs[i]);
		diag_free(&d);
		snapshot_release(s);
		free(msg);
		free(rr);
		return 1;
	}
	snapshot_publish(s);
	{
		struct check_msg m = { ip, helo, from, auth, rr, nrr, msg,
		    len, trace };
		char *json = check_message(s, &m, &v);

		fputs(json, stdout);
		free(json);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
	verdict_clear(&v);
	for (i = 0; i < nrr; i++)
		verdict_clear(&rr[i].v);
	snapshot_clear();
	free(msg);
	free(rr);
	return rc;
}
