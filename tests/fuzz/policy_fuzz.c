/*
 * policy_fuzz.c - libFuzzer target for the policy language: lexer, parser,
 * checker, list files (that fail to open), evaluator at every stage with
 * and without the trace hook, %{fact} expansion, replies, the tag
 * condition and the read-only accessors.
 * Owns: the temporary directory that serves as the policy's base dir
 * (created once in LLVMFuzzerInitialize(), removed at exit); per input,
 * the loaded policy, its diagnostics and the fake facts, all freed before
 * returning, so LeakSanitizer sees every leak of the policy code.
 * Limits: at most FZ_POOL_MAX words of the input feed the fake facts.
 * Errors: a broken contract of policy.h aborts, so the fuzzer reports it
 * as a crash: NULL without an error, a control character or too long a
 * text from pol_expand(), no decision at eom, a trace step naming a fact
 * its rule does not read.  An input that names a list file outside the
 * empty base dir is rejected (-1) before it reaches the loader.
 * Uses pol_int.h (the lexer, the rules' texts and conditions): it is built
 * from the policy sources, not from the library.
 *
 * Build (tests/fuzz/run.sh does this):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Ipolicy policy/[a-z]*.c \
 *       tests/fuzz/policy_fuzz.c -o policy_fuzz
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <sys/socket.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_int.h"	/* the lexer, rule texts and conditions */

#define FZ_POOL_MAX	64	/* words and strings taken from the input */
#define FZ_WORD_MAX	300	/* bytes of one of them */
#define FZ_LIST_MAX	4	/* elements of a list-valued fact */
#define FZ_RCPT_MAX	3	/* recipients per message */
#define FZ_OUT_LEN	(POL_EXPAND_MAX + 32)

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char fz_dir[64];		/* fresh empty base dir of the policy */
static char fz_name[96];	/* fz_dir + "/fuzz.rules" */
static char *fz_alltext;	/* owns: "%{f1} %{f2} ..." of every fact */

/* Texts for pol_expand(): malformed references and the cut paths. */
static const char *const fz_texts[] = {
	"", "%", "%%", "%{", "%{}", "%{%{client.ip}}", "100%% %{score}",
	"%{client.ip", "%{header.}", "%{header.Subject}", "%{header.x-a}",
	"%{nosuch.fact}", "%{HELO}", "5.7.1 %{mail_from} %{rcpt} %{from}",
	"4.2.0 %{dnsbl.zones}%{uribl.domains}%{attachment.names}",
	"%{dkim.domains}%{dkim.domains}%{dkim.domains}%{dkim.domains}"
	"%{dkim.domains}%{dkim.domains}%{dkim.domains}%{dkim.domains}",
	"%{header.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
};

/* Values the fake facts draw from, besides the words of the input. */
static const char *const fz_strs[] = {
	"", "example.org", "Example.ORG.", "sub.example.org", "corp.example",
	"user@example.org", "User@Sub.Example.Org", "<>", "@", "a@", "@b",
	"postmaster", "pass", "fail", "softfail", "none", "reject",
	"quarantine", "new", "early", "passed", "allowed", "true", "0",
	"-1", "6", "10.5", "1e309", "nan", "x.exe", "Invoice.PDF.exe. ",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xc3", "\xff\xfe",
	"line\r\nRCPT TO:<x@y>", "\t\x01\x7f", "%{client.ip}%%",
	"[EXTERNAL] Re: hello", "192.0.2.1", "2001:db8::1", "IPv6:::1",
	"[10.1.2.3]", "zen.spamhaus.org", "127.0.0.2",
};

static const char *const fz_ips[] = {
	"192.0.2.1", "10.1.2.3", "127.0.0.1", "0.0.0.0", "255.255.255.255",
	"198.51.100.7", "203.0.113.9", "::1", "::", "2001:db8::1",
	"2001:db8:bad::7", "fe80::1", "::ffff:192.0.2.7", "::ffff:10.0.0.1",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "IPv6:2001:db8::2",
};

