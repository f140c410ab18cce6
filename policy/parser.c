/*
 * parser.c - recursive-descent parser of the policy language (DESIGN.md
 * section 3).  Builds the statements and condition trees of a struct
 * policy; names are resolved and types checked later by check.c.
 * Owns: nothing once it returns (everything it builds belongs to the
 * policy).  Reentrant: all state is in struct parser.
 * Limits: conditions nest at most POL_EXPR_DEPTH_MAX levels ('(' and
 * 'not'); deeper input is an error, so the recursion is bounded.  "and"
 * and "or" chains are built iteratively into n-ary nodes.
 * Errors: every syntax error is reported; after one the parser skips to
 * the next line that starts with a statement keyword and goes on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <sys/socket.h>

#include <stdio.h>
#include <string.h>

#include "pol_int.h"

struct parser {
	struct pol_ctx *ctx;	/* borrows */
	struct policy *pol;	/* borrows */
	const char *file;	/* borrows */
	struct pol_lexer lx;
	struct pol_token tok;	/* current token */
	struct pol_token la;	/* lookahead, when have_la */
	bool have_la;
	unsigned depth;		/* condition nesting */
	struct pol_pos stmt;	/* first token of the statement */
};

static const char *const stmt_words[] = {
	"internal", "trusted", "list", "dnsbl", "uribl", "attachments",
	"greylist", "external", "score", "rule", "default"
};
static const char *const reserved_words[] = {
	"and", "or", "not", "is", "in", "matches", "contains", "then",
	"add", "when", "unless", "true", "false"
};
static const char *const action_words[] = {
	"accept", "reject", "tempfail", "quarantine", "strip"
};
static const char *const bl_options[] = {
	"codes", "mask", "weight", "labels"
};
static const char *const grey_options[] = {
	"delay", "window", "expire", "netmask", "autoallow"
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static bool
in_words(const char *s, const char *const *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, w[i]) == 0)
			return true;
	return false;
}

static bool
is_word(const struct pol_token *t, const char *w)
{
	return t->type == POL_T_WORD && strcmp(t->val, w) == 0;
}

static bool
is_stmt_word(const struct pol_token *t)
{
	return t->type == POL_T_WORD &&
	    in_words(t->val, stmt_words, NELEM(stmt_words));
}

static bool
is_reserved(const struct pol_token *t)
{
	return t->type == POL_T_WORD &&
	    in_words(t->val, reserved_words, NELEM(reserved_words));
}

/* A statement keyword at the start of a line ends whatever came before. */
static bool
starts_stmt(const struct pol_token *t)
{
	return t->bol && is_stmt_word(t);
}

static void
next(struct parser *p)
{
	pol_tok_clear(&p->tok);
	if (p->have_la) {
		p->tok = p->la;
		memset(&p->la, 0, sizeof(p->la));
		p->have_la = false;
	} else
		pol_lex_next(&p->lx, &p->tok);
}

static const struct pol_token *
peek(struct parser *p)
{
	if (!p->have_la) {
		pol_lex_next(&p->lx, &p->la);
		p->have_la = true;
	}
	return &p->la;
}

static char *
steal(struct parser *p)
{
	char *v = p->tok.val;

	p->tok.val = NULL;
	return v != NULL ? v : pol_xstrdup("");
}

static struct pol_pos
tpos(const struct pol_token *t)
{
	struct pol_pos pos = { t->line, t->col };

	return pos;
}

/* "found ..." text for a token. */
static const char *
describe(const struct pol_token *t, char *buf, size_t len)
{
	char q[80];

	switch (t->type) {
	case POL_T_EOF:
		return "end of file";
	case POL_T_WORD:
		snprintf(buf, len, "'%s'", pol_quote(q, sizeof(q), t->val,
		    t->len));
		return buf;
	case POL_T_STRING:
		snprintf(buf, len, "string \"%s\"", pol_quote(q, sizeof(q),
		    t->val, t->len));
		return buf;
	case POL_T_REGEX:
		return "a regular expression";
	case POL_T_LBRACE:
		return "'{'";
	case POL_T_RBRACE:
		return "'}'";
	case POL_T_LPAREN:
		return "'('";
	case POL_T_RPAREN:
		return "')'";
	case POL_T_COMMA:
		return "','";
	case POL_T_COLON:
		return "':'";
	case POL_T_LT:
		return "'<'";
	case POL_T_LE:
		return "'<='";
	case POL_T_EQ:
		return "'=='";
	case POL_T_NE:
		return "'!='";
	case POL_T_GE:
		return "'>='";
	case POL_T_GT:
		return "'>'";
	}
	return "?";
}

static void
perr(struct parser *p, const struct pol_token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr(struct parser *p, const struct pol_token *t, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol_report(p->ctx, true, p->file, t->line, t->col, "%s", msg);
}

/* "expected WHAT, found X" with an optional suggestion among cands. */
static int
expected(struct parser *p, const char *what, const char *const *cands,
    size_t ncands)
{
	char buf[100], sug[80] = "";

	if (p->tok.type == POL_T_WORD && cands != NULL)
		pol_suggest_fmt(sug, sizeof(sug), p->tok.val, cands, ncands);
	perr(p, &p->tok, "expected %s, found %s%s", what,
	    describe(&p->tok, buf, sizeof(buf)), sug);
	return -1;
}

static bool
name_valid(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > POL_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' ||
		    (i > 0 && (c == '-' || c == '.'))))
			return false;
	}
	return true;
}

