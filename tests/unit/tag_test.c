/*
 * tag_test.c - unit tests for milter/tag.c (Subject tagging).
 * Owns: nothing; one table row per case, run as one cmocka test each.
 * Every produced value is also checked for header safety (no CR, LF only
 * before WSP, line and encoded-word lengths) and decoded back with GMime.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "tag.h"

enum expect {
	T_TAGGED,		/* 0 and a value */
	T_PRESENT,		/* 0 and NULL: already tagged */
	T_ERROR			/* -1 */
};

struct tag_case {
	const char	*name;
	const char	*tag;
	const char	*subj;		/* NULL: no Subject */
	size_t		 len;		/* bytes of subj (NULs allowed) */
	enum expect	 expect;
	const char	*raw;		/* exact value, or NULL */
	const char	*decoded;	/* value unfolded and decoded, or NULL */
};

/* A string literal with its exact length, embedded NULs included. */
#define S(s)	(s), sizeof(s) - 1
#define EXT	"[EXTERNAL]"

static const struct tag_case cases[] = {
	/* plain */
	{ "plain", EXT, S("hello"), T_TAGGED, "[EXTERNAL] hello", NULL },
	{ "leading space (SMFIP_HDR_LEADSPC)", EXT, S(" hello"), T_TAGGED,
	  "[EXTERNAL] hello", NULL },
	{ "reply prefix stays after tag", EXT, S("Re: hello"), T_TAGGED,
	  "[EXTERNAL] Re: hello", NULL },
	{ "double space kept", EXT, S("a  b"), T_TAGGED, "[EXTERNAL] a  b",
	  NULL },
	{ "trailing whitespace dropped", EXT, S("hello \t "), T_TAGGED,
	  "[EXTERNAL] hello", NULL },
	{ "similar tag is not the tag", EXT, S("[EXTERNALX] hi"), T_TAGGED,
	  "[EXTERNAL] [EXTERNALX] hi", NULL },
	{ "word without brackets", EXT, S("EXTERNAL hi"), T_TAGGED,
	  "[EXTERNAL] EXTERNAL hi", NULL },
	{ "ascii punctuation stays plain", EXT, S("a \"q\" (c) <x> ?_="),
	  T_TAGGED, "[EXTERNAL] a \"q\" (c) <x> ?_=", NULL },

	/* already tagged */
	{ "tagged", EXT, S("[EXTERNAL] hello"), T_PRESENT, NULL, NULL },
	{ "Re: tagged", EXT, S("Re: [EXTERNAL] hello"), T_PRESENT, NULL,
	  NULL },
	{ "RE: Fwd: AW:", EXT, S("RE: Fwd: AW: [EXTERNAL] x"), T_PRESENT,
	  NULL, NULL },
	{ "many prefixes and counters", EXT,
	  S("AW: WG: SV: VS: Antw: TR: RIF: R: Re[2]: FW: Fw: [EXTERNAL] x"),
	  T_PRESENT, NULL, NULL },
	{ "case-insensitive", EXT, S("Fw: [external] lower"), T_PRESENT,
	  NULL, NULL },
	{ "anywhere counts", EXT, S("hello [EXTERNAL]"), T_PRESENT, NULL,
	  NULL },
	{ "after list tag", EXT, S("[list] [EXTERNAL] x"), T_PRESENT, NULL,
	  NULL },
	{ "multiword tag, whitespace differs", "[EXTERNAL  SENDER]",
	  S("Re: [external\t sender] hi"), T_PRESENT, NULL, NULL },
	{ "tag split by folding", "[EXTERNAL SENDER]",
	  S("Re: [EXTERNAL\r\n SENDER] hi"), T_PRESENT, NULL, NULL },
	{ "tag after folded prefix", EXT, S("Re:\r\n [EXTERNAL] hi"),
	  T_PRESENT, NULL, NULL },

	/* RFC 2047 */
	{ "UTF-8 B, tag encoded", EXT,
	  S("=?UTF-8?B?W0VYVEVSTkFMXSBHcsO8w59l?="), T_PRESENT, NULL, NULL },
	{ "UTF-8 B, no tag", EXT, S("=?UTF-8?B?R3LDvMOfZQ==?="), T_TAGGED,
	  "[EXTERNAL] =?UTF-8?B?R3LDvMOfZQ==?=", "[EXTERNAL] Gr\xc3\xbc\xc3\x9f" "e" },
	{ "UTF-8 Q, no tag", EXT, S("Re: =?utf-8?q?caf=C3=A9_au_lait?="),
	  T_TAGGED, NULL, "[EXTERNAL] Re: caf\xc3\xa9 au lait" },
	{ "UTF-8 Q, tag encoded after Re:", EXT,
	  S("Re: =?utf-8?q?=5BEXTERNAL=5D_caf=C3=A9?="), T_PRESENT, NULL,
	  NULL },
	{ "ISO-8859-1 Q, no tag", EXT,
	  S("=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?="), T_TAGGED, NULL,
	  "[EXTERNAL] Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln" },
	{ "ISO-8859-1 Q, tag encoded", EXT,
	  S("AW: =?ISO-8859-1?Q?[EXTERNAL]_Gr=FC=DFe?="), T_PRESENT, NULL,
	  NULL },
	{ "ISO-8859-1 B, no tag", EXT, S("=?iso-8859-1?b?R3L832U=?="),
	  T_TAGGED, "[EXTERNAL] =?UTF-8?B?R3LDvMOfZQ==?=",
	  "[EXTERNAL] Gr\xc3\xbc\xc3\x9f" "e" },
	{ "ISO-8859-1 B, tag encoded", EXT,
	  S("=?iso-8859-1?B?W0VYVEVSTkFMXSBHcvzfZQ==?="), T_PRESENT, NULL,
	  NULL },
	{ "tag split across encoded-words", EXT,
	  S("Re: =?UTF-8?Q?[EXT?= =?UTF-8?Q?ERNAL]_hi?="), T_PRESENT, NULL,
	  NULL },
	{ "ASCII-only encoded-word comes out plain", EXT,
	  S("=?us-ascii?q?hello_world?="), T_TAGGED,
	  "[EXTERNAL] hello world", NULL },
	{ "plain and encoded mixed", EXT,
	  S("Re: =?UTF-8?B?R3LDvMOfZQ==?= von Anna"), T_TAGGED,
	  "[EXTERNAL] Re: =?UTF-8?B?R3LDvMOfZQ==?= von Anna", NULL },
	{ "adjacent encoded words keep their space", EXT,
	  S("=?UTF-8?Q?=C3=A4?= =?UTF-8?Q?_=C3=B6?="), T_TAGGED, NULL,
	  "[EXTERNAL] \xc3\xa4 \xc3\xb6" },
	{ "decoded =? is re-encoded, not left to be decoded", EXT,
	  S("=?UTF-8?Q?=3D=3Fx=3F=3D?="), T_TAGGED, NULL,
	  "[EXTERNAL] =?x?=" },
	{ "raw 8-bit UTF-8", EXT, S("Gr\xc3\xbc\xc3\x9f" "e"), T_TAGGED,
	  "[EXTERNAL] =?UTF-8?B?R3LDvMOfZQ==?=", NULL },
	{ "raw invalid UTF-8 (Latin-1 fallback)", EXT,
	  S("Gr\xfc\xdf" "e"), T_TAGGED, NULL,
	  "[EXTERNAL] Gr\xc3\xbc\xc3\x9f" "e" },
	{ "long non-ASCII: short encoded-words", EXT,
	  S("=?UTF-8?B?5pel5pys6Kqe44Gu44OG44Kt44K544OI5pel5pys6Kqe44Gu44OG"
	  "44Kt44K544OI5pel5pys6Kqe44Gu44OG44Kt44K544OI5pel5pys6Kqe44Gu44OG"
	  "44Kt44K544OI?="), T_TAGGED, NULL,
	  "[EXTERNAL] \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3"
	  "\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe6\x97\xa5\xe6\x9c"
	  "\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9"
	  "\xe3\x83\x88\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3"
	  "\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe6\x97\xa5\xe6\x9c"
	  "\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9"
	  "\xe3\x83\x88" },
	{ "non-ASCII tag", "[\xe5\xa4\x96\xe9\x83\xa8]", S("hello"),
	  T_TAGGED, "=?UTF-8?B?W+WklumDqF0=?= hello",
	  "[\xe5\xa4\x96\xe9\x83\xa8] hello" },
	{ "non-ASCII tag present, encoded", "[\xe5\xa4\x96\xe9\x83\xa8]",
	  S("Re: =?UTF-8?B?W+WklumDqF0=?= hello"), T_PRESENT, NULL, NULL },

	/* missing or empty Subject */
	{ "missing subject", EXT, NULL, 0, T_TAGGED, "[EXTERNAL]", NULL },
	{ "empty subject", EXT, S(""), T_TAGGED, "[EXTERNAL]", NULL },
	{ "blank folded subject", EXT, S(" \r\n \r\n\t"), T_TAGGED,
	  "[EXTERNAL]", NULL },
	{ "empty encoded-word", EXT, S("=?UTF-8?Q?" "?="), T_TAGGED,
	  "[EXTERNAL]", NULL },

	/* folding */
	{ "folded CRLF, refolded at 78", EXT,
	  S("This is a rather long subject line that\r\n was folded by the "
	  "sender because it is long"), T_TAGGED,
	  "[EXTERNAL] This is a rather long subject line that was folded by "
	  "the\n sender because it is long", NULL },
	{ "folded LF + TAB keeps the TAB", EXT,
	  S("first part of a subject that is long enough to be folded\n\t"
	  "second part"), T_TAGGED,
	  "[EXTERNAL] first part of a subject that is long enough to be "
	  "folded\n\tsecond part", NULL },
	{ "short folded subject is joined", EXT, S("Re:\r\n hello"),
	  T_TAGGED, "[EXTERNAL] Re: hello", NULL },

	/* hostile */
	{ "NUL inside", EXT, S("a\0b"), T_TAGGED, "[EXTERNAL] a b", NULL },
	{ "bare CRLF cannot start a header", EXT,
	  S("hi\r\nBcc: evil@example.org"), T_TAGGED,
	  "[EXTERNAL] hi Bcc: evil@example.org", NULL },
	{ "bare CR and LF", EXT, S("a\rb\nc\r\r\nd"), T_TAGGED,
	  "[EXTERNAL] a b c d", NULL },
	{ "control characters", EXT, S("a\x01\x1b[31m\x7f" "b"), T_TAGGED,
	  "[EXTERNAL] a  [31m b", NULL },
	{ "encoded CRLF and NUL", EXT,
	  S("=?UTF-8?Q?hi=0D=0ABcc:_x=00y?="), T_TAGGED, NULL, NULL },
	{ "tag with CRLF injection", "[EXT]\r\nBcc: evil@example.org",
	  S("hello"), T_TAGGED, "[EXT] Bcc: evil@example.org hello", NULL },
	{ "tag with LF + WSP", "[EXT]\n X", S("hello"), T_TAGGED,
	  "[EXT] X hello", NULL },
	{ "broken encoded-word", EXT, S("=?UTF-8?B?!!!?= =?x"), T_TAGGED,
	  NULL, NULL },
	{ "only 8-bit junk", EXT, S("\xff\xfe\xfd\xc3"), T_TAGGED, NULL,
	  NULL },

	/* errors */
	{ "NULL tag", NULL, S("x"), T_ERROR, NULL, NULL },
	{ "empty tag", "", S("x"), T_ERROR, NULL, NULL },
	{ "blank tag", " \r\n\t", S("x"), T_ERROR, NULL, NULL },
	{ "invalid UTF-8 tag", "[\xff]", S("x"), T_ERROR, NULL, NULL },
};

