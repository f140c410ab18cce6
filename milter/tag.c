/*
 * tag.c - prefixes the Subject of external mail with the admin's tag, once.
 * Decodes RFC 2047 with GMime to compare, re-encodes and folds by itself.
 * Owns: GMime's library state (tag_init/tag_shutdown); nothing per message.
 * Limits: tag.h (TAG_SUBJECT_MAX decoded, TAG_RAW_MAX raw, fold widths).
 * Errors: -1 on bad arguments, limits or allocation failure; no logging.
 *
 * Decisions, so that callers and reviewers need not read the code:
 * - Presence: the tag counts as present when it appears anywhere in the
 *   decoded Subject, compared with ASCII case folded and whitespace runs
 *   collapsed.  This covers "Re: [EXTERNAL] x", "AW: WG: Fwd[2]: [external]",
 *   "[list] [EXTERNAL] x" and tags split across encoded-words or folds,
 *   without a language-dependent list of reply prefixes (Re, AW, SV, VS, TR,
 *   RIF, R, Antw ...), and can never double-tag.  The price: a sender who
 *   writes the tag into his own Subject (say at its end) is not tagged again.
 * - Encoding: GMime 3.2's g_mime_utils_header_encode_text() emits
 *   encoded-words longer than RFC 2047's 75 characters, so this file encodes:
 *   UTF-8, Q or B whichever is shorter, only words that need it (8-bit,
 *   containing "=?", or too long for any line); ASCII words stay plain.
 * - Folding: "\n" followed by the whitespace that was there.  libmilter
 *   documents header values as lines separated by LF, not CRLF (the MTA adds
 *   the CR; Postfix splits records at "\n" and would keep a CR as data).
 * - Long Subjects: up to TAG_SUBJECT_MAX bytes (unfolded) are decoded,
 *   compared and re-encoded.  A longer one is still tagged (leaving external
 *   mail untagged is the unsafe failure): the tag is looked for in the
 *   decoded first TAG_SUBJECT_MAX bytes (the tag sits at the start), then
 *   prepended to the raw value, kept byte for byte except as tag.h says.
 *   Beyond TAG_RAW_MAX (more than libmilter can deliver) the answer is -1.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* memmem */
#endif

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "tag.h"
#include "util.h"

static bool	tag_ready;	/* set at start-up, read-only afterwards */

static const char hexdig[] = "0123456789ABCDEF";
static const char b64dig[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Hands the string over to the caller ("" when empty). */
static char *
buf_take(struct buf *b)
{
	char	*s;

	if (b->p == NULL && buf_append(b, "", 0) == -1)
		return NULL;
	s = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return s;
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Unfolds and sanitises (s, len) into one line: a run of CR/LF followed by
 * WSP is folding and vanishes (RFC 5322 2.2.3); any other CR/LF run becomes
 * one space, and so does each NUL or other control but TAB; leading and
 * trailing whitespace and controls go.  8-bit bytes are kept.  0 or -1.
 */
static int
tag_clean(const char *s, size_t len, struct buf *out)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i, j, end;

	for (i = 0; i < len && (is_wsp(u[i]) || u[i] < 0x20 ||
	    u[i] == 0x7f); i++)
		continue;
	for (end = len; end > i && (is_wsp(u[end - 1]) ||
	    u[end - 1] < 0x20 || u[end - 1] == 0x7f); end--)
		continue;
	while (i < end) {
		if (u[i] == '\r' || u[i] == '\n') {
			for (j = i; j < end && (u[j] == '\r' ||
			    u[j] == '\n'); j++)
				continue;
			if (j < end && is_wsp(u[j])) {
				i = j;
				continue;
			}
			if (buf_putc(out, ' ') == -1)
				return -1;
			i = j;
			continue;
		}
		if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
			if (buf_putc(out, ' ') == -1)
				return -1;
		} else if (buf_putc(out, (char)u[i]) == -1)
			return -1;
		i++;
	}
	return buf_append(out, "", 0);
}

/*
 * Collapses whitespace runs to one space and folds ASCII case, for the
 * presence test.  0 or -1.
 */
static int
tag_norm(const char *s, size_t len, struct buf *out)
{
	size_t	i;
	bool	sp = false;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_wsp(c)) {
			sp = true;
			continue;
		}
		if (sp && out->len > 0 && buf_putc(out, ' ') == -1)
			return -1;
		sp = false;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (buf_putc(out, (char)c) == -1)
			return -1;
	}
	return buf_append(out, "", 0);
}

/*
 * Whether the cleaned tag occurs in the decoded, cleaned text (see the
 * "Presence" decision above).  0 with *found set, or -1.
 */