/* Takes a rule, score or list name. */
static char *
parse_name(struct parser *p, const char *what)
{
	char q[80];

	if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok)) {
		char buf[32];

		snprintf(buf, sizeof(buf), "a %s name", what);
		expected(p, buf, NULL, 0);
		return NULL;
	}
	if (!name_valid(p->tok.val)) {
		perr(p, &p->tok, "invalid %s name '%s' (letters, digits, "
		    "'_', '-' and '.', at most %d bytes)", what,
		    pol_quote(q, sizeof(q), p->tok.val, p->tok.len),
		    POL_NAME_MAX);
		return NULL;
	}
	return steal(p);
}

static int
expect_colon(struct parser *p, const char *after)
{
	char what[64];

	if (p->tok.type != POL_T_COLON) {
		snprintf(what, sizeof(what), "':' after the %s", after);
		return expected(p, what, NULL, 0);
	}
	next(p);
	return 0;
}

static int
parse_text(struct parser *p, char **text, struct pol_pos *pos)
{
	if (p->tok.type != POL_T_STRING)
		return expected(p, "a quoted text", NULL, 0);
	if (p->tok.len > POL_TEXT_MAX)
		perr(p, &p->tok, "text longer than %d bytes", POL_TEXT_MAX);
	*pos = tpos(&p->tok);
	*text = steal(p);
	next(p);
	return 0;
}

/* ---- conditions ---- */

static struct pol_node *
node_new(enum pol_ntype type, struct pol_pos pos)
{
	struct pol_node *n = pol_xcalloc(1, sizeof(*n));

	n->type = type;
	n->pos = pos;
	n->fact = -1;
	return n;
}

static void
node_add(struct pol_node *n, struct pol_node *kid)
{
	pol_grow(&n->kid, &n->capkid, n->nkid + 1, sizeof(*n->kid));
	n->kid[n->nkid++] = kid;
}

/*
 * Frees a tree.  Recursion is bounded: the parser never builds a tree
 * deeper than about twice POL_EXPR_DEPTH_MAX.
 */
void
pol_node_free(struct pol_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkid; i++)
		pol_node_free(n->kid[i]);
	free(n->kid);
	free(n->fname);
	free(n->hname);
	free(n->str);
	if (n->re_ok)
		regfree(&n->re);
	if (n->list_owned)
		pol_list_free(n->list);
	free(n);
}

static struct pol_node *parse_or(struct parser *);

static bool
entry_token(const struct pol_token *t)
{
	return (t->type == POL_T_WORD || t->type == POL_T_STRING) &&
	    !starts_stmt(t);
}

static void
add_entry(struct parser *p, struct pol_list *l, unsigned mask)
{
	char err[256];

	if (pol_list_add(l, p->tok.val, p->tok.len, mask,
	    p->tok.type == POL_T_STRING, err, sizeof(err)) != 0)
		perr(p, &p->tok, "%s", err);
}

/* "{ a, b c }": entries up to '}', commas optional. */
static int
parse_braces(struct parser *p, struct pol_list *l, unsigned mask)
{
	struct pol_pos open = tpos(&p->tok);
	char what[64];

	next(p);
	for (;;) {
		if (p->tok.type == POL_T_RBRACE) {
			next(p);
			return 0;
		}
		if (p->tok.type == POL_T_COMMA) {
			next(p);
			continue;
		}
		if (!entry_token(&p->tok)) {
			snprintf(what, sizeof(what), "an entry or '}' "
			    "(the '{' of line %u)", open.line);
			return expected(p, what, NULL, 0);
		}
		add_entry(p, l, mask);
		next(p);
	}
}

/* "a, b, c" after "internal domains" or "trusted networks". */
static int
parse_commalist(struct parser *p, struct pol_list *l, unsigned mask,
    const char *what)
{
	for (;;) {
		if (!entry_token(&p->tok))
			return expected(p, what, NULL, 0);
		add_entry(p, l, mask);
		next(p);
		if (p->tok.type != POL_T_COMMA)
			return 0;
		next(p);
	}
}

static int
parse_in_target(struct parser *p, struct pol_node *n)
{
	const struct pol_token *la;

	n->vpos = tpos(&p->tok);
	if (p->tok.type == POL_T_LBRACE) {
		n->list = pol_list_new(NULL, n->vpos);
		n->list_owned = true;
		return parse_braces(p, n->list, POL_ENT_ANY | POL_ENT_TEXT);
	}
	if (p->tok.type == POL_T_WORD && (strcmp(p->tok.val, "trusted") == 0 ||
	    strcmp(p->tok.val, "internal") == 0)) {
		bool trusted = p->tok.val[0] == 't';

		la = peek(p);
		if (is_word(la, trusted ? "networks" : "domains")) {
			n->builtin = trusted ? POL_BI_TRUSTED : POL_BI_INTERNAL;
			next(p);
			next(p);
			return 0;
		}
	}
	if (p->tok.type != POL_T_WORD || is_reserved(&p->tok) ||
	    starts_stmt(&p->tok))
		return expected(p, "a list name, 'trusted networks', "
		    "'internal domains' or '{' after 'in'", NULL, 0);
	n->str = steal(p);
	next(p);
	return 0;
}