/* Checks a produced value the way an MTA and a reader would see it. */
static void
check_value(const char *v, const char *name)
{
	size_t	i, col = TAG_NAME_COLS, ws_in_line = 0, alen = 0;
	bool	lead = false;

	assert_non_null(v);
	assert_true(v[0] != '\0');
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] == '\r')
			fail_msg("%s: CR in value", name);
		if (v[i] == '\n') {
			if (v[i + 1] != ' ' && v[i + 1] != '\t')
				fail_msg("%s: LF not followed by WSP", name);
			if (col > TAG_FOLD_COLS && ws_in_line > 0)
				fail_msg("%s: foldable line too long", name);
			col = 0;
			ws_in_line = 0;
			lead = true;
			continue;
		}
		col++;
		if (col > TAG_LINE_MAX)
			fail_msg("%s: line over 998", name);
		if (v[i] == ' ' || v[i] == '\t') {
			if (!lead)
				ws_in_line++;
			if (alen > 0 && v[i - alen] == '=' &&
			    v[i - alen + 1] == '?' && alen > TAG_EW_MAX)
				fail_msg("%s: encoded-word too long", name);
			alen = 0;
		} else {
			lead = false;
			alen++;
		}
	}
	if (col > TAG_FOLD_COLS && ws_in_line > 0)
		fail_msg("%s: foldable last line too long", name);
	if (alen > TAG_EW_MAX && v[i - alen] == '=' && v[i - alen + 1] == '?')
		fail_msg("%s: last encoded-word too long", name);
	assert_true(v[i - 1] != ' ' && v[i - 1] != '\t');
}

