/*
 * eval.c - evaluation of a loaded policy for one message: Kleene
 * three-valued conditions over the facts of a provider, staged rule
 * evaluation (first unknown rule waits, first true rule decides), monitor
 * rules, scores, the external tag condition, %{fact} expansion of texts
 * and SMTP replies.
 * Owns: nothing; per-call state lives on the stack, per-message state in
 * the caller's struct pol_eval.  Reentrant; the policy is only read.
 * Limits: recursion bounded by the condition depth (POL_EXPR_DEPTH_MAX);
 * POL_EXPAND_MAX / POL_FACT_VALUE_MAX for expansions.
 * Errors: -1 when the provider fails or, at POL_STAGE_EOM, when a fact
 * is still unknown (the caller applies on_error).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <sys/socket.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "pol_int.h"

struct run {
	const struct policy *pol;	/* borrows */
	const struct pol_facts *facts;	/* borrows */
	enum pol_stage stage;
	bool failed;
	uint64_t cached;		/* bit per fact in cache */
	struct pol_value cache[POL_FACT_COUNT];
	bool score_done;
	enum pol_tri score_t;
	double score;
	/* tracing: the facts the current rule read */
	const struct pol_eval *ev;	/* borrows; NULL: no trace */
	struct pol_trace_step step;
	/* header fact names: rules use the first half, score rules (which
	 * may run inside a rule's condition) the second */
	char hdrnames[2 * POL_TRACE_FACTS_MAX][80];
	bool in_score;
};

/* Notes a fact read by the rule being traced. */
static void
trace_fact(struct run *r, int fact, const char *hname)
{
	struct pol_trace_step *st = &r->step;
	const char *name = pol_fact_info((enum pol_fact)fact)->name;
	size_t i;

	if (r->ev == NULL || r->ev->trace == NULL)
		return;
	if (fact == POL_FACT_HEADER && hname != NULL) {
		if (st->nfacts >= POL_TRACE_FACTS_MAX)
			return;
		size_t slot = st->nfacts +
		    (r->in_score ? POL_TRACE_FACTS_MAX : 0);

		snprintf(r->hdrnames[slot], sizeof(r->hdrnames[0]),
		    "header.%s", hname);
		name = r->hdrnames[slot];
	}
	for (i = 0; i < st->nfacts; i++)
		if (strcmp(st->facts[i], name) == 0)
			return;
	if (st->nfacts < POL_TRACE_FACTS_MAX)
		st->facts[st->nfacts++] = name;
}

static void
trace_begin(struct run *r)
{
	r->step.nfacts = 0;
}

static void
trace_end(struct run *r, const char *kind, const char *name, enum pol_tri t)
{
	if (r->ev == NULL || r->ev->trace == NULL)
		return;
	r->step.stage = r->stage;
	r->step.kind = kind;
	r->step.name = name;
	r->step.value = t;
	r->ev->trace(r->ev->trace_ctx, &r->step);
}

static void
run_init(struct run *r, const struct policy *pol,
    const struct pol_facts *facts, enum pol_stage stage)
{
	memset(r, 0, sizeof(*r));
	r->pol = pol;
	r->facts = facts;
	r->stage = stage;
}

static enum pol_tri eval_node(struct run *, const struct pol_node *);

/* Asks the provider; 0, or -1 on failure (r->failed set). */
static int
ask(struct run *r, int fact, const char *hname, struct pol_value *out)
{
	memset(out, 0, sizeof(*out));
	out->type = POL_V_UNKNOWN;
	if (r->facts == NULL || r->facts->get == NULL)
		return 0;
	if (r->facts->get(r->facts->ctx, (enum pol_fact)fact, hname,
	    out) != 0 || (int)out->type < POL_V_UNKNOWN ||
	    out->type > POL_V_LIST) {
		r->failed = true;
		return -1;
	}
	return 0;
}