static int
parse_cmp(const struct pol_token *t, enum pol_cmp *cmp)
{
	switch (t->type) {
	case POL_T_LT:
		*cmp = POL_CMP_LT;
		return 0;
	case POL_T_LE:
		*cmp = POL_CMP_LE;
		return 0;
	case POL_T_EQ:
		*cmp = POL_CMP_EQ;
		return 0;
	case POL_T_NE:
		*cmp = POL_CMP_NE;
		return 0;
	case POL_T_GE:
		*cmp = POL_CMP_GE;
		return 0;
	case POL_T_GT:
		*cmp = POL_CMP_GT;
		return 0;
	default:
		return -1;
	}
}

/* FACT [test] */
static struct pol_node *
parse_fact(struct parser *p)
{
	struct pol_node *n = node_new(POL_N_BARE, tpos(&p->tok));
	const struct pol_token *la;
	char buf[100];

	n->fname = steal(p);
	next(p);
	if (is_word(&p->tok, "is")) {
		n->type = POL_N_IS;
		next(p);
		if (is_word(&p->tok, "not")) {
			n->neg = true;
			next(p);
		}
		if (!(p->tok.type == POL_T_STRING ||
		    is_word(&p->tok, "true") || is_word(&p->tok, "false") ||
		    (p->tok.type == POL_T_WORD && !is_reserved(&p->tok) &&
		    !starts_stmt(&p->tok)))) {
			expected(p, "a value after 'is'", NULL, 0);
			goto fail;
		}
		n->quoted = p->tok.type == POL_T_STRING;
		n->vpos = tpos(&p->tok);
		n->str = steal(p);
		next(p);
		return n;
	}
	if (is_word(&p->tok, "not")) {
		la = peek(p);
		if (!is_word(la, "in") && !is_word(la, "matches") &&
		    !is_word(la, "contains")) {
			perr(p, la, "expected 'in', 'matches' or 'contains' "
			    "after '%s not', found %s", n->fname,
			    describe(la, buf, sizeof(buf)));
			goto fail;
		}
		n->neg = true;
		next(p);
	}
	if (is_word(&p->tok, "in")) {
		n->type = POL_N_IN;
		next(p);
		if (parse_in_target(p, n) != 0)
			goto fail;
		return n;
	}
	if (is_word(&p->tok, "matches")) {
		n->type = POL_N_MATCHES;
		next(p);
		if (p->tok.type != POL_T_REGEX) {
			expected(p, "a regular expression /.../ after "
			    "'matches'", NULL, 0);
			goto fail;
		}
		n->vpos = tpos(&p->tok);
		n->icase = p->tok.icase;
		n->str = steal(p);
		next(p);
		return n;
	}
	if (is_word(&p->tok, "contains")) {
		n->type = POL_N_CONTAINS;
		next(p);
		if (!(p->tok.type == POL_T_STRING ||
		    (p->tok.type == POL_T_WORD && !is_reserved(&p->tok) &&
		    !starts_stmt(&p->tok)))) {
			expected(p, "a text after 'contains'", NULL, 0);
			goto fail;
		}
		n->quoted = p->tok.type == POL_T_STRING;
		n->vpos = tpos(&p->tok);
		n->str = steal(p);
		next(p);
		return n;
	}
	if (parse_cmp(&p->tok, &n->cmp) == 0) {
		const char *op = describe(&p->tok, buf, sizeof(buf));
		char what[64];

		n->type = POL_N_CMP;
		snprintf(what, sizeof(what), "a number after %s", op);
		next(p);
		if (p->tok.type != POL_T_WORD ||
		    pol_parse_num(p->tok.val, &n->num) != 0) {
			expected(p, what, NULL, 0);
			goto fail;
		}
		n->vpos = tpos(&p->tok);
		n->str = steal(p);
		next(p);
		return n;
	}
	return n;
fail:
	pol_node_free(n);
	return NULL;
}

static struct pol_node *
parse_primary(struct parser *p)
{
	struct pol_node *n;

	if (p->tok.type == POL_T_LPAREN) {
		struct pol_pos open = tpos(&p->tok);

		if (++p->depth > POL_EXPR_DEPTH_MAX) {
			perr(p, &p->tok, "condition nested more than %d "
			    "levels deep", POL_EXPR_DEPTH_MAX);
			return NULL;
		}
		next(p);
		if ((n = parse_or(p)) == NULL)
			return NULL;
		p->depth--;
		if (p->tok.type != POL_T_RPAREN) {
			char what[64];

			snprintf(what, sizeof(what), "')' (for the '(' at "
			    "%u:%u)", open.line, open.col);
			expected(p, what, reserved_words, 3);
			pol_node_free(n);
			return NULL;
		}
		next(p);
		return n;
	}
	if (is_word(&p->tok, "true") || is_word(&p->tok, "false")) {
		n = node_new(p->tok.val[0] == 't' ? POL_N_TRUE : POL_N_FALSE,
		    tpos(&p->tok));
		next(p);
		return n;
	}
	if (p->tok.type != POL_T_WORD || is_reserved(&p->tok) ||
	    (starts_stmt(&p->tok) && pol_fact_lookup(p->tok.val,
	    p->tok.len) < 0)) {
		expected(p, "a condition", NULL, 0);
		return NULL;
	}
	return parse_fact(p);
}