/* Unfolds ("\n" goes, the WSP stays) and decodes with GMime. */
static char *
decode_value(const char *v)
{
	char	*u, *d;
	size_t	 i, j;

	u = malloc(strlen(v) + 1);
	assert_non_null(u);
	for (i = j = 0; v[i] != '\0'; i++)
		if (v[i] != '\n')
			u[j++] = v[i];
	u[j] = '\0';
	d = g_mime_utils_header_decode_text(NULL, u);
	free(u);
	assert_non_null(d);
	return d;
}

static void
run_case(void **state)
{
	const struct tag_case	*c = *state;
	char			*out = (char *)1, *dec;
	int			 rc;

	rc = tag_subject(c->tag, c->subj, c->len, &out);
	switch (c->expect) {
	case T_ERROR:
		assert_int_equal(rc, -1);
		assert_null(out);
		return;
	case T_PRESENT:
		assert_int_equal(rc, 0);
		assert_null(out);
		return;
	case T_TAGGED:
		assert_int_equal(rc, 0);
		break;
	}
	check_value(out, c->name);
	if (c->raw != NULL)
		assert_string_equal(out, c->raw);
	dec = decode_value(out);
	if (c->decoded != NULL)
		assert_string_equal(dec, c->decoded);
	/* The tag leads, and tagging the result again is a no-op. */
	if (c->tag[0] == '[' && strchr(c->tag, '\r') == NULL &&
	    strchr(c->tag, '\n') == NULL)
		assert_memory_equal(dec, c->tag, strlen(c->tag));
	g_free(dec);
	{
		char *again = (char *)1;

		assert_int_equal(tag_subject(c->tag, out, strlen(out), &again),
		    0);
		assert_null(again);
	}
	free(out);
}