static const double fz_nums[] = {
	0, 1, -1, 2, 5, 6, 10, 0.5, 2.005, 99.995, -0.004, 1000, 20000001,
	1e15, -1e15, 1e300, -1e300, 4294967296.0,
};

/* The fake message: every fact drawn once from the input's hash. */
struct fz_msg {
	const struct policy *pol;	/* borrows */
	uint64_t rng;
	enum pol_stage stage;		/* stage being evaluated */
	unsigned rcpt;			/* current recipient */
	unsigned nrcpt;
	unsigned calls;			/* get() calls so far */
	unsigned fail_at;		/* fail the Nth call; 0: never */
	enum pol_stage known[POL_FACT_COUNT];	/* stage it becomes known */
	struct pol_value val[POL_FACT_COUNT];
	const char *list[POL_FACT_COUNT][FZ_LIST_MAX];	/* borrows */
	const char *rcpts[FZ_RCPT_MAX];	/* borrows */
	char *pool[FZ_POOL_MAX];	/* owns: words of the input */
	size_t npool;
	char *buf;			/* owns: a long value */
};

static void
fz_rmdir(void)
{
	if (fz_dir[0] != '\0')
		rmdir(fz_dir);
	free(fz_alltext);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	size_t i, len = 1, off = 0;
	char *t;

	(void)argc;
	(void)argv;
	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 40)
		tmp = "/tmp";
	if (snprintf(fz_dir, sizeof(fz_dir), "%s/polfuzz.XXXXXX", tmp) >=
	    (int)sizeof(fz_dir) || mkdtemp(fz_dir) == NULL) {
		perror("policy_fuzz: mkdtemp");
		abort();
	}
	snprintf(fz_name, sizeof(fz_name), "%s/fuzz.rules", fz_dir);
	atexit(fz_rmdir);
	for (i = 0; i < POL_FACT_COUNT; i++)
		len += strlen(pol_fact_info((enum pol_fact)i)->name) + 4;
	fz_alltext = t = malloc(len);
	if (t == NULL)
		abort();
	for (i = 0; i < POL_FACT_COUNT; i++)
		off += (size_t)snprintf(t + off, len - off, "%%{%s} ",
		    pol_fact_info((enum pol_fact)i)->name);
	return 0;
}

static uint64_t
fz_next(struct fz_msg *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
fz_pick(struct fz_msg *m, unsigned n)
{
	return n > 0 ? (unsigned)(fz_next(m) % n) : 0;
}

#define FZ_N(a)	(sizeof(a) / sizeof((a)[0]))

/* A string value: a word of the input, a fixed one, or the long one. */
static const char *
fz_str(struct fz_msg *m)
{
	unsigned r = fz_pick(m, 16);

	if (r < 7 && m->npool > 0)
		return m->pool[fz_pick(m, (unsigned)m->npool)];
	if (r == 7)
		return m->buf;
	return fz_strs[fz_pick(m, FZ_N(fz_strs))];
}

static bool
fz_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
	    c == '/' || c == '+' || c == '-' || c == '*' || c == ':' ||
	    c == '[' || c == ']' || c >= 0x80;
}

/* Words and quoted strings of the input, so that "is" and "in" hit. */
static void
fz_collect(struct fz_msg *m, const uint8_t *data, size_t size)
{
	size_t i = 0, start, end;
	char *w;

	while (i < size && m->npool < FZ_POOL_MAX) {
		if (data[i] == '"') {
			start = ++i;
			while (i < size && data[i] != '"' && data[i] != '\n')
				i++;
			end = i++;
		} else if (fz_word_char(data[i])) {
			start = i;
			while (i < size && fz_word_char(data[i]))
				i++;
			end = i;
		} else {
			i++;
			continue;
		}
		if (end - start > FZ_WORD_MAX)
			end = start + FZ_WORD_MAX;
		w = malloc(end - start + 1);
		if (w == NULL)
			abort();
		memcpy(w, data + start, end - start);
		w[end - start] = '\0';
		m->pool[m->npool++] = w;
	}
}