static int
tag_present(const char *tag, size_t tlen, const char *text, size_t len,
    bool *found)
{
	struct buf	nt, ns;
	int		rc = -1;

	buf_init(&nt, TAG_BUF_MAX);
	buf_init(&ns, TAG_BUF_MAX);
	if (tag_norm(tag, tlen, &nt) == -1 || tag_norm(text, len, &ns) == -1)
		goto out;
	*found = nt.len > 0 && memmem(ns.p, ns.len, nt.p, nt.len) != NULL;
	rc = 0;
out:
	buf_free(&nt);
	buf_free(&ns);
	return rc;
}

/*
 * Decodes one cleaned raw line (NUL-terminated, no NUL inside) with GMime
 * and cleans the result again: encoded-words may carry CR, LF or controls.
 * The result is valid UTF-8.  0 or -1.
 */
static int
tag_decode(const char *raw, struct buf *out)
{
	char	*dec, *valid;
	int	 rc;

	if ((dec = g_mime_utils_header_decode_text(NULL, raw)) == NULL)
		return -1;
	/* GMime converts 8-bit text by its fallback charsets; be sure. */
	valid = g_utf8_make_valid(dec, -1);
	g_free(dec);
	if (valid == NULL)
		return -1;
	rc = tag_clean(valid, strlen(valid), out);
	g_free(valid);
	return rc;
}

/* RFC 2047 5(3): the characters a Q encoded-word may carry literally. */
static bool
q_literal(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	    c == '-' || c == '/';
}

static size_t
q_cost(unsigned char c)
{
	return q_literal(c) || c == ' ' ? 1 : 3;
}

/* Bytes of the UTF-8 character starting with lead byte c (input is valid). */
static size_t
utf8_seqlen(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	return 2;
}

static int
ew_put_q(struct buf *out, const unsigned char *s, size_t n)
{
	size_t	i;
	char	esc[3];

	for (i = 0; i < n; i++) {
		if (s[i] == ' ') {
			if (buf_putc(out, '_') == -1)
				return -1;
		} else if (q_literal(s[i])) {
			if (buf_putc(out, (char)s[i]) == -1)
				return -1;
		} else {
			esc[0] = '=';
			esc[1] = hexdig[s[i] >> 4];
			esc[2] = hexdig[s[i] & 0x0f];
			if (buf_append(out, esc, 3) == -1)
				return -1;
		}
	}
	return 0;
}

static int
ew_put_b(struct buf *out, const unsigned char *s, size_t n)
{
	size_t		i;
	unsigned long	v;
	char		q[4];

	for (i = 0; i < n; i += 3) {
		v = (unsigned long)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = b64dig[(v >> 18) & 0x3f];
		q[1] = b64dig[(v >> 12) & 0x3f];
		q[2] = i + 1 < n ? b64dig[(v >> 6) & 0x3f] : '=';
		q[3] = i + 2 < n ? b64dig[v & 0x3f] : '=';
		if (buf_append(out, q, 4) == -1)
			return -1;
	}
	return 0;
}

/*
 * Encodes a phrase (valid UTF-8, whitespace included) as encoded-words of at
 * most TAG_EW_MAX characters separated by single spaces, never splitting a
 * character.  Whitespace between encoded-words is not displayed (RFC 2047
 * 6.2), so the phrase's own spaces travel inside the encoding.  0 or -1.
 */
static int
tag_encode_phrase(const char *p, size_t n, struct buf *out)
{
	static const char	 pre_q[] = "=?UTF-8?Q?", pre_b[] = "=?UTF-8?B?";
	const unsigned char	*s = (const unsigned char *)p;
	const size_t		 room = TAG_EW_MAX - (sizeof(pre_q) - 1) - 2;
	size_t			 i, qlen = 0, start, used, cl, k, cost;
	bool			 useq;

	for (i = 0; i < n; i++)
		qlen += q_cost(s[i]);
	useq = qlen <= (n + 2) / 3 * 4;

	for (start = 0; start < n; start = i) {
		used = 0;
		for (i = start; i < n; i += cl) {
			cl = utf8_seqlen(s[i]);
			if (cl > n - i)
				cl = n - i;
			if (useq) {
				for (cost = 0, k = 0; k < cl; k++)
					cost += q_cost(s[i + k]);
				if (used + cost > room)
					break;
				used += cost;
			} else {
				if ((i + cl - start + 2) / 3 * 4 > room)
					break;
			}
		}
		if (i == start)		/* cannot happen: one char fits */
			return -1;
		if (start > 0 && buf_putc(out, ' ') == -1)
			return -1;
		if (buf_puts(out, useq ? pre_q : pre_b) == -1)
			return -1;
		if ((useq ? ew_put_q(out, s + start, i - start) :
		    ew_put_b(out, s + start, i - start)) == -1)
			return -1;
		if (buf_puts(out, "?=") == -1)
			return -1;
	}
	return 0;
}