/* Builds n bytes of "word word ..." (each word w bytes) into a new buffer. */
static char *
make_words(size_t n, size_t w, const char *lead)
{
	char	*s;
	size_t	 i, ll = strlen(lead);

	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, lead, ll);
	for (i = ll; i < n; i++)
		s[i] = (i - ll) % (w + 1) == w ? ' ' : 'a' + (char)(i % 26);
	s[n] = '\0';
	return s;
}

static void
test_long_subject(void **state)
{
	char	*s, *out, *dec;

	(void)state;
	/* Longer than TAG_SUBJECT_MAX: still tagged, raw kept, folded. */
	s = make_words(TAG_SUBJECT_MAX + 5000, 7, "Re: ");
	assert_int_equal(tag_subject(EXT, s, strlen(s), &out), 0);
	assert_non_null(out);
	check_value(out, "long subject");
	assert_memory_equal(out, "[EXTERNAL] Re: ", 15);
	dec = decode_value(out);
	assert_string_equal(dec + 11, s);
	g_free(dec);
	free(out);
	free(s);

	/* ... and not tagged twice. */
	s = make_words(TAG_SUBJECT_MAX + 5000, 7, "Re: [EXTERNAL] ");
	out = (char *)1;
	assert_int_equal(tag_subject(EXT, s, strlen(s), &out), 0);
	assert_null(out);
	free(s);

	/* Exactly TAG_SUBJECT_MAX: the decoding path. */
	s = make_words(TAG_SUBJECT_MAX, 7, "");
	assert_int_equal(tag_subject(EXT, s, strlen(s), &out), 0);
	check_value(out, "limit subject");
	free(out);
	free(s);
}