static struct pol_node *
parse_unary(struct parser *p)
{
	struct pol_node *n, *kid;
	struct pol_pos pos;

	if (!is_word(&p->tok, "not"))
		return parse_primary(p);
	pos = tpos(&p->tok);
	if (++p->depth > POL_EXPR_DEPTH_MAX) {
		perr(p, &p->tok, "condition nested more than %d levels deep",
		    POL_EXPR_DEPTH_MAX);
		return NULL;
	}
	next(p);
	if ((kid = parse_unary(p)) == NULL)
		return NULL;
	p->depth--;
	n = node_new(POL_N_NOT, pos);
	node_add(n, kid);
	return n;
}

static struct pol_node *
parse_chain(struct parser *p, bool is_or)
{
	const char *op = is_or ? "or" : "and";
	struct pol_node *n, *kid;

	kid = is_or ? parse_chain(p, false) : parse_unary(p);
	if (kid == NULL || !is_word(&p->tok, op))
		return kid;
	n = node_new(is_or ? POL_N_OR : POL_N_AND, kid->pos);
	node_add(n, kid);
	while (is_word(&p->tok, op)) {
		next(p);
		kid = is_or ? parse_chain(p, false) : parse_unary(p);
		if (kid == NULL) {
			pol_node_free(n);
			return NULL;
		}
		node_add(n, kid);
	}
	return n;
}

static struct pol_node *
parse_or(struct parser *p)
{
	return parse_chain(p, true);
}

static struct pol_node *
parse_cond(struct parser *p)
{
	p->depth = 0;
	return parse_or(p);
}

/* ---- statements ---- */

static int
parse_action(struct parser *p, enum pol_action *act, struct pol_pos *pos)
{
	char sug[80], q[80];
	size_t i;

	if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok))
		return expected(p, "an action (accept, reject, tempfail, "
		    "quarantine or strip)", NULL, 0);
	*pos = tpos(&p->tok);
	for (i = 0; i < NELEM(action_words); i++)
		if (strcmp(p->tok.val, action_words[i]) == 0) {
			*act = (enum pol_action)(POL_ACT_ACCEPT + i);
			next(p);
			return 0;
		}
	pol_suggest_fmt(sug, sizeof(sug), p->tok.val, action_words,
	    NELEM(action_words));
	perr(p, &p->tok, "unknown action '%s'%s", pol_quote(q, sizeof(q),
	    p->tok.val, p->tok.len), sug);
	*act = POL_ACT_NONE;
	next(p);
	return 0;
}

