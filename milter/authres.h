/*
 * authres.h - the RFC 8601 Authentication-Results header (DESIGN.md 6).
 * Owns: nothing; ar_build() returns a malloc'ed value for the caller.
 * Limits: AR_PVALUE_MAX per property value, AR_VALUE_MAX in all.
 * Errors: ar_build() returns -1; ar_is_ours() cannot fail.
 */

#ifndef PORTCULLIS_AUTHRES_H
#define PORTCULLIS_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Longest property value emitted, quoting included.  A longer hostile value
 * (addresses are <= 254 octets by RFC 5321 4.5.3.1.3, domains <= 253) is
 * left out rather than cut.  With it no header line can reach 998 octets.
 */
#define AR_PVALUE_MAX		255
/* Longest p=/sp=/dis= word put into the dmarc comment. */
#define AR_COMMENT_WORD_MAX	32
/*
 * Signatures reported: more are left out (a message with that many is
 * hostile; failing would tempfail it for ever).  Each method line is under
 * 600 octets, so AR_DKIM_MAX lines always fit in AR_VALUE_MAX.
 */
#define AR_DKIM_MAX		64
/* Ceiling of the whole value. */
#define AR_VALUE_MAX		(64 * 1024)
/* Characters of the DKIM b= tag shown as header.b (RFC 6008). */
#define AR_DKIM_B_LEN		8

/* One DKIM signature's outcome.  Members borrowed. */
struct ar_dkim_sig {
	const char	*result;	/* RFC 8601 2.7.1 name */
	unsigned	 bits;		/* RSA key size, 0: unknown */
	const char	*domain;	/* d=, or NULL */
	const char	*selector;	/* s=, or NULL */
	const char	*b;		/* first 8 chars of b=, or NULL */
	bool		 ed25519;	/* an ed25519 key (RFC 8463) */
	bool		 partial_body;	/* l= left part of the body unsigned */
	bool		 testing;	/* the key says t=y */
};

/* What ar_build() reports.  Members borrowed for the call. */
struct ar_input {
	const char	*authserv_id;	/* from config, required */
	const char	*spf;		/* result, NULL: written spf=none */
	const char	*smtp_mailfrom;	/* envelope sender, NULL/"": null */
	const char	*smtp_helo;	/* HELO/EHLO name, or NULL */
	const struct ar_dkim_sig *dkim;	/* ndkim signatures */
	size_t		 ndkim;		/* 0: written dkim=none */
	const char	*dmarc;		/* result, NULL: written dmarc=none */
	const char	*dmarc_p;	/* policy words for the comment */
	const char	*dmarc_sp;
	const char	*dmarc_dis;
	const char	*header_from;	/* RFC 5322 From domain, or NULL */
};

/*
 * Notes on struct ar_input (all members borrowed for the call):
 * - spf NULL is written "spf=none" (the method is never omitted); dmarc NULL
 *   is written "dmarc=none"; ndkim 0 is written "dkim=none".
 * - Results are matched case-insensitively against the RFC 8601 / IANA names
 *   of their method (spf: none neutral pass fail softfail policy temperror
 *   permerror; dkim: none pass fail policy neutral temperror permerror;
 *   dmarc: none pass fail temperror permerror); anything else gives -1.
 * - smtp_mailfrom may keep its SMTP angle brackets ("<a@b>", "<>").
 * - dkim[i].b may be longer than 8 characters or contain folding
 *   whitespace: whitespace is dropped and the first AR_DKIM_B_LEN kept.
 * - NULL or "" members other than authserv_id and the results leave their
 *   property (or comment) out.
 * - Only the first AR_DKIM_MAX signatures are reported.
 */

/*
 * Builds the header VALUE (without "Authentication-Results:"), folded as
 * tag.c folds, malloc'ed into *out.  0 / -1.
 */
int	ar_build(const struct ar_input *in, char **out);

/*
 * More of the contract of ar_build():
 * - Layout (DESIGN.md 6): "ID;\n\tspf=...;\n\tdkim=...;\n\tdmarc=...", one
 *   method per line, LF + TAB folding (LF only, as libmilter wants).
 * - Property values are RFC 8601 pvalues: a domain-name or
 *   local-part@domain-name as is when valid (the local-part quoted when it
 *   is not a dot-atom), otherwise one quoted-string; controls and invalid
 *   UTF-8 inside become '?'.  No CR, LF or ';' from the input can end up
 *   outside a quoted-string.
 * - -1: NULL arguments, empty authserv_id, a result not in its method's set,
 *   or memory.  *out is NULL then.  Thread-safe (no shared state).
 */

/*
 * Whether an existing Authentication-Results value carries authserv_id
 * (RFC 8601 2.2 / section 5: compare the authserv-id token after skipping
 * CFWS/comments, case-insensitive; the optional version after it).
 * (ptr,len).
 */
bool	ar_is_ours(const char *value, size_t len, const char *authserv_id);

/*
 * More of the contract of ar_is_ours():
 * - value: the raw header value as received, any bytes, not necessarily
 *   NUL-terminated; folding with CRLF or LF.  authserv_id: NUL-terminated.
 * - The authserv-id is an RFC 2045 token or quoted-string after CFWS
 *   (nested comments and quoted-pairs understood).  It matches when equal to
 *   authserv_id ignoring ASCII case.  What follows the id (version,
 *   resinfo, even junk) is not checked: a value that starts with our id is
 *   removed either way, which is the safe direction (RFC 8601 5).
 * - "mx.corp.example.evil" does not match "mx.corp.example".
 * - Thread-safe (no shared state).
 */

#endif
