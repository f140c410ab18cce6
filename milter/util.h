/*
 * util.h - allocation helpers, bounded strings and small text utilities.
 * Owns: nothing.  The x* allocators never return NULL: on exhaustion they
 * abort (a filter that cannot allocate a few bytes cannot answer safely).
 * Errors: functions returning int give 0 / -1.
 */
#ifndef PORTCULLIS_UTIL_H
#define PORTCULLIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
/* Checked n * size for arrays; aborts on overflow (a bug). */
void *xreallocarray(void *, size_t n, size_t size);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
/* xstrndup copies at most n bytes, stopping at a NUL. */
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Growing byte string with a hard maximum: appending past max fails (-1)
 * and leaves the buffer unchanged, never truncates silently.  The content
 * is always NUL-terminated.
 */
struct buf {
	char *p;	/* owns */
	size_t len, cap, max;
};
void buf_init(struct buf *, size_t max);
int buf_append(struct buf *, const char *, size_t);
int buf_putc(struct buf *, char);
int buf_puts(struct buf *, const char *);
int buf_appendf(struct buf *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *);
/* Appends s as a JSON string (quoted, escaped).  -1 past the maximum. */
int buf_append_json(struct buf *, const char *s);

/* ASCII case-insensitive comparisons, locale independent. */
bool str_ieq(const char *, const char *);
bool mem_ieq(const char *, size_t, const char *, size_t);

/*
 * Copies untrusted text for a log line or a JSON string: control
 * characters and non-ASCII bytes escaped as \xNN, at most max output
 * bytes (then "..." appended).  Always NUL-terminates dst (size > 4).
 */
void str_escape_log(char *dst, size_t size, const char *src, size_t len);

/* Milliseconds of a monotonic clock. */
uint64_t clock_ms(void);

/* Parses a duration "30s 5m 4h 35d" or plain seconds into milliseconds. */
int duration_parse_ms(const char *, uint64_t *ms);

#endif