/* Optional quoted text after an action. */
static int
parse_opt_text(struct parser *p, char **text, struct pol_pos *pos)
{
	if (p->tok.type == POL_T_STRING)
		return parse_text(p, text, pos);
	if (p->tok.type == POL_T_WORD && !p->tok.bol &&
	    !is_stmt_word(&p->tok)) {
		char buf[100];

		perr(p, &p->tok, "the text after the action must be quoted, "
		    "found %s", describe(&p->tok, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

static int
parse_rule(struct parser *p)
{
	struct pol_rule r;
	size_t i;

	memset(&r, 0, sizeof(r));
	next(p);
	r.pos = tpos(&p->tok);
	if ((r.name = parse_name(p, "rule")) == NULL)
		return -1;
	next(p);
	if (is_word(&p->tok, "monitor")) {
		r.monitor = true;
		next(p);
	}
	if (expect_colon(p, "rule name") != 0)
		goto fail;
	if (is_word(&p->tok, "when")) {
		next(p);
		if ((r.cond = parse_cond(p)) == NULL)
			goto fail;
		if (!is_word(&p->tok, "then")) {
			expected(p, "'then'", reserved_words, 8);
			goto fail;
		}
	} else if (!is_word(&p->tok, "then")) {
		expected(p, "'when' or 'then'", reserved_words, 10);
		goto fail;
	}
	next(p);
	if (parse_action(p, &r.action, &r.apos) != 0 ||
	    parse_opt_text(p, &r.text, &r.tpos) != 0)
		goto fail;
	for (i = 0; i < p->pol->nrules; i++)
		if (strcmp(p->pol->rules[i].name, r.name) == 0) {
			pol_report(p->ctx, true, p->file, r.pos.line,
			    r.pos.col, "duplicate rule name '%s' (first "
			    "defined at line %u)", r.name,
			    p->pol->rules[i].pos.line);
			break;
		}
	pol_grow(&p->pol->rules, &p->pol->caprules, p->pol->nrules + 1,
	    sizeof(r));
	p->pol->rules[p->pol->nrules++] = r;
	return 0;
fail:
	free(r.name);
	free(r.text);
	pol_node_free(r.cond);
	return -1;
}

static int
parse_score(struct parser *p)
{
	struct pol_score s;
	size_t i;

	memset(&s, 0, sizeof(s));
	next(p);
	s.pos = tpos(&p->tok);
	if ((s.name = parse_name(p, "score")) == NULL)
		return -1;
	next(p);
	if (expect_colon(p, "score name") != 0)
		goto fail;
	if (!is_word(&p->tok, "when")) {
		expected(p, "'when'", reserved_words, 10);
		goto fail;
	}
	next(p);
	if ((s.cond = parse_cond(p)) == NULL)
		goto fail;
	if (!is_word(&p->tok, "add")) {
		expected(p, "'add'", reserved_words, 9);
		goto fail;
	}
	next(p);
	if (p->tok.type != POL_T_WORD || pol_parse_num(p->tok.val,
	    &s.add) != 0) {
		expected(p, "a number after 'add'", NULL, 0);
		goto fail;
	}
	if (s.add > 1e6 || s.add < -1e6)
		perr(p, &p->tok, "score out of range (-1000000 to 1000000)");
	next(p);
	for (i = 0; i < p->pol->nscores; i++)
		if (strcmp(p->pol->scores[i].name, s.name) == 0) {
			pol_report(p->ctx, true, p->file, s.pos.line,
			    s.pos.col, "duplicate score name '%s' (first "
			    "defined at line %u)", s.name,
			    p->pol->scores[i].pos.line);
			break;
		}
	pol_grow(&p->pol->scores, &p->pol->capscores, p->pol->nscores + 1,
	    sizeof(s));
	p->pol->scores[p->pol->nscores++] = s;
	return 0;
fail:
	free(s.name);
	pol_node_free(s.cond);
	return -1;
}

static int
parse_default(struct parser *p)
{
	struct policy *pol = p->pol;
	enum pol_action act;
	struct pol_pos apos, tp = { 0, 0 };
	char *text = NULL;

	next(p);
	if (parse_action(p, &act, &apos) != 0 ||
	    parse_opt_text(p, &text, &tp) != 0) {
		free(text);
		return -1;
	}
	if (pol->def_seen) {
		pol_report(p->ctx, true, p->file, p->stmt.line, p->stmt.col,
		    "duplicate 'default' (first at line %u)",
		    pol->def_pos.line);
		free(text);
		return 0;
	}
	pol->def_seen = true;
	pol->def_action = act;
	pol->def_text = text;
	pol->def_pos = p->stmt;
	pol->def_tpos = tp;
	return 0;
}

static int
parse_external(struct parser *p)
{
	struct policy *pol = p->pol;
	struct pol_node *cond = NULL;
	struct pol_pos pos;
	char *text = NULL;

	next(p);
	if (!is_word(&p->tok, "tag"))
		return expected(p, "'tag' after 'external'", NULL, 0);
	next(p);
	if (parse_text(p, &text, &pos) != 0)
		return -1;
	if (text[0] == '\0')
		pol_report(p->ctx, true, p->file, pos.line, pos.col,
		    "the tag text is empty");
	if (is_word(&p->tok, "unless")) {
		next(p);
		if ((cond = parse_cond(p)) == NULL) {
			free(text);
			return -1;
		}
	}
	if (pol->tag != NULL) {
		pol_report(p->ctx, true, p->file, p->stmt.line, p->stmt.col,
		    "duplicate 'external tag' (first at line %u)",
		    pol->tag_pos.line);
		free(text);
		pol_node_free(cond);
		return 0;
	}
	pol->tag = text;
	pol->tag_pos = pos;
	pol->tag_cond = cond;
	return 0;
}

static int
parse_list(struct parser *p)
{
	struct policy *pol = p->pol;
	struct pol_list *l;
	struct pol_pos pos;
	char *name;
	size_t i;

	next(p);
	pos = tpos(&p->tok);
	if ((name = parse_name(p, "list")) == NULL)
		return -1;
	next(p);
	l = pol_list_new(name, pos);
	free(name);
	if (p->tok.type == POL_T_LBRACE) {
		if (parse_braces(p, l, POL_ENT_ANY | POL_ENT_TEXT) != 0)
			goto fail;
	} else if (is_word(&p->tok, "file")) {
		next(p);
		if (p->tok.type != POL_T_STRING) {
			expected(p, "a quoted file name after 'file'", NULL, 0);
			goto fail;
		}
		if (p->tok.len == 0)
			perr(p, &p->tok, "empty file name");
		l->path_pos = tpos(&p->tok);
		l->path = steal(p);
		next(p);
	} else {
		expected(p, "'{' or 'file' after the list name", NULL, 0);
		goto fail;
	}
	for (i = 0; i < pol->nlists; i++)
		if (strcmp(pol->lists[i]->name, l->name) == 0) {
			pol_report(p->ctx, true, p->file, pos.line, pos.col,
			    "duplicate list name '%s' (first defined at "
			    "line %u)", l->name, pol->lists[i]->pos.line);
			pol_list_free(l);
			return 0;
		}
	pol_grow(&pol->lists, &pol->caplists, pol->nlists + 1,
	    sizeof(*pol->lists));
	pol->lists[pol->nlists++] = l;
	return 0;
fail:
	pol_list_free(l);
	return -1;
}

static int
parse_bl_codes(struct parser *p, struct pol_code_range **codes,
    size_t *n)
{
	struct pol_code_range r;
	struct pol_ip lo, hi;
	char a[64], q[80], *dash;
	size_t cap = *n;

	for (;;) {
		if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok))
			return expected(p, "a return code (127.0.0.2 or a "
			    "range 127.0.0.2-127.0.0.11)", NULL, 0);
		snprintf(a, sizeof(a), "%s", p->tok.val);
		if ((dash = strchr(a, '-')) != NULL)
			*dash++ = '\0';
		if (p->tok.len >= sizeof(a) || pol_ip_parse(a, &lo) != 0 ||
		    lo.family != AF_INET || (dash != NULL &&
		    (pol_ip_parse(dash, &hi) != 0 || hi.family != AF_INET))) {
			perr(p, &p->tok, "'%s' is not a return code (an IPv4 "
			    "address or a range A-B)", pol_quote(q, sizeof(q),
			    p->tok.val, p->tok.len));
			return -1;
		}
		if (dash == NULL)
			hi = lo;
		r.lo = (uint32_t)lo.addr[0] << 24 | (uint32_t)lo.addr[1] << 16 |
		    (uint32_t)lo.addr[2] << 8 | lo.addr[3];
		r.hi = (uint32_t)hi.addr[0] << 24 | (uint32_t)hi.addr[1] << 16 |
		    (uint32_t)hi.addr[2] << 8 | hi.addr[3];
		if (r.lo > r.hi)
			perr(p, &p->tok, "empty range '%s': the first code is "
			    "above the second", pol_quote(q, sizeof(q),
			    p->tok.val, p->tok.len));
		if (*n >= POL_DNSBL_CODES_MAX) {
			perr(p, &p->tok, "more than %d codes",
			    POL_DNSBL_CODES_MAX);
			return -1;
		}
		pol_grow(codes, &cap, *n + 1, sizeof(**codes));
		(*codes)[(*n)++] = r;
		next(p);
		if (p->tok.type != POL_T_COMMA)
			return 0;
		next(p);
	}
}

static int
parse_bl_masks(struct parser *p, uint32_t **masks, size_t *n)
{
	unsigned long v;
	size_t cap = *n;
	char q[80];

	for (;;) {
		if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok))
			return expected(p, "a mask such as 0x08", NULL, 0);
		if (pol_parse_uint(p->tok.val, 0xffffffffUL, &v) != 0) {
			perr(p, &p->tok, "'%s' is not a mask (a number such "
			    "as 0x08)", pol_quote(q, sizeof(q), p->tok.val,
			    p->tok.len));
			return -1;
		}
		if (v == 0)
			perr(p, &p->tok, "mask 0 never matches");
		if (*n >= POL_DNSBL_CODES_MAX) {
			perr(p, &p->tok, "more than %d masks",
			    POL_DNSBL_CODES_MAX);
			return -1;
		}
		pol_grow(masks, &cap, *n + 1, sizeof(**masks));
		(*masks)[(*n)++] = (uint32_t)v;
		next(p);
		if (p->tok.type != POL_T_COMMA)
			return 0;
		next(p);
	}
}