/* Whether a word must be encoded to survive (see "Encoding" above). */
static bool
word_needs_ew(const char *w, size_t n)
{
	size_t	i;

	if (n > TAG_ATOM_MAX)
		return true;
	for (i = 0; i < n; i++) {
		if ((unsigned char)w[i] >= 0x80)
			return true;
		if (w[i] == '=' && i + 1 < n && w[i + 1] == '?')
			return true;
	}
	return false;
}

/*
 * Encodes cleaned, valid UTF-8 text (one line) as an unfolded header value:
 * plain words stay, runs of words needing encoding, with the whitespace
 * between them, become encoded-words.  0 or -1.
 */
static int
tag_encode_text(const char *s, size_t n, struct buf *out)
{
	size_t	i = 0, ws, we, ps, pe;

	while (i < n) {
		for (ws = i; i < n && is_wsp((unsigned char)s[i]); i++)
			continue;
		for (we = i; we < n && !is_wsp((unsigned char)s[we]); we++)
			continue;
		if (buf_append(out, s + ws, i - ws) == -1)
			return -1;
		if (we == i)
			break;
		if (!word_needs_ew(s + i, we - i)) {
			if (buf_append(out, s + i, we - i) == -1)
				return -1;
			i = we;
			continue;
		}
		/* Extend the phrase over following words that need it too. */
		ps = i;
		pe = we;
		for (;;) {
			size_t a = pe, b;

			while (a < n && is_wsp((unsigned char)s[a]))
				a++;
			for (b = a; b < n && !is_wsp((unsigned char)s[b]); b++)
				continue;
			if (b == a || !word_needs_ew(s + a, b - a))
				break;
			pe = b;
		}
		if (tag_encode_phrase(s + ps, pe - ps, out) == -1)
			return -1;
		i = pe;
	}
	return buf_append(out, "", 0);
}

/*
 * Folds an unfolded value at whitespace so that lines stay within
 * TAG_FOLD_COLS where a word boundary allows ("Subject: " counted on the
 * first line).  "\n" goes before the existing whitespace, so unfolding gives
 * the text back.  Bounds, for hostile input: whitespace runs longer than
 * TAG_WSP_RUN_MAX shrink to one space, and words longer than TAG_ATOM_MAX
 * (only raw long Subjects have them; tag_encode_text encodes them) are split
 * by a fold, which shows as a space.  So no line exceeds TAG_LINE_MAX.
 */
static int
tag_fold(const char *s, size_t n, struct buf *out)
{
	size_t	i = 0, ws, we, wlen, alen, col = TAG_NAME_COLS, chunk;
	bool	first = true;

	while (i < n) {
		for (ws = i; i < n && is_wsp((unsigned char)s[i]); i++)
			continue;
		for (we = i; we < n && !is_wsp((unsigned char)s[we]); we++)
			continue;
		if (we == i)
			break;		/* trailing whitespace: dropped */
		wlen = i - ws;
		if (wlen > TAG_WSP_RUN_MAX) {
			ws = i - 1;
			wlen = 1;
		}
		alen = we - i;
		if (!first && col + wlen + (alen < TAG_ATOM_MAX ? alen :
		    TAG_ATOM_MAX) > TAG_FOLD_COLS) {
			if (buf_putc(out, '\n') == -1)
				return -1;
			col = 0;
		}
		if (buf_append(out, s + ws, wlen) == -1)
			return -1;
		col += wlen;
		while (alen > 0) {
			chunk = alen < TAG_ATOM_MAX ? alen : TAG_ATOM_MAX;
			if (buf_append(out, s + i, chunk) == -1)
				return -1;
			i += chunk;
			alen -= chunk;
			col += chunk;
			if (alen > 0) {
				if (buf_append(out, "\n ", 2) == -1)
					return -1;
				col = 1;
			}
		}
		first = false;
	}
	return buf_append(out, "", 0);
}

/*
 * Last line of defence before a value leaves: no CR, every LF followed by
 * WSP and not ending the value, no line over TAG_LINE_MAX.
 */
static bool
tag_value_ok(const char *v, size_t n)
{
	size_t	i, col = TAG_NAME_COLS;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (v[i] == '\r' || v[i] == '\0')
			return false;
		if (v[i] == '\n') {
			if (i + 1 >= n || !is_wsp((unsigned char)v[i + 1]))
				return false;
			col = 0;
			continue;
		}
		if (++col > TAG_LINE_MAX)
			return false;
	}
	return true;
}

int
tag_init(void)
{
	if (!tag_ready) {
		g_mime_init();
		tag_ready = true;
	}
	return 0;
}

void
tag_shutdown(void)
{
	if (tag_ready) {
		g_mime_shutdown();
		tag_ready = false;
	}
}