static void
compute_score(struct run *r)
{
	const struct pol_score *s;
	struct pol_value v;
	enum pol_tri t;
	size_t i;

	if (r->score_done)
		return;
	r->score_done = true;
	r->score_t = POL_TRUE;
	r->score = 0;
	for (i = 0; i < r->pol->nscores; i++) {
		struct pol_trace_step saved = r->step;

		s = &r->pol->scores[i];
		/* a score may be computed inside a rule's condition: keep
		 * that rule's trace */
		trace_begin(r);
		r->in_score = true;
		t = eval_node(r, s->cond);
		r->in_score = false;
		if (r->failed)
			return;
		trace_end(r, "score", s->name, t);
		r->step = saved;
		if (t == POL_TRUE)
			r->score += s->add;
		else if (t == POL_UNKNOWN)
			r->score_t = POL_UNKNOWN;
	}
	/* the provider's part: weights of the listing zones */
	if (!r->pol->has_weights)
		return;
	if (ask(r, POL_FACT_SCORE, NULL, &v) != 0)
		return;
	if (v.type == POL_V_NUM)
		r->score += v.num;
	else if (v.type == POL_V_UNKNOWN)
		r->score_t = POL_UNKNOWN;
	else
		r->failed = true;
	if (r->score_t == POL_UNKNOWN && r->stage == POL_STAGE_EOM)
		r->failed = true;
}

/* A fact for a test; 0, or -1 with r->failed set. */
static int
get_fact(struct run *r, int fact, const char *hname, struct pol_value *out)
{
	trace_fact(r, fact, hname);
	if (fact == POL_FACT_SCORE) {
		compute_score(r);
		if (r->failed)
			return -1;
		memset(out, 0, sizeof(*out));
		out->type = r->score_t == POL_UNKNOWN ? POL_V_UNKNOWN :
		    POL_V_NUM;
		out->num = r->score;
		return 0;
	}
	if (fact != POL_FACT_HEADER && (r->cached & (1ULL << fact))) {
		*out = r->cache[fact];
		return 0;
	}
	if (ask(r, fact, hname, out) != 0)
		return -1;
	/* at end of message every fact must be known */
	if (out->type == POL_V_UNKNOWN && r->stage == POL_STAGE_EOM) {
		r->failed = true;
		return -1;
	}
	if (fact != POL_FACT_HEADER) {
		r->cache[fact] = *out;
		r->cached |= 1ULL << fact;
	}
	return 0;
}

/* Integers without decimals, others with up to two; locale-free. */
static void
fmt_num(double v, char *buf, size_t len)
{
	long long ip;
	unsigned frac;
	bool neg = v < 0;

	if (neg)
		v = -v;
	if (!(v < 1e15)) {
		snprintf(buf, len, "%s", neg ? "-inf" : "inf");
		return;
	}
	ip = (long long)v;
	frac = (unsigned)((v - (double)ip) * 100 + 0.5);
	if (frac >= 100) {
		ip++;
		frac -= 100;
	}
	if (frac == 0)
		snprintf(buf, len, "%s%lld", neg && ip ? "-" : "", ip);
	else if (frac % 10 == 0)
		snprintf(buf, len, "%s%lld.%u", neg ? "-" : "", ip, frac / 10);
	else
		snprintf(buf, len, "%s%lld.%02u", neg ? "-" : "", ip, frac);
}

/* The text of a value element; "" for none. */
static const char *
value_text(const struct pol_value *v, char *buf, size_t len)
{
	switch (v->type) {
	case POL_V_BOOL:
		return v->b ? "true" : "false";
	case POL_V_NUM:
		fmt_num(v->num, buf, len);
		return buf;
	case POL_V_STR:
		return v->s != NULL ? v->s : "";
	case POL_V_IP:
		if (v->s != NULL)
			return v->s;
		if ((v->ip.family == AF_INET || v->ip.family == AF_INET6) &&
		    inet_ntop(v->ip.family, v->ip.addr, buf,
		    (socklen_t)len) != NULL)
			return buf;
		return "";
	default:
		return "";
	}
}

