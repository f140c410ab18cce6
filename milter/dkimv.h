/*
 * dkimv.h - DKIM verification (RFC 6376, RFC 8463, RFC 8301) on libopendkim.
 * dkimv.c is the only file that includes <opendkim/dkim.h> (hence the name:
 * "dkim.h" would clash with it on the include path).
 * Owns: per process a struct dkimv_lib (one DKIM_LIB whose DNS hooks go
 * to dns.c); per message a struct dkimv (one DKIM verify handle).  The body
 * is hashed as it streams: no copy of it is kept.
 * Limits: DKIMV_SIG_MAX signatures verified (the configured maximum, default
 * DKIMV_SIGS_DEFAULT, is capped to it); DKIMV_HEADER_MAX bytes per header
 * field; RSA keys under DKIMV_RSA_BITS_MIN bits fail.
 * Errors: plain functions return 0 / -1 (-1 only for internal failures,
 * logged with the queue id); signature outcomes are RFC 8601 result names.
 */
#ifndef PORTCULLIS_DKIMV_H
#define PORTCULLIS_DKIMV_H

#include <stdbool.h>
#include <stddef.h>

#define DKIMV_SIG_MAX		8	/* signatures verified at most */
#define DKIMV_SIGS_DEFAULT	5	/* default max_signatures */
#define DKIMV_HEADER_MAX	(64 * 1024)	/* one field, CRLF folds */
#define DKIMV_RSA_BITS_MIN	1024	/* RFC 8301 3.2 */
#define DKIMV_B_LEN		8	/* header.b characters (RFC 6008) */

struct dns;
struct dkimv_lib;
struct dkimv;

/*
 * One signature's outcome.  result is one of the RFC 8601 2.7.1 names:
 *   pass       verified (not rsa-sha1, RSA key >= DKIMV_RSA_BITS_MIN)
 *   fail       signature or body hash mismatch, revoked key (empty p=,
 *              RFC 6376 6.1.2), expired (x=), rsa-sha1 (RFC 8301 3.1),
 *              RSA key under DKIMV_RSA_BITS_MIN bits (RFC 8301 3.2)
 *   neutral    the signature itself is malformed or unsupported (tags,
 *              algorithm, l= past the body)
 *   temperror  the key lookup failed or timed out
 *   permerror  no key record, or a malformed / unusable key record
 *              (includes a key h= that excludes the signature's hash);
 *              h= without From (RFC 6376 6.1.1); a key name DNS cannot
 *              hold (s= or d= with bad labels)
 * reason is a short human text for a log line or an A-R comment ("" when
 * there is nothing to say); a t=y testing key is noted there, the result
 * stays.  Strings are NUL-terminated; a d= or s= that does not fit is left
 * empty rather than cut.
 */
struct dkimv_sig {
	char		result[16];
	char		domain[256];	/* d= */
	char		selector[64];	/* s= */
	char		b[DKIMV_B_LEN + 1];	/* first chars of b= */
	unsigned	bits;		/* key size; 0: no key loaded */
	bool		has_l;		/* l=: body partly unsigned */
	bool		ed25519;	/* a=ed25519-sha256 (RFC 8463) */
	bool		testing;	/* the key has t=y */
	char		reason[128];
};

/*
 * best: "none" without signatures, else the best signature result in the
 * order pass > temperror > fail > policy > neutral > permerror (a retry may
 * still turn a temperror into a pass, so it ranks above the definite ones).
 * A signature that does not pass and whose key has t=y is left out of best
 * (RFC 6376 3.6.1: mail from a signer in testing mode is treated as
 * unsigned), so best is "none" when it is the only one; it keeps its own
 * result in sigs[] for the Authentication-Results header.
 */
/* About 4 KB: keep it in the message state, not on a worker's stack. */
struct dkimv_result {
	char		best[16];
	struct dkimv_sig sigs[DKIMV_SIG_MAX];
	size_t		nsigs;		/* in message order */
	size_t		nignored;	/* signatures past the maximum */
};

/*
 * Makes the library handle: libopendkim configured for verification, its
 * DNS hooks wired to dns (borrowed: it must outlive the lib), each key
 * lookup bounded by timeout_ms, at most max_signatures (0: default; capped
 * at DKIMV_SIG_MAX) signatures per message verified.  Built with the
 * snapshot, shared read-only by all threads.  NULL on failure (logged).
 */
struct dkimv_lib *dkimv_lib_new(struct dns *dns, unsigned timeout_ms,
    unsigned max_signatures);
/* NULL is fine.  No struct dkimv of this lib may remain. */
void dkimv_lib_free(struct dkimv_lib *);

/*
 * Starts verifying one message.  lib is borrowed until dkimv_free().  qid
 * (copied) labels log lines.  Never NULL: if libopendkim cannot make a
 * handle, the failure is logged and dkimv_eom() returns -1.  One thread at
 * a time per handle (any thread).
 */
struct dkimv *dkimv_new(struct dkimv_lib *, const char *qid);

/*
 * One header field as libmilter gives it: name, and value without the
 * leading space, folded with "\n" + WSP (CRLF also accepted).  Passed on as
 * "Name: value" with CRLF folds.  DKIM-Signature fields start their key
 * lookups at once.  0, or -1 when the field is over DKIMV_HEADER_MAX or
 * libopendkim refuses it (the message then ends in temperror).
 */
int dkimv_header(struct dkimv *, const char *name, const char *value);
/* End of headers: libopendkim parses the signatures and fetches their keys
 * here.  0 / -1 as dkimv_header(). */
int dkimv_eoh(struct dkimv *);
/* A body chunk, CRLF line ends, any split.  Not kept.  0 / -1. */
int dkimv_body(struct dkimv *, const unsigned char *, size_t);
/*
 * End of message: fills *res.  0, or -1 after an internal failure (then
 * res->best is "temperror" and nsigs 0).
 */
int dkimv_eom(struct dkimv *, struct dkimv_result *res);
/* Frees the handle and its pending lookups.  NULL is fine. */
void dkimv_free(struct dkimv *);

#endif