static void
fz_value(struct fz_msg *m, enum pol_fact f, struct pol_value *v)
{
	const struct pol_fact_info *fi = pol_fact_info(f);
	const char *const *vals;
	size_t nvals, i;

	memset(v, 0, sizeof(*v));
	v->type = fi->type;
	switch (fi->type) {
	case POL_V_BOOL:
		v->b = fz_pick(m, 2) != 0;
		break;
	case POL_V_NUM:
		if (fz_pick(m, 4) == 0 && m->npool > 0)
			v->num = strtod(m->pool[fz_pick(m,
			    (unsigned)m->npool)], NULL);
		else
			v->num = fz_nums[fz_pick(m, FZ_N(fz_nums))];
		if (!isfinite(v->num))
			v->num = 0;
		break;
	case POL_V_IP:
		v->s = fz_pick(m, 4) == 0 ? fz_str(m) :
		    fz_ips[fz_pick(m, FZ_N(fz_ips))];
		if (pol_ip_parse(v->s, &v->ip) != 0)
			memset(&v->ip, 0, sizeof(v->ip));
		else if (fz_pick(m, 4) == 0)
			v->s = NULL;	/* the evaluator formats .ip */
		break;
	case POL_V_LIST:
		v->nlist = fz_pick(m, FZ_LIST_MAX + 1);
		for (i = 0; i < v->nlist; i++)
			m->list[f][i] = fz_pick(m, 3) == 0 ?
			    fz_ips[fz_pick(m, FZ_N(fz_ips))] : fz_str(m);
		v->list = m->list[f];
		break;
	default:
		vals = pol_fact_values(f, &nvals);
		v->s = vals != NULL && fz_pick(m, 4) != 0 ?
		    vals[fz_pick(m, (unsigned)nvals)] : fz_str(m);
		break;
	}
}

static void
fz_msg_init(struct fz_msg *m, const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const struct pol_fact_info *fi;
	size_t i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	m->rng = h;
	fz_collect(m, data, size);
	m->buf = malloc(POL_FACT_VALUE_MAX * 2 + 1);
	if (m->buf == NULL)
		abort();
	/* a value longer than POL_FACT_VALUE_MAX, cut inside a UTF-8 char */
	for (i = 0; i < POL_FACT_VALUE_MAX * 2; i += 2)
		memcpy(m->buf + i, "\xc3\xa9", 2);
	m->buf[POL_FACT_VALUE_MAX * 2 - 1 - fz_pick(m, 2)] = '\0';
	m->fail_at = fz_pick(m, 8) == 0 ? 1 + fz_pick(m, 40) : 0;
	for (i = 0; i < POL_FACT_COUNT; i++) {
		fi = pol_fact_info((enum pol_fact)i);
		/* some facts arrive later than they could (lazy checks) */
		m->known[i] = fi->known_at;
		if (fz_pick(m, 3) == 0)
			m->known[i] += fz_pick(m,
			    (unsigned)(POL_STAGE_EOM - fi->known_at) + 1);
		fz_value(m, (enum pol_fact)i, &m->val[i]);
	}
	m->nrcpt = 1 + fz_pick(m, FZ_RCPT_MAX);
	for (i = 0; i < m->nrcpt; i++)
		m->rcpts[i] = fz_pick(m, 2) ? fz_str(m) : "bob@example.org";
}

static void
fz_msg_free(struct fz_msg *m)
{
	size_t i;

	for (i = 0; i < m->npool; i++)
		free(m->pool[i]);
	free(m->buf);
}