static bool
truth(const struct pol_value *v)
{
	switch (v->type) {
	case POL_V_BOOL:
		return v->b;
	case POL_V_NUM:
		return v->num != 0;
	case POL_V_STR:
		return v->s != NULL && v->s[0] != '\0';
	case POL_V_IP:
		return v->ip.family != 0 || (v->s != NULL && v->s[0] != '\0');
	case POL_V_LIST:
		return v->list != NULL && v->nlist > 0;
	default:
		return false;
	}
}

static size_t
trim_dot(const char *s, size_t len)
{
	return len > 0 && s[len - 1] == '.' ? len - 1 : len;
}

/* One element (string form s) against an "is" node. */
static bool
is_equal(const struct pol_node *n, const struct pol_value *v, const char *s)
{
	const struct pol_fact_def *d = pol_fact_def((enum pol_fact)n->fact);
	struct pol_ip ip;
	double num;

	switch (d->kind) {
	case POL_FK_BOOL:
		return (v->type == POL_V_BOOL ? v->b : truth(v)) ==
		    (n->num != 0);
	case POL_FK_NUM:
		if (v->type == POL_V_NUM)
			return v->num == n->num;
		return pol_parse_num(s, &num) == 0 && num == n->num;
	case POL_FK_IP:
		if (n->ip.family != 0) {
			if (v->type == POL_V_IP && v->ip.family != 0)
				return pol_ip_equal(&v->ip, &n->ip);
			if (pol_ip_parse(s, &ip) == 0)
				return pol_ip_equal(&ip, &n->ip);
		}
		break;
	case POL_FK_DOMAIN:
	case POL_FK_HOST:
		return pol_strcaseeq(s, trim_dot(s, strlen(s)), n->str,
		    trim_dot(n->str, strlen(n->str)));
	default:
		break;
	}
	return pol_strcaseeq(s, strlen(s), n->str, strlen(n->str));
}

static bool
in_list(const struct pol_node *n, const struct pol_value *v, const char *s)
{
	enum pol_match m = pol_fact_match((enum pol_fact)n->fact);

	if (n->list == NULL)
		return false;
	if (m == POL_M_IP && v->type == POL_V_IP && v->ip.family != 0)
		return pol_list_match_ip(n->list, &v->ip);
	return pol_list_match(n->list, m, s);
}

static bool
test_one(const struct pol_node *n, const struct pol_value *v, const char *s)
{
	switch (n->type) {
	case POL_N_IS:
		return is_equal(n, v, s);
	case POL_N_IN:
		return in_list(n, v, s);
	case POL_N_MATCHES:
		return n->re_ok && regexec(&n->re, s, 0, NULL, 0) == 0;
	case POL_N_CONTAINS:
		return strcasestr(s, n->str) != NULL;
	default:
		return false;
	}
}

static bool
compare(const struct pol_node *n, const struct pol_value *v)
{
	double x;

	if (v->type == POL_V_NUM)
		x = v->num;
	else if (v->type != POL_V_STR || v->s == NULL ||
	    pol_parse_num(v->s, &x) != 0)
		return false;
	switch (n->cmp) {
	case POL_CMP_LT:
		return x < n->num;
	case POL_CMP_LE:
		return x <= n->num;
	case POL_CMP_EQ:
		return x == n->num;
	case POL_CMP_NE:
		return x != n->num;
	case POL_CMP_GE:
		return x >= n->num;
	case POL_CMP_GT:
		return x > n->num;
	}
	return false;
}

