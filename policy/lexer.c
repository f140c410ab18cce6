/*
 * lexer.c - tokenizer of the policy language: words, "strings" with \"
 * and \\ escapes, /regex/flags (only right after the word "matches"),
 * punctuation and comparison operators; # comments.
 * Owns: the value of the token it returns (freed by pol_tok_clear()).
 * Reentrant: all state is in struct pol_lexer.
 * Limits: POL_TOKEN_MAX bytes per token.  Errors: reported through the
 * load context; the lexer always recovers and returns the next token.
 * Columns count characters (UTF-8 sequences count once), from 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <string.h>

#include "pol_int.h"

void
pol_lex_init(struct pol_lexer *lx, struct pol_ctx *ctx, const char *file,
    const char *buf, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->ctx = ctx;
	lx->file = file;
	lx->buf = buf;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
}

void
pol_tok_clear(struct pol_token *t)
{
	free(t->val);
	memset(t, 0, sizeof(*t));
}

static void
adv(struct pol_lexer *lx)
{
	unsigned char c = (unsigned char)lx->buf[lx->pos++];

	if (c == '\n') {
		lx->line++;
		lx->col = 1;
	} else if ((c & 0xc0) != 0x80)
		lx->col++;
}

static int
cur(const struct pol_lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->buf[lx->pos] : -1;
}

static int
at(const struct pol_lexer *lx, size_t off)
{
	return lx->pos + off < lx->len ?
	    (unsigned char)lx->buf[lx->pos + off] : -1;
}

static bool
word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
	    c == '/' || c == '+' || c == '-' || c == '*' || c == ':' ||
	    c >= 0x80;
}

static bool
v6_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F') || c == ':' || c == '.' || c == '/';
}

/* Growing token value, bounded by POL_TOKEN_MAX. */
struct tbuf {
	char *p;
	size_t len, cap;
	bool over;
};

