/*
 * check.c - the checker: resolves fact and list names, checks that each
 * test fits the type of its fact and that enumerated values exist,
 * compiles regular expressions, checks reply texts and their %{fact}
 * references, records which facts the policy references, and warns
 * about rules that are shadowed, can never match, or would tempfail
 * every message, and about unused lists and settings.
 * Owns: nothing; it completes the struct policy the parser built.
 * Limits: the trees are at most about 2 * POL_EXPR_DEPTH_MAX deep (the
 * parser enforces it), which bounds the recursion here.
 * Errors: reported through the load context, all of them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_int.h"

struct checker {
	struct pol_ctx *ctx;		/* borrows */
	struct policy *pol;		/* borrows */
	struct pol_pos refpos[POL_FACT_COUNT];	/* first reference */
	bool in_score;			/* checking a score rule */
};

static void
cerr(struct checker *c, struct pol_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
cwarn(struct checker *c, struct pol_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cerr(struct checker *c, struct pol_pos pos, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol_report(c->ctx, true, c->pol->file, pos.line, pos.col, "%s", msg);
}

static void
cwarn(struct checker *c, struct pol_pos pos, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol_report(c->ctx, false, c->pol->file, pos.line, pos.col, "%s",
	    msg);
}

static void
add_header(struct policy *pol, const char *name)
{
	size_t i;

	for (i = 0; i < pol->nheaders; i++)
		if (strcmp(pol->headers[i], name) == 0)
			return;
	pol_grow(&pol->headers, &pol->capheaders, pol->nheaders + 1,
	    sizeof(*pol->headers));
	pol->headers[pol->nheaders++] = pol_xstrdup(name);
}

static void
add_ref(struct checker *c, int fact, struct pol_pos pos)
{
	if (!(c->pol->refs & (1ULL << fact)))
		c->refpos[fact] = pos;
	c->pol->refs |= 1ULL << fact;
}

/* Resolves a fact name; -1 (and an error) when unknown. */
static int
resolve_fact(struct checker *c, const char *name, struct pol_pos pos,
    const char *where, char **hname)
{
	const char *const *names;
	char sug[80], q[80];
	size_t n;
	int f;

	f = pol_fact_lookup(name, strlen(name));
	if (f < 0) {
		if (strncmp(name, "header.", 7) == 0) {
			cerr(c, pos, "invalid header name in '%s'%s",
			    pol_quote(q, sizeof(q), name, strlen(name)), where);
			return -1;
		}
		names = pol_fact_names(&n);
		pol_suggest_fmt(sug, sizeof(sug), name, names, n);
		cerr(c, pos, "unknown fact '%s'%s%s", pol_quote(q, sizeof(q),
		    name, strlen(name)), where, sug);
		return -1;
	}
	if (f == POL_FACT_HEADER) {
		*hname = pol_xstrdup(name + 7);
		pol_lower(*hname);
		add_header(c->pol, *hname);
	}
	if (f == POL_FACT_SCORE && c->in_score) {
		cerr(c, pos, "a score rule cannot use 'score'");
		return -1;
	}
	add_ref(c, f, pos);
	return f;
}

static void
value_list(const struct pol_fact_def *d, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < d->nvalues && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "",
		    d->values[i]);
}

static void
check_is(struct checker *c, struct pol_node *n, const struct pol_fact_def *d)
{
	static const char *const bools[] = { "true", "false" };
	char sug[256], q[80], vals[200];
	size_t i;

	switch (d->kind) {
	case POL_FK_BOOL:
		if (strcmp(n->str, "true") == 0 ||
		    strcmp(n->str, "false") == 0) {
			n->num = n->str[0] == 't';
			return;
		}
		pol_suggest_fmt(sug, sizeof(sug), n->str, bools, 2);
		cerr(c, n->vpos, "unknown value '%s' for fact '%s'%s",
		    pol_quote(q, sizeof(q), n->str, strlen(n->str)), n->fname,
		    sug[0] ? sug : " (expected true or false)");
		return;
	case POL_FK_NUM:
		if (pol_parse_num(n->str, &n->num) != 0)
			cerr(c, n->vpos, "'%s' is not a number (fact '%s' is "
			    "a number)", pol_quote(q, sizeof(q), n->str,
			    strlen(n->str)), n->fname);
		return;
	case POL_FK_ENUM:
		for (i = 0; i < d->nvalues; i++)
			if (pol_strcaseeq(n->str, strlen(n->str), d->values[i],
			    strlen(d->values[i])))
				return;
		{
			char *low = pol_xstrdup(n->str);

			pol_lower(low);
			pol_suggest_fmt(sug, sizeof(sug), low, d->values,
			    d->nvalues);
			free(low);
		}
		if (sug[0] == '\0') {
			value_list(d, vals, sizeof(vals));
			snprintf(sug, sizeof(sug), " (expected one of: %s)",
			    vals);
		}
		cerr(c, n->vpos, "unknown value '%s' for fact '%s'%s",
		    pol_quote(q, sizeof(q), n->str, strlen(n->str)), n->fname,
		    sug);
		return;
	case POL_FK_IP:
		if (pol_ip_parse(n->str, &n->ip) != 0)
			cerr(c, n->vpos, "'%s' is not an IP address",
			    pol_quote(q, sizeof(q), n->str, strlen(n->str)));
		return;
	default:
		return;
	}
}

static void
check_in(struct checker *c, struct pol_node *n, const struct pol_fact_def *d)
{
	struct policy *pol = c->pol;
	const char **names;
	char sug[80], lname[80];
	enum pol_match m;
	size_t i;

	if (d->kind == POL_FK_BOOL) {
		cerr(c, n->pos, "fact '%s' is true or false: use it alone, "
		    "not with 'in'", n->fname);
		return;
	}
	if (n->builtin == POL_BI_TRUSTED) {
		n->list = pol->trusted;
		snprintf(lname, sizeof(lname), "trusted networks");
	} else if (n->builtin == POL_BI_INTERNAL) {
		n->list = pol->internal;
		snprintf(lname, sizeof(lname), "internal domains");
	} else if (n->list_owned)
		snprintf(lname, sizeof(lname), "{...}");
	else {
		for (i = 0; i < pol->nlists; i++)
			if (strcmp(pol->lists[i]->name, n->str) == 0)
				break;
		if (i == pol->nlists) {
			names = pol_xreallocarray(NULL, pol->nlists + 1,
			    sizeof(*names));
			for (i = 0; i < pol->nlists; i++)
				names[i] = pol->lists[i]->name;
			pol_suggest_fmt(sug, sizeof(sug), n->str, names,
			    pol->nlists);
			free(names);
			cerr(c, n->vpos, "unknown list '%s'%s", n->str, sug);
			return;
		}
		n->list = pol->lists[i];
		n->list->used = true;
		snprintf(lname, sizeof(lname), "list '%s'", n->str);
	}
	if (n->list->count == 0)
		return;
	m = pol_fact_match((enum pol_fact)n->fact);
	if (m == POL_M_IP && n->list->nets.n4 + n->list->nets.n6 == 0)
		cwarn(c, n->pos, "%s holds no networks: '%s in' it never "
		    "matches", lname, n->fname);
	else if (m != POL_M_IP && m != POL_M_HOST && n->list->names.n == 0)
		cwarn(c, n->pos, "%s holds only networks: '%s in' it never "
		    "matches", lname, n->fname);
}

/*
 * How many copies of its operand glibc's regcomp() makes for the
 * quantifier at q: one for '*' and '?', two for '+', the larger bound of
 * "{n,m}" ('{' with no valid bound: 1).
 */
static unsigned long
regex_copies(const char *q)
{
	unsigned long n = 0, m;
	char *end;

	if (*q == '+')
		return 2;
	if (*q != '{')
		return 1;
	n = strtoul(q + 1, &end, 10);
	if (*end == ',' && end[1] != '}') {
		m = strtoul(end + 1, &end, 10);
		if (m > n)
			n = m;
	}
	return n > 0 ? n : 1;
}

/*
 * glibc's regcomp() expands repetitions into copies of the tree: stacked
 * quantifiers, nested repetition and large {n,m} bounds take exponential
 * time and memory at load time (found by fuzzing: "a++++...",
 * "((a{1,100}){1,100}){1,100}").  Refuses a quantifier on a quantifier,
 * and any atom whose copies, multiplied through the enclosing quantified
 * groups, exceed POL_REGEX_REPEAT_MAX.  Returns true (and why) for such a
 * pattern.
 */
static bool
regex_too_costly(const char *re, char *why, size_t whylen)
{
	/* largest number of copies of anything inside each open group */
	unsigned long inner[POL_REGEX_DEPTH_MAX + 1];
	size_t depth = 0;
	bool after_quant = false, in_class = false, after_atom = false;
	unsigned long last = 1;		/* copies in the last atom/group */
	const char *p;

	inner[0] = 1;
	for (p = re; *p != '\0'; p++) {
		if (in_class) {
			if (*p == ']')
				in_class = false;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?' || (*p == '{' &&
		    p[1] >= '0' && p[1] <= '9')) {
			unsigned long total;

			if (after_quant) {
				snprintf(why, whylen, "a quantifier on a "
				    "quantifier");
				return true;
			}
			if (!after_atom)
				continue;	/* literal, as glibc reads it */
			total = last * regex_copies(p);
			if (total > POL_REGEX_REPEAT_MAX) {
				snprintf(why, whylen, "more than %d "
				    "repetitions of one part",
				    POL_REGEX_REPEAT_MAX);
				return true;
			}
			if (total > inner[depth])
				inner[depth] = total;
			after_quant = true;
			if (*p == '{')
				while (p[1] != '\0' && *p != '}')
					p++;
			continue;
		}
		after_quant = false;
		switch (*p) {
		case '\\':
			if (p[1] != '\0')
				p++;
			last = 1;
			after_atom = true;
			break;
		case '[':
			in_class = true;
			/* "[]..." and "[^]..." hold a literal ']' */
			if (p[1] == '^')
				p++;
			if (p[1] == ']')
				p++;
			last = 1;
			after_atom = true;
			break;
		case '(':
			if (depth == POL_REGEX_DEPTH_MAX) {
				snprintf(why, whylen, "groups nested deeper "
				    "than %d", POL_REGEX_DEPTH_MAX);
				return true;
			}
			inner[++depth] = 1;
			after_atom = false;
			break;
		case ')':
			last = depth > 0 ? inner[depth--] : 1;
			if (last > inner[depth])
				inner[depth] = last;
			after_atom = true;
			break;
		case '|':
		case '^':
		case '$':
			after_atom = false;
			break;
		default:
			last = 1;
			after_atom = true;
		}
	}
	return false;
}

static void
check_regex(struct checker *c, struct pol_node *n)
{
	char buf[200];
	const char *s;
	int r;

	/*
	 * glibc accepts back-references in EREs; matching them can take
	 * exponential time on hostile text, so they are refused.
	 */
	for (s = n->str; *s != '\0'; s++) {
		if (*s != '\\')
			continue;
		if (s[1] >= '1' && s[1] <= '9') {
			cerr(c, n->vpos, "back-references such as '\\%c' are "
			    "not allowed in regular expressions", s[1]);
			return;
		}
		if (s[1] != '\0')
			s++;
	}
	if (regex_too_costly(n->str, buf, sizeof(buf))) {
		cerr(c, n->vpos, "regular expression too costly to compile: "
		    "%s", buf);
		return;
	}
	r = regcomp(&n->re, n->str, REG_EXTENDED | REG_NOSUB |
	    (n->icase ? REG_ICASE : 0));
	if (r != 0) {
		regerror(r, &n->re, buf, sizeof(buf));
		cerr(c, n->vpos, "invalid regular expression: %s", buf);
		return;
	}
	n->re_ok = true;
}

static void
check_node(struct checker *c, struct pol_node *n)
{
	const struct pol_fact_def *d;
	size_t i;

	switch (n->type) {
	case POL_N_TRUE:
	case POL_N_FALSE:
		return;
	case POL_N_AND:
	case POL_N_OR:
	case POL_N_NOT:
		for (i = 0; i < n->nkid; i++)
			check_node(c, n->kid[i]);
		return;
	default:
		break;
	}
	n->fact = resolve_fact(c, n->fname, n->pos, "", &n->hname);
	if (n->fact < 0)
		return;
	d = pol_fact_def((enum pol_fact)n->fact);
	switch (n->type) {
	case POL_N_BARE:
		if (d->kind == POL_FK_ENUM)
			cerr(c, n->pos, "fact '%s' is not true or false; "
			    "compare it, e.g. '%s is %s'", n->fname, n->fname,
			    d->values[0]);
		else if (d->kind == POL_FK_NUM)
			cerr(c, n->pos, "fact '%s' is a number; compare it, "
			    "e.g. '%s > 0'", n->fname, n->fname);
		break;
	case POL_N_IS:
		check_is(c, n, d);
		break;
	case POL_N_IN:
		check_in(c, n, d);
		break;
	case POL_N_MATCHES:
	case POL_N_CONTAINS:
		if (d->kind == POL_FK_BOOL || d->kind == POL_FK_NUM) {
			cerr(c, n->pos, "fact '%s' is %s: '%s' needs a text",
			    n->fname, d->kind == POL_FK_BOOL ?
			    "true or false" : "a number",
			    n->type == POL_N_MATCHES ? "matches" : "contains");
			break;
		}
		if (n->type == POL_N_MATCHES)
			check_regex(c, n);
		else if (n->str[0] == '\0')
			cwarn(c, n->vpos, "'contains \"\"' is true for every "
			    "value");
		break;
	case POL_N_CMP:
		if (d->kind != POL_FK_NUM)
			cerr(c, n->pos, "fact '%s' is not a number: compare "
			    "it with 'is', 'in', 'matches' or 'contains'",
			    n->fname);
		break;
	default:
		break;
	}
}

/* ---- texts ---- */

int
pol_text_fact(const char *s, size_t len, int *fact, char *hname,
    size_t hlen)
{
	size_t nlen;

	*fact = pol_fact_lookup(s, len);
	if (*fact < 0)
		return -1;
	if (*fact == POL_FACT_HEADER) {
		nlen = len - 7;
		if (nlen >= hlen)
			return -1;
		memcpy(hname, s + 7, nlen);
		hname[nlen] = '\0';
		pol_lower(hname);
	} else if (hlen > 0)
		hname[0] = '\0';
	return 0;
}

static bool
digits(const char *s, size_t min, size_t max, size_t *n)
{
	size_t i = 0;

	while (s[i] >= '0' && s[i] <= '9' && i <= max)
		i++;
	*n = i;
	return i >= min && i <= max;
}

static void
check_text(struct checker *c, const char *text, struct pol_pos pos,
    enum pol_action act, bool reply)
{
	char name[POL_NAME_MAX + 8], *hname = NULL, q[80];
	const char *p, *end;
	struct pol_pos at;
	size_t n, a, b;

	if (text == NULL)
		return;
	for (p = text; (p = strchr(p, '%')) != NULL; ) {
		at.line = pos.line;
		at.col = pos.col + 1 + (unsigned)(p - text);
		if (p[1] == '%') {
			p += 2;
			continue;
		}
		if (p[1] != '{') {
			p++;
			continue;
		}
		if ((end = strchr(p + 2, '}')) == NULL) {
			cerr(c, at, "unterminated '%%{' in text");
			break;
		}
		n = (size_t)(end - (p + 2));
		if (n == 0 || n >= sizeof(name)) {
			cerr(c, at, "bad fact reference '%s' in text",
			    pol_quote(q, sizeof(q), p, n + 3));
			p = end + 1;
			continue;
		}
		memcpy(name, p + 2, n);
		name[n] = '\0';
		if (resolve_fact(c, name, at, " in text", &hname) ==
		    POL_FACT_HEADER) {
			free(hname);
			hname = NULL;
		}
		p = end + 1;
	}
	if (!reply)
		return;
	/* an enhanced status code (RFC 3463) at the start sets the reply */
	if (text[0] >= '0' && text[0] <= '9' && text[1] == '.' &&
	    digits(text + 2, 1, 3, &a) && text[2 + a] == '.' &&
	    digits(text + 3 + a, 1, 3, &b) &&
	    (text[3 + a + b] == ' ' || text[3 + a + b] == '\0')) {
		n = 3 + a + b;
		pol_quote(q, sizeof(q), text, n);
		if (text[0] != '2' && text[0] != '4' && text[0] != '5')
			cerr(c, pos, "'%s' is not a valid enhanced status "
			    "code (the class is 2, 4 or 5)", q);
		else if (act == POL_ACT_REJECT && text[0] != '5')
			cerr(c, pos, "the text starts with status code '%s' "
			    "but reject needs a 5.x.x code", q);
		else if (act == POL_ACT_TEMPFAIL && text[0] != '4')
			cerr(c, pos, "the text starts with status code '%s' "
			    "but tempfail needs a 4.x.x code", q);
		else if (act != POL_ACT_REJECT && act != POL_ACT_TEMPFAIL &&
		    act != POL_ACT_NONE)
			cwarn(c, pos, "status code '%s' is not used: only "
			    "reject and tempfail send a reply text", q);
		return;
	}
	if (digits(text, 3, 3, &a) && (text[3] == ' ' || text[3] == '-' ||
	    text[3] == '\0') && (act == POL_ACT_REJECT ||
	    act == POL_ACT_TEMPFAIL))
		cerr(c, pos, "the text must not start with an SMTP reply "
		    "code; start it with an enhanced status code such as "
		    "'%s'", act == POL_ACT_REJECT ? "5.7.1" : "4.7.1");
}

/* ---- static evaluation (every fact unknown) ---- */

static bool
single_valued(const struct pol_node *n)
{
	const struct pol_fact_info *fi;

	if (n->fact < 0 || n->fact == POL_FACT_HEADER ||
	    n->fact == POL_FACT_RCPT || n->fact == POL_FACT_RCPT_DOMAIN)
		return false;
	fi = pol_fact_info((enum pol_fact)n->fact);
	return fi->type != POL_V_LIST;
}

/* Same test on the same fact, "not"/"neg" aside. */
static bool
same_test(const struct pol_node *a, const struct pol_node *b)
{
	if (a->type != b->type || a->fact < 0 || a->fact != b->fact)
		return false;
	if ((a->hname == NULL) != (b->hname == NULL) ||
	    (a->hname != NULL && strcmp(a->hname, b->hname) != 0))
		return false;
	switch (a->type) {
	case POL_N_BARE:
		return true;
	case POL_N_IS:
	case POL_N_CONTAINS:
		return pol_strcaseeq(a->str, strlen(a->str), b->str,
		    strlen(b->str));
	case POL_N_MATCHES:
		return a->icase == b->icase && strcmp(a->str, b->str) == 0;
	case POL_N_IN:
		return a->list != NULL && a->list == b->list;
	case POL_N_CMP:
		return a->cmp == b->cmp && a->num == b->num;
	default:
		return false;
	}
}

/* Whether a and b cannot both be true (or both be false). */
static bool
complement(const struct pol_node *a, const struct pol_node *b)
{
	if (same_test(a, b) && a->neg != b->neg)
		return true;
	if (a->type == POL_N_NOT && same_test(a->kid[0], b) &&
	    a->kid[0]->neg == b->neg)
		return true;
	if (b->type == POL_N_NOT && same_test(b->kid[0], a) &&
	    b->kid[0]->neg == a->neg)
		return true;
	return false;
}

static bool
exclusive(const struct pol_node *a, const struct pol_node *b)
{
	if (a->type != POL_N_IS || b->type != POL_N_IS || a->neg || b->neg ||
	    a->fact < 0 || a->fact != b->fact || !single_valued(a))
		return false;
	return !pol_strcaseeq(a->str, strlen(a->str), b->str, strlen(b->str));
}

static enum pol_tri
stat_eval(const struct pol_node *n)
{
	enum pol_tri t, r;
	size_t i, j;
	bool is_and;

	switch (n->type) {
	case POL_N_TRUE:
		return POL_TRUE;
	case POL_N_FALSE:
		return POL_FALSE;
	case POL_N_NOT:
		t = stat_eval(n->kid[0]);
		return t == POL_UNKNOWN ? t : t == POL_TRUE ? POL_FALSE :
		    POL_TRUE;
	case POL_N_AND:
	case POL_N_OR:
		is_and = n->type == POL_N_AND;
		r = is_and ? POL_TRUE : POL_FALSE;
		for (i = 0; i < n->nkid; i++) {
			t = stat_eval(n->kid[i]);
			if (t == (is_and ? POL_FALSE : POL_TRUE))
				return t;
			if (t == POL_UNKNOWN)
				r = POL_UNKNOWN;
		}
		if (r != POL_UNKNOWN)
			return r;
		/* a and not a; a is x and a is y; a or not a */
		for (i = 0; i < n->nkid; i++)
			for (j = i + 1; j < n->nkid; j++) {
				if (complement(n->kid[i], n->kid[j]))
					return is_and ? POL_FALSE : POL_TRUE;
				if (is_and && exclusive(n->kid[i], n->kid[j]))
					return POL_FALSE;
			}
		return POL_UNKNOWN;
	default:
		return POL_UNKNOWN;
	}
}

/* ---- the whole policy ---- */

static void
check_rules(struct checker *c)
{
	struct policy *pol = c->pol;
	const struct pol_rule *always = NULL;
	struct pol_rule *r;
	size_t i;

	for (i = 0; i < pol->nrules; i++) {
		r = &pol->rules[i];
		if (r->cond != NULL)
			check_node(c, r->cond);
		check_text(c, r->text, r->tpos, r->action, true);
		r->stat = r->cond == NULL ? POL_TRUE : stat_eval(r->cond);
		if (r->monitor) {
			if (pol->nmonitor >= POL_MONITOR_RULES_MAX)
				cerr(c, r->pos, "more than %d monitor rules",
				    POL_MONITOR_RULES_MAX);
			r->monitor_idx = pol->nmonitor++;
		}
		if (always != NULL)
			cwarn(c, r->pos, "rule '%s' is never reached: rule "
			    "'%s' (line %u) decides every message", r->name,
			    always->name, always->pos.line);
		else if (r->stat == POL_FALSE)
			cwarn(c, r->pos, "rule '%s' can never match", r->name);
		if (r->stat == POL_TRUE && r->action == POL_ACT_TEMPFAIL &&
		    always == NULL && !r->monitor)
			cwarn(c, r->pos, "rule '%s' tempfails every message: "
			    "no message could ever be delivered (its condition "
			    "does not depend on the message)", r->name);
		if (r->action == POL_ACT_STRIP && pol->nexts == 0)
			cwarn(c, r->apos, "'strip' has nothing to remove: "
			    "there is no 'attachments block' line");
		if (r->stat == POL_TRUE && !r->monitor && always == NULL)
			always = r;
	}
	if (pol->def_seen) {
		check_text(c, pol->def_text, pol->def_tpos, pol->def_action,
		    true);
		if (always != NULL)
			cwarn(c, pol->def_pos, "the default is never used: "
			    "rule '%s' (line %u) decides every message",
			    always->name, always->pos.line);
		else if (pol->def_action == POL_ACT_TEMPFAIL)
			cwarn(c, pol->def_pos, "'default tempfail' makes every "
			    "message that no rule decides wait forever");
		if (pol->def_action == POL_ACT_STRIP && pol->nexts == 0)
			cwarn(c, pol->def_pos, "'strip' has nothing to remove: "
			    "there is no 'attachments block' line");
	}
}

static void
check_scores(struct checker *c)
{
	struct pol_score *s;
	size_t i;

	c->in_score = true;
	for (i = 0; i < c->pol->nscores; i++) {
		s = &c->pol->scores[i];
		check_node(c, s->cond);
		s->stat = stat_eval(s->cond);
		if (s->stat == POL_FALSE)
			cwarn(c, s->pos, "score '%s' can never match", s->name);
	}
	c->in_score = false;
}

/* Derived facts mark the facts they are computed from. */
static void
close_refs(struct policy *pol)
{
	uint64_t r = pol->refs;

#define REF(f)	(1ULL << (f))
	if (pol->tag != NULL)
		r |= REF(POL_FACT_EXTERNAL);
	if (r & REF(POL_FACT_EXTERNAL))
		r |= REF(POL_FACT_TRUSTED) | REF(POL_FACT_AUTHENTICATED);
	if (r & REF(POL_FACT_FROM_INTERNAL))
		r |= REF(POL_FACT_FROM) | REF(POL_FACT_FROM_DOMAIN);
	if (r & (REF(POL_FACT_DMARC) | REF(POL_FACT_DMARC_POLICY)))
		r |= REF(POL_FACT_SPF) | REF(POL_FACT_DKIM) |
		    REF(POL_FACT_FROM_DOMAIN) | REF(POL_FACT_FROM);
	if (r & REF(POL_FACT_FROM_DOMAIN))
		r |= REF(POL_FACT_FROM);
	if (r & REF(POL_FACT_MAIL_FROM_DOMAIN))
		r |= REF(POL_FACT_MAIL_FROM);
	if (r & REF(POL_FACT_RCPT_DOMAIN))
		r |= REF(POL_FACT_RCPT);
	if (r & REF(POL_FACT_SCORE)) {
		size_t i;

		for (i = 0; i < pol->ndnsbl; i++)
			if (pol->dnsbl[i].weight != 0)
				r |= REF(POL_FACT_DNSBL_LISTED) |
				    REF(POL_FACT_DNSBL_ZONES);
		for (i = 0; i < pol->nuribl; i++)
			if (pol->uribl[i].weight != 0)
				r |= REF(POL_FACT_URIBL_LISTED) |
				    REF(POL_FACT_URIBL_DOMAINS);
	}
#undef REF
	pol->refs = r;
}

void
pol_check(struct policy *pol, struct pol_ctx *ctx)
{
	struct checker c;
	size_t i;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.pol = pol;
	check_scores(&c);
	check_rules(&c);
	if (pol->tag_cond != NULL)
		check_node(&c, pol->tag_cond);
	/* the tag text is literal: it is compared with Subjects */
	for (i = 0; i < pol->nlists; i++)
		if (!pol->lists[i]->used)
			cwarn(&c, pol->lists[i]->pos, "list '%s' is never used",
			    pol->lists[i]->name);
	if (pol->grey.configured &&
	    !(pol->refs & (1ULL << POL_FACT_GREYLIST)))
		cwarn(&c, pol->grey_pos, "the greylist settings are not used: "
		    "no rule tests 'greylist'");
	if (pol->nexts == 0 &&
	    (pol->refs & (1ULL << POL_FACT_ATTACHMENT_BLOCKED)))
		cwarn(&c, c.refpos[POL_FACT_ATTACHMENT_BLOCKED],
		    "'attachment.blocked' is never true: there is no "
		    "'attachments block' line");
	if (pol->ndnsbl == 0 &&
	    (pol->refs & (1ULL << POL_FACT_DNSBL_LISTED)))
		cwarn(&c, c.refpos[POL_FACT_DNSBL_LISTED],
		    "'dnsbl.listed' is never true: there is no 'dnsbl' line");
	if (pol->nuribl == 0 &&
	    (pol->refs & (1ULL << POL_FACT_URIBL_LISTED)))
		cwarn(&c, c.refpos[POL_FACT_URIBL_LISTED],
		    "'uribl.listed' is never true: there is no 'uribl' line");
	memcpy(pol->refpos, c.refpos, sizeof(pol->refpos));
	close_refs(pol);
}