static void
bl_free(struct pol_dnsbl *d)
{
	free((void *)d->zone);
	free((void *)d->codes);
	free((void *)d->masks);
}

static int
parse_bl(struct parser *p, bool uri)
{
	struct policy *pol = p->pol;
	const char *kw = uri ? "uribl" : "dnsbl";
	struct pol_dnsbl d, **arr = uri ? &pol->uribl : &pol->dnsbl;
	struct pol_code_range *codes = NULL;
	size_t *n = uri ? &pol->nuribl : &pol->ndnsbl;
	size_t *cap = uri ? &pol->capuribl : &pol->capdnsbl;
	uint32_t *masks = NULL;
	bool seen[4] = { false, false, false, false };
	char sug[80], q[80], *zone;
	size_t i, o;

	memset(&d, 0, sizeof(d));
	d.line = p->stmt.line;
	next(p);
	if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok))
		return expected(p, "a DNS zone", NULL, 0);
	if (!pol_domain_valid(p->tok.val, p->tok.len) ||
	    strchr(p->tok.val, '.') == NULL) {
		perr(p, &p->tok, "'%s' is not a DNS zone",
		    pol_quote(q, sizeof(q), p->tok.val, p->tok.len));
		return -1;
	}
	zone = steal(p);
	pol_lower(zone);
	if (zone[strlen(zone) - 1] == '.')
		zone[strlen(zone) - 1] = '\0';
	d.zone = zone;
	next(p);
	while (p->tok.type == POL_T_WORD) {
		for (o = 0; o < NELEM(bl_options); o++)
			if (strcmp(p->tok.val, bl_options[o]) == 0)
				break;
		if (o == NELEM(bl_options)) {
			if (p->tok.bol)
				break;
			pol_suggest_fmt(sug, sizeof(sug), p->tok.val,
			    bl_options, NELEM(bl_options));
			perr(p, &p->tok, "unknown %s option '%s'%s", kw,
			    pol_quote(q, sizeof(q), p->tok.val, p->tok.len),
			    sug);
			goto fail;
		}
		if (seen[o])
			perr(p, &p->tok, "duplicate '%s'", bl_options[o]);
		seen[o] = true;
		if (o == 3 && !uri) {
			perr(p, &p->tok, "'labels' is a uribl option");
			goto fail;
		}
		next(p);
		if (o == 0) {
			if (parse_bl_codes(p, &codes, &d.ncodes) != 0)
				goto fail;
		} else if (o == 1) {
			if (parse_bl_masks(p, &masks, &d.nmasks) != 0)
				goto fail;
		} else if (o == 3) {
			double v;

			/* uribl only: also query each link's host name cut
			 * to its last N labels, for lists that list host
			 * names below registered domains */
			if (p->tok.type != POL_T_WORD ||
			    pol_parse_num(p->tok.val, &v) != 0 ||
			    v != (double)(unsigned)v || v < 2 ||
			    v > POL_URIBL_LABELS_MAX) {
				expected(p, "a whole number from 2 to 10 "
				    "after 'labels'", NULL, 0);
				goto fail;
			}
			d.labels = (unsigned)v;
			next(p);
		} else {
			if (p->tok.type != POL_T_WORD ||
			    pol_parse_num(p->tok.val, &d.weight) != 0) {
				expected(p, "a number after 'weight'", NULL, 0);
				goto fail;
			}
			if (d.weight > 1e6 || d.weight < -1e6)
				perr(p, &p->tok, "weight out of range "
				    "(-1000000 to 1000000)");
			next(p);
		}
	}
	d.codes = codes;
	d.masks = masks;
	for (i = 0; i < *n; i++)
		if (strcmp((*arr)[i].zone, d.zone) == 0) {
			pol_report(p->ctx, true, p->file, p->stmt.line,
			    p->stmt.col, "duplicate %s zone '%s' (first at "
			    "line %u)", kw, d.zone, (*arr)[i].line);
			bl_free(&d);
			return 0;
		}
	if (d.weight != 0)
		pol->has_weights = true;
	pol_grow(arr, cap, *n + 1, sizeof(d));
	(*arr)[(*n)++] = d;
	return 0;
