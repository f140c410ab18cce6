/*
 * common.c - helpers of the policy module: allocators, diagnostics (the
 * load context, sorting into file order, formatting), "did you mean"
 * suggestions and locale-independent number parsing.
 * Owns: nothing global; diagnostics belong to the caller's struct pol_diag.
 * Limits: POL_DIAG_MAX items per load, POL_DIAG_FILE_MAX per list file.
 * Errors: the allocators abort on exhaustion; parsers return -1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_int.h"

void *
pol_xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	if ((p = malloc(n)) == NULL)
		abort();
	return p;
}

void *
pol_xcalloc(size_t n, size_t sz)
{
	void *p;

	if (n == 0 || sz == 0)
		n = sz = 1;
	if ((p = calloc(n, sz)) == NULL)
		abort();
	return p;
}

void *
pol_xreallocarray(void *p, size_t n, size_t sz)
{
	if (n == 0 || sz == 0)
		n = sz = 1;
	if (n > SIZE_MAX / sz)
		abort();
	if ((p = realloc(p, n * sz)) == NULL)
		abort();
	return p;
}

char *
pol_xstrdup(const char *s)
{
	return pol_xstrndup(s, strlen(s));
}

char *
pol_xstrndup(const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		abort();
	p = pol_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
pol_grow(void *arrp, size_t *cap, size_t need, size_t sz)
{
	void **arr = arrp;
	size_t ncap;

	if (need <= *cap)
		return;
	ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			abort();
		ncap *= 2;
	}
	*arr = pol_xreallocarray(*arr, ncap, sz);
	*cap = ncap;
}

bool
pol_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++)
		if (pol_lc((unsigned char)a[i]) != pol_lc((unsigned char)b[i]))
			return false;
	return true;
}

const char *
pol_quote(char *buf, size_t len, const char *s, size_t slen)
{
	size_t i, o = 0, max;

	if (len < 8) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	max = len - 4;
	if (max > 60)
		max = 60;
	for (i = 0; i < slen && o < max; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < slen) {
		/* do not leave half a UTF-8 sequence before the dots */
		while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

void
pol_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)pol_lc((unsigned char)*s);
}

/* ---- diagnostics ---- */

void
pol_ctx_init(struct pol_ctx *ctx, struct pol_diag *diag)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->diag = diag;
	ctx->first = diag->n;
}

static void
diag_append(struct pol_ctx *ctx, bool is_error, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct pol_diag *d = ctx->diag;
	struct pol_diag_item *it;
	struct pol_diag_key *k;
	size_t i;

	pol_grow(&d->items, &d->cap, d->n + 1, sizeof(*d->items));
	i = d->n - ctx->first;
	pol_grow(&ctx->keys, &ctx->capkeys, i + 1, sizeof(*ctx->keys));
	it = &d->items[d->n++];
	it->is_error = is_error;
	it->file = pol_xstrdup(file);
	it->line = line;
	it->col = col;
	it->msg = pol_xstrdup(msg);
	if (is_error)
		d->nerrors++;
	k = &ctx->keys[i];
	if (ctx->sub) {
		k->line = ctx->subpos.line;
		k->col = ctx->subpos.col;
		k->sub = line;
	} else {
		k->line = line;
		k->col = col;
		k->sub = 0;
	}
	k->seq = ctx->seq++;
}

void
pol_report(struct pol_ctx *ctx, bool is_error, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (is_error)
		ctx->failed = true;
	if (ctx->full)
		return;
	if (ctx->sub && is_error) {
		if (ctx->subcount == POL_DIAG_FILE_MAX) {
			ctx->subcount++;
			diag_append(ctx, true, file, line, col,
			    "too many errors in this file, "
			    "not reporting more");
			return;
		}
		if (ctx->subcount > POL_DIAG_FILE_MAX)
			return;
		ctx->subcount++;
	}
	if (ctx->diag->n - ctx->first + 1 >= POL_DIAG_MAX) {
		ctx->full = true;
		diag_append(ctx, true, file, line, col,
		    "too many errors, not reporting more");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_append(ctx, is_error, file, line, col, msg);
}

static int
key_cmp(const void *a, const void *b)
{
	const struct pol_diag_key *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* Sorts this load's items into file order and frees the context. */
void
pol_ctx_finish(struct pol_ctx *ctx)
{
	struct pol_diag *d = ctx->diag;
	struct pol_diag_item *tmp;
	size_t n = d->n - ctx->first, i;

	if (n > 1) {
		/* the sequence number indexes the unsorted items */
		qsort(ctx->keys, n, sizeof(*ctx->keys), key_cmp);
		tmp = pol_xreallocarray(NULL, n, sizeof(*tmp));
		for (i = 0; i < n; i++)
			tmp[i] = d->items[ctx->first + ctx->keys[i].seq];
		memcpy(&d->items[ctx->first], tmp, n * sizeof(*tmp));
		free(tmp);
	}
	free(ctx->keys);
	ctx->keys = NULL;
	ctx->capkeys = 0;
}

void
pol_diag_free(struct pol_diag *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].msg);
	}
	free(d->items);
	memset(d, 0, sizeof(*d));
}

