/*
 * tag.h - Subject tagging of external mail ("[EXTERNAL] Re: hello").
 * Owns: nothing after tag_init(); every result is malloc'ed for the caller.
 * Limits: TAG_TEXT_MAX for the tag, TAG_SUBJECT_MAX decoded, TAG_RAW_MAX raw.
 * Errors: functions return -1; the caller turns that into on_error.
 */

#ifndef PORTCULLIS_TAG_H
#define PORTCULLIS_TAG_H

#include <stddef.h>

/* Longest tag text (bytes, after sanitising) accepted. */
#define TAG_TEXT_MAX		256
/*
 * Raw Subject bytes decoded and compared as a whole.  A longer Subject is
 * still tagged: the tag is looked for in its first TAG_SUBJECT_MAX bytes and
 * prepended to the raw value, which is then kept as received (see tag.c).
 */
#define TAG_SUBJECT_MAX		(16 * 1024)
/*
 * Raw Subject bytes accepted at all: libmilter cannot pass a longer value
 * (its largest packet, MILTER_MAX_DATA_SIZE, is at most 1 MiB).
 */
#define TAG_RAW_MAX		(1024 * 1024)
/* Ceiling of any buffer: decoding and re-encoding grow text about 4 x. */
#define TAG_BUF_MAX		(4 * (size_t)TAG_RAW_MAX + 4096)
/* RFC 5322 2.1.1: fold at 78 where possible, never past 998. */
#define TAG_FOLD_COLS		78
#define TAG_LINE_MAX		998
/* RFC 2047 2: an encoded-word is at most 75 characters. */
#define TAG_EW_MAX		75
/* Columns taken by "Subject: " on the first line. */
#define TAG_NAME_COLS		9
/* A word longer than this never fits a line: encoded or split. */
#define TAG_ATOM_MAX		900
/* Runs of whitespace longer than this are shortened to one space. */
#define TAG_WSP_RUN_MAX		64

/*
 * Initialises GMime (g_mime_init).  Start-up only: call once from the main
 * thread before any other thread runs and before tag_subject().  Returns 0.
 */
int	tag_init(void);

/*
 * Releases GMime (g_mime_shutdown).  Exit only, after every thread that may
 * call tag_subject() has stopped.  Safe without tag_init().
 */
void	tag_shutdown(void);

/* Computes the tagged Subject.  tag: the admin's text, e.g. "[EXTERNAL]".
 * subject: the raw header value as received (may contain RFC 2047 encoded-words,
 * folding CRLF/LF + WSP, 8-bit UTF-8), or NULL when the message has no Subject.
 * Returns 0 and *out = NULL when the subject already carries the tag (nothing to
 * do), 0 and *out = a malloc'ed new raw header value to set, or -1 on error. */
int tag_subject(const char *tag, const char *subject, size_t subject_len, char **out);

/*
 * More of the contract of tag_subject():
 * - The value is for smfi_chgheader()/smfi_addheader(): no "Subject:" name,
 *   folded with "\n" + WSP (LF only, never CR: libmilter's documented form),
 *   lines <= TAG_FOLD_COLS where a word boundary allows, always <=
 *   TAG_LINE_MAX counting "Subject: " on the first line.
 * - tag: NUL-terminated UTF-8; CR, LF and other controls become spaces, so the
 *   tag can never start a new header line.  An empty, too long (after
 *   sanitising > TAG_TEXT_MAX) or invalid UTF-8 tag gives -1.
 * - subject: (ptr, len), any bytes; NUL, CR and LF outside folding become
 *   spaces.  subject_len > TAG_RAW_MAX gives -1.
 * - *out is set to NULL first; on success with a value the caller free()s it.
 * - Thread-safe after tag_init(); returns -1 when tag_init() was not called.
 */

#endif