/* The fake provider: values fixed per message, known from m->known. */
static int
fz_get(void *ctx, enum pol_fact f, const char *hname, struct pol_value *out)
{
	struct fz_msg *m = ctx;
	uint64_t h = 0;
	const char *p;

	if ((int)f < 0 || f >= POL_FACT_COUNT)
		abort();	/* the evaluator asked for no fact */
	if ((f == POL_FACT_HEADER) != (hname != NULL))
		abort();	/* header_name only for POL_FACT_HEADER */
	memset(out, 0, sizeof(*out));
	out->type = POL_V_UNKNOWN;
	if (++m->calls == m->fail_at)
		return -1;
	if (m->stage < m->known[f])
		return 0;
	if (f == POL_FACT_HEADER) {
		/* a header: absent (""), or a value chosen by its name */
		for (p = hname; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h ^= m->rng;
		out->type = POL_V_STR;
		out->s = h % 5 == 0 ? "" : h % 5 == 1 ? m->buf :
		    m->npool > 0 ? m->pool[h % m->npool] :
		    fz_strs[h % FZ_N(fz_strs)];
		return 0;
	}
	*out = m->val[f];
	if (f == POL_FACT_RCPT && m->stage == POL_STAGE_RCPT)
		out->s = m->rcpts[m->rcpt];
	return 0;
}

/* pol_expand() must never emit a control character or too much. */
static void
fz_expand(const char *text, const struct pol_facts *pf,
    const struct pol_eval *ev)
{
	static const size_t lens[] = { 1, 2, 7, 64, FZ_OUT_LEN };
	char out[FZ_OUT_LEN];
	struct pol_reply rp;
	size_t i, j, n;

	for (i = 0; i < FZ_N(lens); i++) {
		memset(out, 'Z', sizeof(out));
		if (pol_expand_eval(text, pf, ev, out, lens[i]) != 0)
			continue;
		n = strnlen(out, lens[i]);
		if (n >= lens[i] || n > POL_EXPAND_MAX)
			abort();
		for (j = 0; j < n; j++)
			if ((unsigned char)out[j] < 0x20 ||
			    (unsigned char)out[j] == 0x7f)
				abort();
		if (lens[i] == FZ_OUT_LEN) {
			pol_reply_make(POL_ACT_REJECT, out, &rp);
			pol_reply_make(POL_ACT_TEMPFAIL, out, &rp);
			if (rp.text == NULL || rp.code != 451)
				abort();
		}
	}
}

/* Whether the condition names the fact ("header.NAME" for headers). */
static bool
fz_cond_reads(const struct pol_node *n, const char *name)
{
	size_t i;

	if (n == NULL)
		return false;
	for (i = 0; i < n->nkid; i++)
		if (fz_cond_reads(n->kid[i], name))
			return true;
	if (n->fact < 0 || n->fact >= POL_FACT_COUNT)
		return false;
	if (n->fact == POL_FACT_HEADER)
		return n->hname != NULL && strncmp(name, "header.", 7) == 0 &&
		    strcmp(name + 7, n->hname) == 0;
	return strcmp(name, pol_fact_info((enum pol_fact)n->fact)->name) == 0;
}

/*
 * The trace hook: a step names a rule or score rule of the policy, and
 * lists only facts its own condition reads, each once.
 */
static void
fz_trace(void *ctx, const struct pol_trace_step *st)
{
	const struct fz_msg *m = ctx;
	const struct policy *pol = m->pol;
	const struct pol_node *cond = NULL;
	bool found = false;
	size_t i, j;

	if (st == NULL || st->kind == NULL || st->name == NULL ||
	    st->stage != m->stage || (int)st->value < POL_FALSE ||
	    st->value > POL_UNKNOWN || st->nfacts > POL_TRACE_FACTS_MAX)
		abort();
	if (strcmp(st->kind, "score") == 0) {
		for (i = 0; i < pol->nscores && !found; i++)
			if ((found = pol->scores[i].name == st->name))
				cond = pol->scores[i].cond;
	} else if (strcmp(st->kind, "rule") == 0 ||
	    strcmp(st->kind, "monitor") == 0) {
		for (i = 0; i < pol->nrules && !found; i++)
			if ((found = pol->rules[i].name == st->name))
				cond = pol->rules[i].cond;
	}
	if (!found)
		abort();	/* not a rule of this policy */
	for (i = 0; i < st->nfacts; i++) {
		if (st->facts[i] == NULL || !fz_cond_reads(cond, st->facts[i]))
			abort();	/* a fact the condition does not read */
		for (j = 0; j < i; j++)
			if (strcmp(st->facts[i], st->facts[j]) == 0)
				abort();
	}
}

static void
fz_evaluate(const struct policy *pol, struct fz_msg *m,
    const struct pol_facts *pf)
{
	struct pol_eval ev;
	bool applies;
	unsigned r, n;
	int s, rc;

	pol_eval_init(&ev);
	if ((m->rng & 3) != 0) {	/* mostly traced, sometimes not */
		ev.trace = fz_trace;
		ev.trace_ctx = m;
	}
	for (s = POL_STAGE_CONNECT; s <= POL_STAGE_EOM; s++) {
		m->stage = (enum pol_stage)s;
		n = s == POL_STAGE_RCPT ? m->nrcpt : 1;
		for (r = 0; r < n; r++) {
			m->rcpt = r;
			rc = pol_evaluate(pol, m->stage, pf, &ev);
			if (rc != 0 || ev.nmonitored > POL_MONITORED_MAX)
				continue;
			if (ev.state == POL_TRUE && ev.rule == NULL)
				abort();
			if (s == POL_STAGE_EOM && ev.state != POL_TRUE)
				abort();	/* the default decides */
			if (ev.state == POL_TRUE)
				fz_expand(ev.text, pf, &ev);
		}
	}
	m->stage = POL_STAGE_EOM;
	(void)pol_tag_applies(pol, pf, &applies);
	(void)pol_action_name(ev.action);
	(void)pol_stage_name((enum pol_stage)(m->calls % POL_STAGE_COUNT));
}

/* The accessors the pipeline and "portcullis check" use. */
static void
fz_accessors(const struct policy *pol, struct fz_msg *m)
{
	static const uint8_t answers[][4] = {
		{ 127, 0, 0, 1 }, { 127, 0, 0, 2 }, { 127, 0, 1, 4 },
		{ 127, 255, 255, 254 }, { 10, 0, 0, 8 },
	};
	const struct pol_dnsbl *d;
	const char *const *names;
	struct pol_ip ip;
	unsigned line, col;
	size_t i, j, n;

	for (i = 0; i < POL_FACT_COUNT; i++) {
		(void)pol_references(pol, (enum pol_fact)i);
		(void)pol_reference_pos(pol, (enum pol_fact)i, &line, &col);
	}
	(void)pol_statement_pos(pol, "attachments", &line, &col);
	(void)pol_statement_pos(pol, "greylist", &line, &col);
	n = pol_header_names(pol, &names);
	for (i = 0; i < n; i++)
		if (names[i] == NULL || strlen(names[i]) > POL_NAME_MAX)
			abort();
	(void)pol_tag_text(pol);
	(void)pol_greylist(pol);
	(void)pol_attachment_exts(pol, &names);
	memset(&ip, 0, sizeof(ip));
	ip.family = AF_INET;
	for (i = 0; i < pol_dnsbl_count(pol) + pol_uribl_count(pol); i++) {
		d = i < pol_dnsbl_count(pol) ? pol_dnsbl_get(pol, i) :
		    pol_uribl_get(pol, i - pol_dnsbl_count(pol));
		for (j = 0; d != NULL && j < FZ_N(answers); j++) {
			memcpy(ip.addr, answers[j], 4);
			(void)pol_dnsbl_match(d, &ip);
		}
	}
	for (i = 0; i < m->npool && i < 16; i++) {
		(void)pol_domain_is_internal(pol, m->pool[i]);
		(void)pol_attachment_blocked(pol, m->pool[i]);
		(void)pol_list_contains(pol, "trusted networks", m->pool[i]);
		(void)pol_list_contains(pol, "internal domains", m->pool[i]);
		for (j = 0; j < pol->nlists && j < 8; j++)
			(void)pol_list_contains(pol, pol->lists[j]->name,
			    m->pool[i]);
		if (pol_ip_parse(m->pool[i], &ip) == 0)
			(void)pol_ip_is_trusted(pol, &ip);
	}
	for (i = 0; i < FZ_N(fz_ips); i++)
		if (pol_ip_parse(fz_ips[i], &ip) == 0)
			(void)pol_ip_is_trusted(pol, &ip);
}

/*
 * The loader opens "list NAME file PATH" relative to the base dir, but an
 * absolute PATH or one with "../" escapes it: such inputs are refused, with
 * the loader's own lexer so that escapes read as the parser reads them.
 */
static bool
fz_names_outside(const uint8_t *data, size_t size)
{
	struct pol_diag diag = { NULL, 0, 0, 0 };
	struct pol_ctx ctx;
	struct pol_lexer lx;
	struct pol_token t;
	bool after_file = false, bad = false;

	pol_ctx_init(&ctx, &diag);
	pol_lex_init(&lx, &ctx, fz_name, (const char *)data, size);
	for (;;) {
		pol_lex_next(&lx, &t);
		if (t.type == POL_T_EOF)
			break;
		if (after_file && t.type == POL_T_STRING &&
		    (memchr(t.val, '/', t.len) != NULL ||
		    strchr(t.val, '/') != NULL))
			bad = true;
		after_file = t.type == POL_T_WORD &&
		    strcasecmp(t.val, "file") == 0;
		pol_tok_clear(&t);
	}
	pol_tok_clear(&t);
	pol_ctx_finish(&ctx);
	pol_diag_free(&diag);
	return bad;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_diag diag = { NULL, 0, 0, 0 };
	struct pol_facts pf;
	struct policy *pol;
	struct fz_msg m;
	char line[512];
	size_t i;

	if (fz_name[0] == '\0')
		LLVMFuzzerInitialize(NULL, NULL);
	if (fz_names_outside(data, size))
		return -1;
	pol = pol_load_buffer(fz_name, (const char *)data, size, &diag);
	if (pol == NULL && diag.nerrors == 0)
		abort();	/* NULL comes with at least one error */
	if (pol != NULL && diag.nerrors != 0)
		abort();
	for (i = 0; i < diag.n; i++)
		if (diag.items[i].file == NULL || diag.items[i].msg == NULL ||
		    pol_diag_format(&diag.items[i], line, sizeof(line)) < 0)
			abort();
	pol_diag_free(&diag);
	if (pol == NULL)
		return 0;

	fz_msg_init(&m, data, size);
	m.pol = pol;
	pf.get = fz_get;
	pf.ctx = &m;
	fz_evaluate(pol, &m, &pf);
	fz_accessors(pol, &m);
	/* every text the policy holds, then fixed and input-made texts */
	m.stage = POL_STAGE_EOM;
	m.fail_at = 0;
	for (i = 0; i < pol->nrules; i++)
		fz_expand(pol->rules[i].text, &pf, NULL);
	fz_expand(pol->def_text, &pf, NULL);
	fz_expand(pol->tag, &pf, NULL);
	fz_expand(fz_alltext, &pf, NULL);
	for (i = 0; i < FZ_N(fz_texts); i++)
		fz_expand(fz_texts[i], &pf, NULL);
	for (i = 0; i < m.npool && i < 8; i++)
		fz_expand(m.pool[i], &pf, NULL);
	fz_msg_free(&m);
	pol_free(pol);
	return 0;
}