/*
 * Builds "TAG SUBJECT" for a subject of at most TAG_SUBJECT_MAX raw bytes:
 * decode, compare, re-encode.  0 with *found or the unfolded value in val.
 */
static int
tag_build_decoded(const struct buf *tag, const struct buf *raw,
    bool *found, struct buf *val)
{
	struct buf	dec, text;
	int		rc = -1;

	buf_init(&dec, TAG_BUF_MAX);
	buf_init(&text, TAG_BUF_MAX);
	if (tag_decode(raw->p, &dec) == -1)
		goto out;
	if (tag_present(tag->p, tag->len, dec.p, dec.len, found) == -1)
		goto out;
	if (*found) {
		rc = 0;
		goto out;
	}
	if (buf_append(&text, tag->p, tag->len) == -1)
		goto out;
	if (dec.len > 0 && (buf_putc(&text, ' ') == -1 ||
	    buf_append(&text, dec.p, dec.len) == -1))
		goto out;
	rc = tag_encode_text(text.p, text.len, val);
out:
	buf_free(&dec);
	buf_free(&text);
	return rc;
}

/*
 * Builds "TAG RAW" for a subject longer than TAG_SUBJECT_MAX (see "Long
 * Subjects" above).  0 with *found or the unfolded value in val.
 */
static int
tag_build_raw(const struct buf *tag, const struct buf *raw, bool *found,
    struct buf *val)
{
	struct buf	head, dec, glued;
	int		rc = -1;

	buf_init(&head, TAG_BUF_MAX);
	buf_init(&dec, TAG_BUF_MAX);
	buf_init(&glued, TAG_BUF_MAX);
	if (buf_append(&head, raw->p, raw->len < TAG_SUBJECT_MAX ? raw->len :
	    TAG_SUBJECT_MAX) == -1)
		goto out;
	if (tag_decode(head.p, &dec) == -1)
		goto out;
	if (tag_present(tag->p, tag->len, dec.p, dec.len, found) == -1)
		goto out;
	if (*found) {
		rc = 0;
		goto out;
	}
	if (word_needs_ew(tag->p, tag->len) && raw->len >= 2 &&
	    raw->p[0] == '=' && raw->p[1] == '?') {
		/*
		 * An encoded tag followed by an encoded-word would lose the
		 * space between them (RFC 2047 6.2): encode it with the tag.
		 */
		if (buf_append(&glued, tag->p, tag->len) == -1 ||
		    buf_putc(&glued, ' ') == -1 ||
		    tag_encode_phrase(glued.p, glued.len, val) == -1)
			goto out;
	} else if (tag_encode_text(tag->p, tag->len, val) == -1)
		goto out;
	if (buf_putc(val, ' ') == -1 || buf_append(val, raw->p, raw->len) == -1)
		goto out;
	rc = 0;
out:
	buf_free(&head);
	buf_free(&dec);
	buf_free(&glued);
	return rc;
}

int
tag_subject(const char *tag, const char *subject, size_t subject_len,
    char **out)
{
	struct buf	ctag, raw, val, fold;
	bool		found = false;
	int		rc = -1;

	if (out == NULL)
		return -1;
	*out = NULL;
	if (!tag_ready || tag == NULL)
		return -1;
	if (subject != NULL && subject_len > TAG_RAW_MAX)
		return -1;

	buf_init(&ctag, TAG_BUF_MAX);
	buf_init(&raw, TAG_BUF_MAX);
	buf_init(&val, TAG_BUF_MAX);
	buf_init(&fold, TAG_BUF_MAX);

	if (tag_clean(tag, strlen(tag), &ctag) == -1 || ctag.len == 0 ||
	    ctag.len > TAG_TEXT_MAX || !g_utf8_validate(ctag.p, -1, NULL))
		goto out;
	if (subject != NULL && tag_clean(subject, subject_len, &raw) == -1)
		goto out;

	if (raw.len == 0) {
		/* No Subject, or an empty one: the tag alone. */
		if (tag_encode_text(ctag.p, ctag.len, &val) == -1)
			goto out;
	} else if (raw.len <= TAG_SUBJECT_MAX) {
		if (tag_build_decoded(&ctag, &raw, &found, &val) == -1)
			goto out;
	} else {
		if (tag_build_raw(&ctag, &raw, &found, &val) == -1)
			goto out;
	}
	if (found) {
		rc = 0;
		goto out;
	}
	if (tag_fold(val.p, val.len, &fold) == -1 ||
	    !tag_value_ok(fold.p, fold.len))
		goto out;
	if ((*out = buf_take(&fold)) == NULL)
		goto out;
	rc = 0;
out:
	buf_free(&ctag);
	buf_free(&raw);
	buf_free(&val);
	buf_free(&fold);
	return rc;
}