static enum pol_tri
eval_test(struct run *r, const struct pol_node *n)
{
	struct pol_value v, e;
	char buf[64];
	bool res = false;
	size_t i;

	if (n->fact < 0 || get_fact(r, n->fact, n->hname, &v) != 0)
		return POL_UNKNOWN;
	if (v.type == POL_V_UNKNOWN)
		return POL_UNKNOWN;
	switch (n->type) {
	case POL_N_BARE:
		res = truth(&v);
		break;
	case POL_N_CMP:
		res = compare(n, &v);
		break;
	default:
		if (v.type != POL_V_LIST) {
			res = test_one(n, &v, value_text(&v, buf, sizeof(buf)));
			break;
		}
		/* a list-valued fact matches when any element does */
		memset(&e, 0, sizeof(e));
		e.type = POL_V_STR;
		for (i = 0; v.list != NULL && i < v.nlist && !res; i++) {
			e.s = v.list[i] != NULL ? v.list[i] : "";
			res = test_one(n, &e, e.s);
		}
		break;
	}
	if (n->neg)
		res = !res;
	return res ? POL_TRUE : POL_FALSE;
}

/*
 * Kleene logic.  "and" stops at the first false operand and "or" at the
 * first true one; an unknown operand does not stop them, since a later
 * operand may still decide.  Recursion is bounded by the tree depth.
 */
static enum pol_tri
eval_node(struct run *r, const struct pol_node *n)
{
	enum pol_tri t, res;
	size_t i;

	switch (n->type) {
	case POL_N_TRUE:
		return POL_TRUE;
	case POL_N_FALSE:
		return POL_FALSE;
	case POL_N_NOT:
		t = eval_node(r, n->kid[0]);
		return t == POL_UNKNOWN ? t : t == POL_TRUE ? POL_FALSE :
		    POL_TRUE;
	case POL_N_AND:
		res = POL_TRUE;
		for (i = 0; i < n->nkid; i++) {
			t = eval_node(r, n->kid[i]);
			if (r->failed || t == POL_FALSE)
				return r->failed ? POL_UNKNOWN : POL_FALSE;
			if (t == POL_UNKNOWN)
				res = POL_UNKNOWN;
		}
		return res;
	case POL_N_OR:
		res = POL_FALSE;
		for (i = 0; i < n->nkid; i++) {
			t = eval_node(r, n->kid[i]);
			if (r->failed || t == POL_TRUE)
				return r->failed ? POL_UNKNOWN : POL_TRUE;
			if (t == POL_UNKNOWN)
				res = POL_UNKNOWN;
		}
		return res;
	default:
		return eval_test(r, n);
	}
}

void
pol_eval_init(struct pol_eval *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->state = POL_UNKNOWN;
	ev->action = POL_ACT_NONE;
}

static void
monitor_fired(struct pol_eval *ev, const struct pol_rule *rule,
    enum pol_stage stage)
{
	unsigned i = rule->monitor_idx;
	struct pol_monitored *m;

	if (i >= 64 * (sizeof(ev->monitor_done) /
	    sizeof(ev->monitor_done[0])) ||
	    (ev->monitor_done[i / 64] & (1ULL << (i % 64))))
		return;
	ev->monitor_done[i / 64] |= 1ULL << (i % 64);
	if (ev->nmonitored >= POL_MONITORED_MAX)
		return;
	m = &ev->monitored[ev->nmonitored++];
	m->rule = rule->name;
	m->action = rule->action;
	m->stage = stage;
}