static void
tb_add(struct tbuf *b, char c)
{
	if (b->len >= POL_TOKEN_MAX) {
		b->over = true;
		return;
	}
	pol_grow(&b->p, &b->cap, b->len + 2, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

static void
tb_give(struct tbuf *b, struct pol_token *t)
{
	if (b->p == NULL)
		b->p = pol_xstrdup("");
	t->val = b->p;
	t->len = b->len;
}

static void
lex_error(struct pol_lexer *lx, unsigned line, unsigned col,
    const char *msg, int c)
{
	if (c < 0)
		pol_report(lx->ctx, true, lx->file, line, col, "%s", msg);
	else if (c > 0x20 && c < 0x7f)
		pol_report(lx->ctx, true, lx->file, line, col, "%s '%c'", msg,
		    c);
	else
		pol_report(lx->ctx, true, lx->file, line, col, "%s 0x%02x",
		    msg, c);
}

/* Skips blanks, newlines and comments. */
static void
skip_space(struct pol_lexer *lx)
{
	int c;

	while ((c = cur(lx)) >= 0) {
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '\f' || c == '\v')
			adv(lx);
		else if (c == '#') {
			while ((c = cur(lx)) >= 0 && c != '\n')
				adv(lx);
		} else
			break;
	}
}

static void
lex_word(struct pol_lexer *lx, struct pol_token *t)
{
	size_t start = lx->pos, end, colon = 0, ncolon = 0, i;
	bool v6 = true;

	for (end = start; end < lx->len &&
	    word_char((unsigned char)lx->buf[end]); end++) {
		if (lx->buf[end] == ':') {
			if (ncolon++ == 0)
				colon = end;
		} else if (!v6_char((unsigned char)lx->buf[end]))
			v6 = false;
	}
	/*
	 * A colon belongs to the word only in an IPv6 literal ("::1",
	 * "2001:db8::/32"); elsewhere it ends the word: "rule name:".
	 */
	if (ncolon > 0 && !(v6 && ncolon >= 2))
		end = colon;
	if (end - start > POL_TOKEN_MAX) {
		pol_report(lx->ctx, true, lx->file, t->line, t->col,
		    "word longer than %u bytes", POL_TOKEN_MAX);
		t->val = pol_xstrndup(lx->buf + start, POL_TOKEN_MAX);
		t->len = POL_TOKEN_MAX;
	} else {
		t->val = pol_xstrndup(lx->buf + start, end - start);
		t->len = end - start;
	}
	for (i = start; i < end; i++)
		adv(lx);
	t->type = POL_T_WORD;
}

static void
lex_string(struct pol_lexer *lx, struct pol_token *t, int quote)
{
	struct tbuf b = { NULL, 0, 0, false };
	bool ctl = false;
	int c, n;

	adv(lx);
	for (;;) {
		c = cur(lx);
		if (c < 0 || c == '\n') {
			pol_report(lx->ctx, true, lx->file, t->line, t->col,
			    "unterminated string");
			break;
		}
		if (c == quote) {
			adv(lx);
			break;
		}
		if (c == '\\') {
			n = at(lx, 1);
			if (n == quote || n == '\\') {
				adv(lx);
				adv(lx);
				tb_add(&b, (char)n);
				continue;
			}
			if (n < 0 || n == '\n') {
				adv(lx);
				continue;
			}
			if (n > 0x20 && n < 0x7f)
				pol_report(lx->ctx, true, lx->file, lx->line,
				    lx->col, "unknown escape '\\%c' in string "
				    "(only \\\" and \\\\ are known)", n);
			else
				lex_error(lx, lx->line, lx->col,
				    "unknown escape in string:", n);
			adv(lx);
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			if (!ctl)
				lex_error(lx, lx->line, lx->col,
				    "control character in string:", c);
			ctl = true;
			adv(lx);
			continue;
		}
		tb_add(&b, (char)c);
		adv(lx);
	}
	if (b.over)
		pol_report(lx->ctx, true, lx->file, t->line, t->col,
		    "string longer than %u bytes", POL_TOKEN_MAX);
	tb_give(&b, t);
	t->type = POL_T_STRING;
}

static void
lex_regex(struct pol_lexer *lx, struct pol_token *t)
{
	struct tbuf b = { NULL, 0, 0, false };
	bool closed = false;
	int c, n;

	adv(lx);
	for (;;) {
		c = cur(lx);
		if (c < 0 || c == '\n') {
			pol_report(lx->ctx, true, lx->file, t->line, t->col,
			    "unterminated regular expression");
			break;
		}
		if (c == '/') {
			adv(lx);
			closed = true;
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			lex_error(lx, lx->line, lx->col,
			    "control character in regular expression:", c);
			adv(lx);
			continue;
		}
		if (c == '\\' && (n = at(lx, 1)) >= 0x20 && n != 0x7f) {
			/* \/ is a slash; other escapes go to regcomp */
			if (n != '/')
				tb_add(&b, '\\');
			tb_add(&b, (char)n);
			adv(lx);
			adv(lx);
			continue;
		}
		tb_add(&b, (char)c);
		adv(lx);
	}
	while (closed && (c = cur(lx)) >= 0 &&
	    ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
		if (c == 'i')
			t->icase = true;
		else
			lex_error(lx, lx->line, lx->col,
			    "unknown regular expression flag", c);
		adv(lx);
	}
	if (b.over)
		pol_report(lx->ctx, true, lx->file, t->line, t->col,
		    "regular expression longer than %u bytes", POL_TOKEN_MAX);
	tb_give(&b, t);
	t->type = POL_T_REGEX;
}

void
pol_lex_next(struct pol_lexer *lx, struct pol_token *t)
{
	bool after_matches = lx->after_matches;
	int c, bad = -1;
	unsigned bline = 0, bcol = 0;

	memset(t, 0, sizeof(*t));
	for (;;) {
		skip_space(lx);
		t->line = lx->line;
		t->col = lx->col;
		c = cur(lx);
		if (c < 0) {
			t->type = POL_T_EOF;
			break;
		}
		if (c == '"') {
			lex_string(lx, t, '"');
			break;
		}
		if (c == '\'') {
			/* a common slip: report it, read it as a string */
			pol_report(lx->ctx, true, lx->file, t->line, t->col,
			    "strings use double quotes, not '");
			lex_string(lx, t, '\'');
			break;
		}
		if (c == '/' && after_matches) {
			lex_regex(lx, t);
			break;
		}
		if (word_char(c)) {
			lex_word(lx, t);
			if (t->len > 0)
				break;
			/* a lone ':' */
			free(t->val);
			t->val = NULL;
			adv(lx);
			t->type = POL_T_COLON;
			break;
		}
		adv(lx);
		switch (c) {
		case '{':
			t->type = POL_T_LBRACE;
			break;
		case '}':
			t->type = POL_T_RBRACE;
			break;
		case '(':
			t->type = POL_T_LPAREN;
			break;
		case ')':
			t->type = POL_T_RPAREN;
			break;
		case ',':
			t->type = POL_T_COMMA;
			break;
		case '<':
			t->type = POL_T_LT;
			if (cur(lx) == '=') {
				adv(lx);
				t->type = POL_T_LE;
			}
			break;
		case '>':
			t->type = POL_T_GT;
			if (cur(lx) == '=') {
				adv(lx);
				t->type = POL_T_GE;
			}
			break;
		case '=':
			t->type = POL_T_EQ;
			if (cur(lx) == '=')
				adv(lx);
			else
				pol_report(lx->ctx, true, lx->file, t->line,
				    t->col, "unexpected '=' "
				    "(did you mean '=='?)");
			break;
		case '!':
			if (cur(lx) == '=') {
				adv(lx);
				t->type = POL_T_NE;
				break;
			}
			goto badchar;
		default:
			goto badchar;
		}
		break;
badchar:
		/* report a run of bad characters once */
		if (bad < 0) {
			bad = c;
			bline = t->line;
			bcol = t->col;
		}
	}
	if (bad >= 0)
		lex_error(lx, bline, bcol, "unexpected character", bad);
	t->bol = t->line != lx->last_line;
	lx->last_line = t->line;
	lx->after_matches = t->type == POL_T_WORD &&
	    strcmp(t->val, "matches") == 0;
}