static void
test_long_word(void **state)
{
	char	*s, *out, *dec;
	size_t	 n;

	(void)state;
	/* One 20 KiB word: no valid single line; split by folds. */
	n = TAG_SUBJECT_MAX + 4000;
	s = malloc(n + 1);
	assert_non_null(s);
	memset(s, 'x', n);
	s[n] = '\0';
	assert_int_equal(tag_subject(EXT, s, n, &out), 0);
	check_value(out, "long word");
	free(out);

	/* A 1000-byte ASCII word in the decoded path: encoded, no space. */
	s[1000] = '\0';
	assert_int_equal(tag_subject(EXT, s, 1000, &out), 0);
	check_value(out, "1000-byte word");
	dec = decode_value(out);
	assert_int_equal(strlen(dec), 11 + 1000);
	assert_memory_equal(dec + 11, s, 1000);
	g_free(dec);
	free(out);
	free(s);
}

static void
test_whitespace_padding(void **state)
{
	char	 s[3000];
	char	*out;

	(void)state;
	memset(s, ' ', sizeof(s));
	s[0] = 'a';
	s[sizeof(s) - 1] = 'b';
	assert_int_equal(tag_subject(EXT, s, sizeof(s), &out), 0);
	check_value(out, "padding");
	assert_string_equal(out, "[EXTERNAL] a b");
	free(out);
}

static void
test_long_with_encoded_tag(void **state)
{
	char	*s, *out, *dec;
	size_t	 n = TAG_SUBJECT_MAX + 100, i;
	const char *ew = "=?UTF-8?Q?=C3=A4?=";

	(void)state;
	s = make_words(n, 7, ew);
	for (i = strlen(ew); i < n; i++)
		if (s[i] == ' ')
			break;
	/* Long path, non-ASCII tag, raw starting with an encoded-word. */
	assert_int_equal(tag_subject("[\xe5\xa4\x96]", s, n, &out), 0);
	check_value(out, "long, encoded tag");
	dec = decode_value(out);
	assert_memory_equal(dec, "[\xe5\xa4\x96] \xc3\xa4", 8);
	g_free(dec);
	free(out);
	free(s);
}

static void
test_too_big(void **state)
{
	char	*s, *out = (char *)1;

	(void)state;
	s = calloc(1, (size_t)TAG_RAW_MAX + 1);
	assert_non_null(s);
	memset(s, 'a', (size_t)TAG_RAW_MAX + 1);
	assert_int_equal(tag_subject(EXT, s, (size_t)TAG_RAW_MAX + 1, &out),
	    -1);
	assert_null(out);
	free(s);
	assert_int_equal(tag_subject(EXT, "x", 1, NULL), -1);
}

static void
test_tag_too_long(void **state)
{
	char	 t[TAG_TEXT_MAX + 2];
	char	*out;

	(void)state;
	memset(t, 'T', sizeof(t) - 1);
	t[sizeof(t) - 1] = '\0';
	assert_int_equal(tag_subject(t, "x", 1, &out), -1);
	t[TAG_TEXT_MAX] = '\0';
	assert_int_equal(tag_subject(t, "x", 1, &out), 0);
	check_value(out, "max tag");
	free(out);
}

static int
group_setup(void **state)
{
	(void)state;
	return tag_init();
}

static int
group_teardown(void **state)
{
	(void)state;
	tag_shutdown();
	return 0;
}

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_long_subject),
		cmocka_unit_test(test_long_word),
		cmocka_unit_test(test_whitespace_padding),
		cmocka_unit_test(test_long_with_encoded_tag),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_tag_too_long),
	};
	size_t			 nc = sizeof(cases) / sizeof(cases[0]);
	size_t			 ne = sizeof(extra) / sizeof(extra[0]), i;
	struct CMUnitTest	*t;
	char			*out = (char *)1;
	int			 rc;

	/* Before tag_init(): refused, not crashed. */
	if (tag_subject(EXT, "x", 1, &out) != -1 || out != NULL) {
		fprintf(stderr, "tag_subject worked before tag_init\n");
		return 1;
	}
	t = calloc(nc + ne, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < nc; i++) {
		t[i].name = cases[i].name;
		t[i].test_func = run_case;
		t[i].initial_state = (void *)(uintptr_t)&cases[i];
	}
	for (i = 0; i < ne; i++)
		t[nc + i] = extra[i];
	rc = _cmocka_run_group_tests("tag", t, nc + ne, group_setup,
	    group_teardown);
	free(t);
	return rc;
}