int
pol_evaluate(const struct policy *pol, enum pol_stage stage,
    const struct pol_facts *facts, struct pol_eval *ev)
{
	const struct pol_rule *rule;
	struct run r;
	enum pol_tri t;
	size_t i;

	if (pol == NULL || ev == NULL || (int)stage < 0 ||
	    stage >= POL_STAGE_COUNT)
		return -1;
	run_init(&r, pol, facts, stage);
	r.ev = ev;
	ev->state = POL_UNKNOWN;
	ev->action = POL_ACT_NONE;
	ev->rule = NULL;
	ev->text = NULL;
	ev->is_default = false;
	for (i = 0; i < pol->nrules; i++) {
		rule = &pol->rules[i];
		trace_begin(&r);
		t = rule->cond != NULL ? eval_node(&r, rule->cond) : POL_TRUE;
		if (r.failed)
			return -1;
		trace_end(&r, rule->monitor ? "monitor" : "rule", rule->name, t);
		if (rule->monitor) {
			/* monitor rules never decide nor wait */
			if (t == POL_TRUE)
				monitor_fired(ev, rule, stage);
			continue;
		}
		if (t == POL_FALSE)
			continue;
		if (t == POL_UNKNOWN) {
			ev->state = POL_UNKNOWN;
			goto out;
		}
		ev->state = POL_TRUE;
		ev->action = rule->action;
		ev->rule = rule->name;
		ev->text = rule->text;
		goto out;
	}
	if (stage == POL_STAGE_EOM) {
		ev->state = POL_TRUE;
		ev->action = pol->def_seen ? pol->def_action : POL_ACT_ACCEPT;
		ev->rule = "default";
		ev->text = pol->def_text;
		ev->is_default = true;
	} else
		ev->state = POL_FALSE;
out:
	/* the score: always at the end, else when a rule needed it */
	if (stage == POL_STAGE_EOM)
		compute_score(&r);
	if (r.failed)
		return -1;
	if (r.score_done) {
		ev->score = r.score;
		ev->score_known = r.score_t != POL_UNKNOWN;
	}
	return 0;
}

int
pol_tag_applies(const struct policy *pol, const struct pol_facts *facts,
    bool *applies)
{
	struct pol_value v;
	struct run r;
	enum pol_tri t;

	if (applies == NULL)
		return -1;
	*applies = false;
	if (pol == NULL)
		return -1;
	if (pol->tag == NULL)
		return 0;
	run_init(&r, pol, facts, POL_STAGE_EOM);
	if (get_fact(&r, POL_FACT_EXTERNAL, NULL, &v) != 0)
		return -1;
	if (!truth(&v))
		return 0;
	if (pol->tag_cond != NULL) {
		t = eval_node(&r, pol->tag_cond);
		if (r.failed)
			return -1;
		if (t != POL_FALSE)
			return 0;
	}
	*applies = true;
	return 0;
}

/* ---- expansion ---- */

struct out {
	char *buf;
	size_t len, max;
	bool cut;
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* no CR, LF or other control may reach a reply or header */
		if (c < 0x20 || c == 0x7f)
			continue;
		if (o->len >= o->max) {
			o->cut = true;
			return;
		}
		o->buf[o->len++] = (char)c;
	}
}

/* Drops a UTF-8 sequence that was cut in the middle. */
static size_t
utf8_trim(const char *s, size_t len)
{
	size_t i = len, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 &&
	    len - i < 3)
		i--;
	if (i == 0)
		return len;
	c = (unsigned char)s[i - 1];
	if (c < 0xc0)
		return len;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	return len - (i - 1) < need ? i - 1 : len;
}

/* One fact value, sanitised and cut at POL_FACT_VALUE_MAX bytes. */
static void
expand_value(struct out *o, const struct pol_value *v)
{
	char tmp[POL_FACT_VALUE_MAX + 1], nbuf[64];
	struct out vo = { tmp, 0, POL_FACT_VALUE_MAX, false };
	const char *s;
	size_t i;

	if (v->type == POL_V_LIST) {
		for (i = 0; v->list != NULL && i < v->nlist && !vo.cut; i++) {
			if (i > 0)
				out_add(&vo, ", ", 2);
			s = v->list[i] != NULL ? v->list[i] : "";
			out_add(&vo, s, strlen(s));
		}
	} else if (v->type != POL_V_UNKNOWN) {
		s = value_text(v, nbuf, sizeof(nbuf));
		out_add(&vo, s, strlen(s));
	}
	if (vo.cut)
		vo.len = utf8_trim(tmp, vo.len);
	out_add(o, tmp, vo.len);
}

