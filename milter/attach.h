/*
 * attach.h - attachment inspection: the file names of a message's parts
 * and of the members of the archives attached to it, checked against the
 * policy's block list; and the "strip" action that replaces blocked
 * attachments by a short notice.
 * Owns: per call, one GMime parse of the message (content left on disk,
 * GMime's persistent stream) and at most ATTACH_ARCHIVE_DEPTH_MAX open
 * libarchive readers; process-wide, GMime's one-time initialisation
 * (attach_init(), pthread_once).
 * Limits: struct attach_limits (MIME depth and parts, archive depth,
 * entries and decompressed bytes; portcullis.conf attachment_* keys) and
 * the ATTACH_* constants below; a limit hit, or a broken multipart, sets
 * attach_result.limits and never truncates silently.  Every name of a
 * part counts (each Content-Disposition and Content-Type field, every
 * name/filename parameter, RFC 2231 sections read both ways).
 * Errors: 0 / -1 (ENOMEM, I/O); limits and undecodable input are results,
 * not errors.
 */
#ifndef PORTCULLIS_ATTACH_H
#define PORTCULLIS_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATTACH_MIME_DEPTH_DEFAULT	30
#define ATTACH_MIME_PARTS_DEFAULT	1000
#define ATTACH_ARCHIVE_DEPTH_DEFAULT	3
#define ATTACH_ARCHIVE_ENTRIES_DEFAULT	10000
#define ATTACH_ARCHIVE_BYTES_DEFAULT	((uint64_t)100 * 1024 * 1024)
/* Ceilings of the limits above: larger values are clamped.  GMime's
 * parser recurses once or twice per MIME level (and stops by itself at
 * 1024), so the MIME depth handed to it is kept well below that. */
#define ATTACH_MIME_DEPTH_MAX		100
#define ATTACH_MIME_PARTS_MAX		100000
#define ATTACH_ARCHIVE_DEPTH_MAX	8	/* open readers at once */
#define ATTACH_ARCHIVE_ENTRIES_MAX	1000000
#define ATTACH_ARCHIVE_BYTES_MAX	((uint64_t)1 << 40)	/* 1 TiB */
#define ATTACH_NAMES_MAX		1000	/* names kept in a result */
#define ATTACH_PART_NAMES_MAX		16	/* different names one part
						 * gives itself */
#define ATTACH_PARAMS_MAX		64	/* parameters of one
						 * Content-Type or
						 * Content-Disposition field
						 * compared for repeats */
#define ATTACH_NAME_MAX			1024	/* bytes of one normalised
						 * name component */
#define ATTACH_PATH_MAX			4096	/* bytes of a full name
						 * "a.zip/b.zip/c.exe" */
#define ATTACH_HEADER_FIELDS_MAX	10000	/* header fields of all the
						 * parts handed to GMime (it
						 * keeps each as objects of
						 * ~400 bytes): over it, a
						 * limit */
#define ATTACH_FIELD_MAX		8192	/* bytes of a line and of an
						 * unfolded Content-Type kept
						 * by the depth pre-scan */
#define ATTACH_BOUNDARY_MAX		(ATTACH_FIELD_MAX - 8)
						/* longest boundary the
						 * pre-scan follows (RFC 2046
						 * says 70): any that fits a
						 * kept Content-Type */
#define ATTACH_SEEK_MAX			16	/* rewinds of a decoded part
						 * for a seeking archive
						 * reader (7z, iso, zip) */

struct attach_limits {
	unsigned mime_depth;	/* nesting of multipart/message parts
				 * followed (default 30) */
	unsigned mime_parts;	/* parts looked at (default 1000) */
	unsigned archive_depth;	/* archives inside archives opened
				 * (default 3; the attached archive itself is
				 * level 1) */
	unsigned archive_entries; /* entries listed over the whole message
				 * (default 10000) */
	uint64_t archive_bytes;	/* bytes decompressed over the whole
				 * message, to read nested or compressed
				 * archives (default 100 MiB) */
};