fail:
	d.codes = codes;
	d.masks = masks;
	bl_free(&d);
	return -1;
}

static bool
ext_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    c == '~' || (c == '.' && i > 0 && i + 1 < len)))
			return false;
	}
	return true;
}

static int
parse_attachments(struct parser *p)
{
	struct policy *pol = p->pol;
	bool after_comma = true;
	size_t i, n = 0;
	char q[80], *e;

	next(p);
	if (!is_word(&p->tok, "block")) {
		static const char *const block[] = { "block" };

		return expected(p, "'block' after 'attachments'", block, 1);
	}
	next(p);
	if (pol->exts_pos.line == 0)
		pol->exts_pos = p->stmt;
	/* the extensions end with the line, unless it ends in a comma */
	while (p->tok.type == POL_T_WORD && (!p->tok.bol || after_comma) &&
	    !starts_stmt(&p->tok)) {
		const char *s = p->tok.val;
		size_t len = p->tok.len;

		if (len > 0 && s[0] == '.') {
			s++;
			len--;
		}
		if (!ext_valid(s, len))
			perr(p, &p->tok, "'%s' is not a file name extension",
			    pol_quote(q, sizeof(q), p->tok.val, p->tok.len));
		else {
			e = pol_xstrndup(s, len);
			pol_lower(e);
			for (i = 0; i < pol->nexts; i++)
				if (strcmp(pol->exts[i], e) == 0)
					break;
			if (i < pol->nexts)
				free(e);
			else if (pol->nexts >= POL_EXTS_MAX) {
				free(e);
				perr(p, &p->tok, "more than %d extensions",
				    POL_EXTS_MAX);
				return -1;
			} else {
				pol_grow(&pol->exts, &pol->capexts,
				    pol->nexts + 1, sizeof(*pol->exts));
				pol->exts[pol->nexts++] = e;
			}
		}
		n++;
		next(p);
		after_comma = false;
		if (p->tok.type == POL_T_COMMA) {
			after_comma = true;
			next(p);
		}
	}
	if (n == 0)
		return expected(p, "a file name extension", NULL, 0);
	return 0;
}

static int
parse_grey_netmask(struct parser *p, struct pol_greylist *g)
{
	unsigned long v4, v6 = 0;
	char a[32], q[80], *slash;

	snprintf(a, sizeof(a), "%s", p->tok.val);
	if ((slash = strchr(a, '/')) != NULL)
		*slash++ = '\0';
	if (p->tok.len >= sizeof(a) || pol_parse_uint(a, 32, &v4) != 0 ||
	    v4 == 0 || (slash != NULL && (pol_parse_uint(slash, 128,
	    &v6) != 0 || v6 == 0))) {
		perr(p, &p->tok, "'%s' is not a netmask (an IPv4 prefix "
		    "length 1-32, optionally /IPv6 prefix length 1-128, "
		    "such as 24/64)", pol_quote(q, sizeof(q), p->tok.val,
		    p->tok.len));
		return -1;
	}
	g->netmask4 = (unsigned)v4;
	if (slash != NULL)
		g->netmask6 = (unsigned)v6;
	return 0;
}