int
pol_diag_format(const struct pol_diag_item *it, char *buf, size_t len)
{
	if (it == NULL || buf == NULL || len == 0)
		return -1;
	return snprintf(buf, len, "%s:%u:%u: %s%s", it->file, it->line,
	    it->col, it->is_error ? "" : "warning: ", it->msg);
}

/* ---- suggestions ---- */

#define SUGGEST_LEN_MAX 64

/*
 * Optimal string alignment distance (Levenshtein plus transpositions),
 * with three rolling rows to keep the stack small.
 */
static unsigned
edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned rows[3][SUGGEST_LEN_MAX + 1];
	unsigned *pp, *p, *c, cost, v;
	size_t i, j;

	for (j = 0; j <= lb; j++)
		rows[1][j] = (unsigned)j;
	pp = rows[0];
	p = rows[1];
	c = rows[2];
	for (i = 1; i <= la; i++) {
		c[0] = (unsigned)i;
		for (j = 1; j <= lb; j++) {
			cost = a[i - 1] == b[j - 1] ? 0 : 1;
			v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (p[j - 1] + cost < v)
				v = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
		}
		/* rotate: previous-previous <- previous <- current */
		{
			unsigned *t = pp;

			pp = p;
			p = c;
			c = t;
		}
	}
	return p[lb];
}

const char *
pol_suggest(const char *word, const char *const *cands, size_t ncands)
{
	const char *best = NULL;
	unsigned bestd = ~0u, d, limit;
	size_t lw = strlen(word), lc, i;

	if (lw == 0 || lw > SUGGEST_LEN_MAX)
		return NULL;
	for (i = 0; i < ncands; i++) {
		if (cands[i] == NULL)
			continue;
		lc = strlen(cands[i]);
		if (lc > SUGGEST_LEN_MAX || strcmp(word, cands[i]) == 0)
			continue;
		/* a third of the candidate, at least 1 and at most 3 edits */
		limit = (unsigned)(lc / 3);
		if (limit < 1)
			limit = 1;
		if (limit > 3)
			limit = 3;
		if ((lw > lc ? lw - lc : lc - lw) > limit)
			continue;
		d = edit_distance(word, lw, cands[i], lc);
		if (d <= limit && d < bestd) {
			best = cands[i];
			bestd = d;
		}
	}
	return best;
}

void
pol_suggest_fmt(char *buf, size_t len, const char *word,
    const char *const *cands, size_t ncands)
{
	const char *s;

	if (len > 0)
		buf[0] = '\0';
	if ((s = pol_suggest(word, cands, ncands)) != NULL)
		snprintf(buf, len, " (did you mean '%s'?)", s);
}

/* ---- numbers ---- */

/* [+-]digits[.digits], at most 15 significant digits. */
int
pol_parse_num(const char *s, double *out)
{
	double v = 0, scale = 1;
	bool neg = false, dot = false;
	unsigned ndig = 0;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; *s != '\0'; s++) {
		if (*s == '.' && !dot && ndig > 0) {
			dot = true;
			continue;
		}
		if (*s < '0' || *s > '9' || ++ndig > 15)
			return -1;
		if (dot) {
			scale /= 10;
			v += (*s - '0') * scale;
		} else
			v = v * 10 + (*s - '0');
	}
	if (ndig == 0 || s[-1] == '.')
		return -1;
	*out = neg ? -v : v;
	return 0;
}

/* Decimal, or hexadecimal with 0x. */
int
pol_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0, base = 10, d;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9')
			d = (unsigned long)(*p - '0');
		else if (base == 16 && pol_lc(*p) >= 'a' && pol_lc(*p) <= 'f')
			d = (unsigned long)(pol_lc(*p) - 'a' + 10);
		else
			return -1;
		if (v > (max - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* 30s 5m 4h 35d, at most ten years. */
int
pol_parse_duration(const char *s, unsigned *out)
{
	unsigned long v, mult;
	size_t len = strlen(s);
	char num[24];

	if (len < 2 || len > sizeof(num))
		return -1;
	switch (s[len - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return -1;
	}
	memcpy(num, s, len - 1);
	num[len - 1] = '\0';
	if (strspn(num, "0123456789") != len - 1 ||
	    pol_parse_uint(num, 3650UL * 86400, &v) != 0 ||
	    v > 3650UL * 86400 / mult)
		return -1;
	*out = (unsigned)(v * mult);
	return 0;
}