/*
 * The policy's decision on one normalised file name: true = blocked.
 * name is the full form, e.g. "outer.zip/dir/member.exe"; its last
 * component is the file whose type counts.  name lives only during the
 * call.  Called from the thread that called attach_scan/attach_strip.
 */
typedef bool (*attach_blocked_fn)(void *ctx, const char *name);

struct attach_result {
	char	**names;	/* owns: every file name, in message order;
				 * archive members as "outer.zip/dir/m.exe",
				 * nested "a.zip/b.zip/c.exe"; at most
				 * ATTACH_NAMES_MAX kept */
	size_t	  nnames;
	char	**blocked;	/* owns: the blocked ones (same form, same
				 * maximum) */
	size_t	  nblocked;
	bool	  encrypted;	/* an encrypted archive or entry was seen */
	bool	  limits;	/* a limit was exceeded, or a part or an
				 * archive could not be parsed as what it
				 * claims to be, or a multipart is broken
				 * (no, empty or white-space-ended boundary,
				 * boundary never seen, end boundary missing,
				 * part header fields in a preamble or
				 * epilogue); the names found still count */
	char	  limit_what[96]; /* the first such, for the log:
				 * "mime_depth 30", "corrupt zip in x.zip" */
};

/*
 * Scans the whole message (RFC 5322 header and body as received, CRLF or
 * LF) read from fd, a seekable file, from offset 0 (fd's file offset is
 * left undefined).  limits: NULL, or a zero field, means the default.  fn may
 * be NULL (nothing blocked).  *res is filled (free with
 * attach_result_free()) even on -1.  0, or -1 with errno on an internal
 * failure (I/O, temporary files).  Thread safe (calls attach_init()).
 */
int attach_scan(int fd, const struct attach_limits *, attach_blocked_fn,
    void *ctx, struct attach_result *res);
/* Frees what res owns and clears it; NULL is fine. */
void attach_result_free(struct attach_result *res);

/*
 * The "strip" action.  Output: body, the new message body (what follows
 * the header, for smfi_replacebody), with every blocked attachment
 * replaced by a text/plain notice ("The attachment NAME was removed by
 * the mail filter portcullis: files of this type are not accepted."); an
 * archive holding a blocked member is removed whole and the notice names
 * it and the member.  The other parts are written back as parsed (GMime
 * keeps their headers and encoded content as received).  content_type
 * and cte: new values for the top-level header fields, set only when the
 * message itself was a single blocked part (else NULL); the caller then
 * also deletes the other top-level Content-* fields (Content-Disposition
 * still names the blocked file).  removed: parts
 * replaced; 0 means nothing was blocked: body is NULL, nothing to do.
 * 0, or -1 with errno: ENOMEM or I/O, and E2BIG when a limit was
 * exceeded (what lies past a limit was not inspected, so it cannot be
 * delivered safely: the caller refuses with tempfail or rejects).  The
 * blocked file is never in the output.  Thread safe.
 */
struct attach_stripped {
	char	*body;		/* owns, NUL-terminated too */
	size_t	 len;
	char	*content_type;	/* owns, or NULL */
	char	*cte;		/* owns, or NULL */
	unsigned removed;
};
int attach_strip(int fd, const struct attach_limits *, attach_blocked_fn,
    void *ctx, struct attach_stripped *out);
/* Frees what out owns and clears it; NULL is fine. */
void attach_stripped_free(struct attach_stripped *out);

/*
 * Name normalisation applied before the callback: removes bidi controls
 * (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero-width
 * characters (U+200B-U+200D, U+2060, U+FEFF, U+00AD) and control
 * characters (C0, DEL, C1), replaces each byte of invalid UTF-8
 * (overlong, surrogate, past U+10FFFF, truncated) by '?', and trims
 * trailing dots and spaces (Windows drops them).  out is always
 * NUL-terminated (outlen > 0); a result too long is cut at a character
 * boundary.  Thread safe.
 */
void attach_name_normalise(const char *in, char *out, size_t outlen);

/* Initialises GMime once per process (pthread_once); g_mime_init() is
 * reference counted, so sharing it with addr_init() is safe. */
void attach_init(void);

#endif