static int
parse_greylist(struct parser *p)
{
	struct policy *pol = p->pol;
	struct pol_greylist g;
	bool seen[NELEM(grey_options)];
	char sug[80], q[80];
	unsigned long v;
	size_t o;
	unsigned *dur;

	memset(seen, 0, sizeof(seen));
	g = pol->grey;
	g.configured = true;
	next(p);
	while (p->tok.type == POL_T_WORD) {
		for (o = 0; o < NELEM(grey_options); o++)
			if (strcmp(p->tok.val, grey_options[o]) == 0)
				break;
		if (o == NELEM(grey_options)) {
			if (p->tok.bol)
				break;
			pol_suggest_fmt(sug, sizeof(sug), p->tok.val,
			    grey_options, NELEM(grey_options));
			perr(p, &p->tok, "unknown greylist option '%s'%s",
			    pol_quote(q, sizeof(q), p->tok.val, p->tok.len),
			    sug);
			return -1;
		}
		if (seen[o])
			perr(p, &p->tok, "duplicate '%s'", grey_options[o]);
		seen[o] = true;
		next(p);
		if (p->tok.type != POL_T_WORD || starts_stmt(&p->tok)) {
			char what[64];

			snprintf(what, sizeof(what), "a value after '%s'",
			    grey_options[o]);
			return expected(p, what, NULL, 0);
		}
		if (o <= 2) {
			dur = o == 0 ? &g.delay : o == 1 ? &g.window :
			    &g.expire;
			if (pol_parse_duration(p->tok.val, dur) != 0) {
				perr(p, &p->tok, "'%s' is not a duration "
				    "(such as 30s, 5m, 4h or 35d)",
				    pol_quote(q, sizeof(q), p->tok.val,
				    p->tok.len));
				return -1;
			}
		} else if (o == 3) {
			if (parse_grey_netmask(p, &g) != 0)
				return -1;
		} else {
			if (pol_parse_uint(p->tok.val, 1000000, &v) != 0) {
				perr(p, &p->tok, "'%s' is not a count "
				    "(0 to 1000000)", pol_quote(q, sizeof(q),
				    p->tok.val, p->tok.len));
				return -1;
			}
			g.autoallow = (unsigned)v;
		}
		next(p);
	}
	if (g.window <= g.delay)
		pol_report(p->ctx, true, p->file, p->stmt.line, p->stmt.col,
		    "greylist window (%us) must be longer than delay (%us)",
		    g.window, g.delay);
	if (g.expire < g.window)
		pol_report(p->ctx, true, p->file, p->stmt.line, p->stmt.col,
		    "greylist expire (%us) must not be shorter than window "
		    "(%us)", g.expire, g.window);
	if (pol->grey.configured) {
		pol_report(p->ctx, true, p->file, p->stmt.line, p->stmt.col,
		    "duplicate 'greylist' (first at line %u)",
		    pol->grey_pos.line);
		return 0;
	}
	pol->grey = g;
	pol->grey_pos = p->stmt;
	return 0;
}

static int
parse_stmt(struct parser *p)
{
	struct policy *pol = p->pol;
	char sug[80], q[80];

	p->stmt = tpos(&p->tok);
	if (p->tok.type != POL_T_WORD)
		return expected(p, "a statement", NULL, 0);
	if (is_word(&p->tok, "rule"))
		return parse_rule(p);
	if (is_word(&p->tok, "score"))
		return parse_score(p);
	if (is_word(&p->tok, "default"))
		return parse_default(p);
	if (is_word(&p->tok, "list"))
		return parse_list(p);
	if (is_word(&p->tok, "dnsbl"))
		return parse_bl(p, false);
	if (is_word(&p->tok, "uribl"))
		return parse_bl(p, true);
	if (is_word(&p->tok, "attachments"))
		return parse_attachments(p);
	if (is_word(&p->tok, "greylist"))
		return parse_greylist(p);
	if (is_word(&p->tok, "external"))
		return parse_external(p);
	if (is_word(&p->tok, "internal")) {
		next(p);
		if (!is_word(&p->tok, "domains"))
			return expected(p, "'domains' after 'internal'", NULL,
			    0);
		next(p);
		if (pol->internal_pos.line == 0)
			pol->internal_pos = p->stmt;
		return parse_commalist(p, pol->internal, POL_ENT_DOMAIN,
		    "a domain");
	}
	if (is_word(&p->tok, "trusted")) {
		next(p);
		if (!is_word(&p->tok, "networks"))
			return expected(p, "'networks' after 'trusted'", NULL,
			    0);
		next(p);
		if (pol->trusted_pos.line == 0)
			pol->trusted_pos = p->stmt;
		return parse_commalist(p, pol->trusted, POL_ENT_NET,
		    "an IP address or network");
	}
	pol_suggest_fmt(sug, sizeof(sug), p->tok.val, stmt_words,
	    NELEM(stmt_words));
	perr(p, &p->tok, "unknown statement '%s'%s", pol_quote(q, sizeof(q),
	    p->tok.val, p->tok.len), sug);
	return -1;
}

/*
 * After an error: skips to the next line that starts with a statement
 * keyword, or with anything not indented more than the failed statement
 * (so that a mistyped keyword on the next line is still reported).
 */
static void
sync_stmt(struct parser *p)
{
	while (p->tok.type != POL_T_EOF) {
		if (p->tok.bol && p->tok.line != p->stmt.line &&
		    (is_stmt_word(&p->tok) || p->tok.col <= p->stmt.col))
			return;
		next(p);
	}
}

void
pol_parse(struct policy *pol, struct pol_ctx *ctx, const char *file,
    const char *text, size_t len)
{
	struct parser p;
	char buf[100];

	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.pol = pol;
	p.file = file;
	pol_lex_init(&p.lx, ctx, file, text, len);
	next(&p);
	while (p.tok.type != POL_T_EOF) {
		if (parse_stmt(&p) != 0) {
			sync_stmt(&p);
			continue;
		}
		if (p.tok.type != POL_T_EOF && !p.tok.bol) {
			perr(&p, &p.tok, "unexpected %s after the statement "
			    "(one statement a line)", describe(&p.tok, buf,
			    sizeof(buf)));
			sync_stmt(&p);
		}
	}
	pol_tok_clear(&p.tok);
	pol_tok_clear(&p.la);
}