int
pol_expand_eval(const char *text, const struct pol_facts *facts,
    const struct pol_eval *ev, char *buf, size_t len)
{
	char name[POL_NAME_MAX + 8], hname[POL_NAME_MAX + 1], nbuf[64];
	struct out o;
	struct pol_value v;
	struct run r;
	const char *p, *end;
	size_t n;
	int fact;

	if (buf == NULL || len == 0)
		return -1;
	buf[0] = '\0';
	if (text == NULL)
		return 0;
	o.buf = buf;
	o.len = 0;
	o.max = len - 1 < POL_EXPAND_MAX ? len - 1 : POL_EXPAND_MAX;
	o.cut = false;
	run_init(&r, NULL, facts, POL_STAGE_CONNECT);
	for (p = text; *p != '\0' && !o.cut; ) {
		if (p[0] != '%' || (p[1] != '%' && p[1] != '{')) {
			out_add(&o, p, 1);
			p++;
			continue;
		}
		if (p[1] == '%') {
			out_add(&o, "%", 1);
			p += 2;
			continue;
		}
		if ((end = strchr(p + 2, '}')) == NULL) {
			out_add(&o, p, strlen(p));
			break;
		}
		n = (size_t)(end - (p + 2));
		p = end + 1;
		if (n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, end - n, n);
		name[n] = '\0';
		if (pol_text_fact(name, n, &fact, hname, sizeof(hname)) != 0)
			continue;
		if (fact == POL_FACT_SCORE && ev != NULL) {
			if (ev->score_known) {
				fmt_num(ev->score, nbuf, sizeof(nbuf));
				out_add(&o, nbuf, strlen(nbuf));
			}
			continue;
		}
		if (ask(&r, fact, fact == POL_FACT_HEADER ? hname : NULL,
		    &v) != 0)
			return -1;
		expand_value(&o, &v);
	}
	if (o.cut)
		o.len = utf8_trim(buf, o.len);
	buf[o.len] = '\0';
	return 0;
}

int
pol_expand(const char *text, const struct pol_facts *facts, char *buf,
    size_t len)
{
	return pol_expand_eval(text, facts, NULL, buf, len);
}

/* ---- replies ---- */

void
pol_reply_make(enum pol_action act, const char *text, struct pol_reply *rp)
{
	size_t a = 0, b = 0;

	if (rp == NULL)
		return;
	memset(rp, 0, sizeof(*rp));
	if (act == POL_ACT_TEMPFAIL) {
		rp->code = 451;
		snprintf(rp->dsn, sizeof(rp->dsn), "4.7.1");
	} else if (act == POL_ACT_REJECT) {
		rp->code = 550;
		snprintf(rp->dsn, sizeof(rp->dsn), "5.7.1");
	} else {
		rp->code = 250;
		snprintf(rp->dsn, sizeof(rp->dsn), "2.0.0");
	}
	rp->text = text != NULL ? text : "";
	if (text == NULL)
		return;
	if (!(text[0] >= '0' && text[0] <= '9' && text[1] == '.'))
		return;
	while (a < 4 && text[2 + a] >= '0' && text[2 + a] <= '9')
		a++;
	if (a < 1 || a > 3 || text[2 + a] != '.')
		return;
	while (b < 4 && text[3 + a + b] >= '0' && text[3 + a + b] <= '9')
		b++;
	if (b < 1 || b > 3 || (text[3 + a + b] != ' ' &&
	    text[3 + a + b] != '\0'))
		return;
	if (text[0] != rp->dsn[0])
		return;
	memcpy(rp->dsn, text, 3 + a + b);
	rp->dsn[3 + a + b] = '\0';
	rp->text = text + 3 + a + b;
	if (*rp->text == ' ')
		rp->text++;
}
