/*
 * log.h - logging to syslog (daemon) or stderr (foreground, tools).
 * Owns: the syslog connection and the current log destination.
 * Thread safety: every function may be called from any thread; one call
 * writes one line.  Untrusted text must go through str_escape_log() first.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

#include <stdbool.h>

enum log_dest { LOG_TO_STDERR, LOG_TO_SYSLOG };

void log_open(const char *ident, enum log_dest);
void log_set_debug(bool);
/* Info lines on or off (tools that print their own results). */
void log_set_info(bool);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start-up failures only: logs and exits 1. */
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* Broken invariant: logs and aborts for a core dump. */
void log_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
