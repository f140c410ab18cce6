/*
 * uriscan.h - extracts the lookup keys (registered domains, IPv4 addresses)
 * of the hosts of URLs in a message, for SURBL/URIBL queries.
 * Push-style: top-level header fields, then the raw body in any chunks;
 * each distinct key is handed to a callback as soon as it is found.
 * Owns: per scanner, its MIME stack, decoder states, small line, word and
 * attribute buffers and the set of keys already emitted; process-wide, one
 * libpsl context made once (pthread_once) and never freed.
 * Limits: struct uriscan_limits (keys, MIME depth, bytes per part) and the
 * URISCAN_* constants below; memory per message is bounded by them.
 * Errors: none reported; a limit hit sets uriscan_truncated().  Allocation
 * failure aborts (util.h x* allocators) except in uriscan_new().
 */
#ifndef PORTCULLIS_URISCAN_H
#define PORTCULLIS_URISCAN_H

#include <stdbool.h>
#include <stddef.h>

#define URISCAN_KEYS_DEFAULT	200
#define URISCAN_DEPTH_DEFAULT	20
#define URISCAN_PART_DEFAULT	((size_t)4 * 1024 * 1024)
#define URISCAN_KEYS_MAX	100000	/* ceilings of the limits above */
#define URISCAN_DEPTH_MAX	100
#define URISCAN_LINE_MAX	1024	/* body line bytes held to find a
					 * boundary; longer lines stream */
#define URISCAN_BOUNDARY_MAX	200	/* RFC 2046 says 70: lenient */
#define URISCAN_FIELD_MAX	8192	/* unfolded MIME header field */
#define URISCAN_WORD_MAX	2048	/* text run scanned at once */
#define URISCAN_WORD_TAIL	512	/* kept of an overlong run */
#define URISCAN_ATTR_MAX	2048	/* bytes of a URL attribute kept */
#define URISCAN_HOST_RAW_MAX	1024	/* uri_host_key() input bytes */

struct uriscan_limits {
	unsigned max_keys;	/* distinct keys emitted per message */
	unsigned max_depth;	/* MIME nesting followed */
	size_t	 max_part_scan;	/* decoded bytes scanned a part */
};

/*
 * Called once per distinct key, in the order found.  key: a registered
 * domain (lower-case A-labels, no trailing dot) or an IPv4 address in
 * dotted-quad form, is_ip set for the latter.  key lives only during the
 * call.  The callback must not call back into the same scanner.
 */
typedef void (*uriscan_key_fn)(void *ctx, const char *key, bool is_ip);

/*
 * Optional: called once per distinct host name of a link whose key was
 * emitted (after the key's own call), when the name is longer than its
 * key: host in lower-case A-labels, key its registered domain.  Not for
 * IPv4 keys.  At most max_keys host names a message.
 */
typedef void (*uriscan_host_fn)(void *ctx, const char *host,
    const char *key);

struct uriscan;

/*
 * Makes a scanner for one message.  limits: NULL, or a zero field, means
 * the default; values past the URISCAN_*_MAX ceilings are clamped.  ctx is
 * borrowed (passed to fn).  NULL on ENOMEM or when fn is NULL.  A scanner
 * is used by one thread at a time; different scanners are independent.
 */
struct uriscan *uriscan_new(const struct uriscan_limits *, uriscan_key_fn,
    void *ctx);
/* Sets the host callback (same ctx); before the body.  -1 on ENOMEM or
 * when called twice or late. */
int uriscan_set_host_fn(struct uriscan *, uriscan_host_fn);
/*
 * One top-level header field, before any body.  value as libmilter gives
 * it (folds "\r\n " or "\n " allowed).  Only Content-Type and
 * Content-Transfer-Encoding are used; header fields are not scanned for
 * URLs.  Ignored once the body has started.
 */
void uriscan_header(struct uriscan *, const char *name, const char *value);
/* The raw body, in chunks of any size (CRLF or bare LF). */
void uriscan_body(struct uriscan *, const unsigned char *, size_t);
/* End of message: flushes what is pending, emits the last keys.  Later
 * calls of uriscan_header/body/end do nothing. */
void uriscan_end(struct uriscan *);
/* True when a limit was hit: keys or text may have been missed. */
bool uriscan_truncated(const struct uriscan *);
/* NULL is fine. */
void uriscan_free(struct uriscan *);

/*
 * Raw host text as found in a URL (may still carry user:pass@, a port, a
 * path after "/" or "\", percent-escapes, Unicode dots, U-labels) -> its
 * key in out (NUL-terminated) and *is_ip.  0 on success; -1 when it is not
 * a lookup-able host (IPv6 literal, invalid, a public suffix itself, no
 * registrable domain) or the key does not fit outlen.  Thread safe.
 */
int uri_host_key(const char *host, size_t len, char *out, size_t outlen,
    bool *is_ip);

#endif
