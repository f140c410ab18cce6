/*
 * log.c - syslog or stderr logging, one line per call.
 * Owns: the destination flag (set at start-up, read afterwards).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "log.h"

static enum log_dest log_dest = LOG_TO_STDERR;
static const char *log_ident = "portcullis";
static bool log_debug_on;
static bool log_info_off;

void
log_set_info(bool on)
{
	log_info_off = !on;
}

void
log_open(const char *ident, enum log_dest dest)
{
	log_ident = ident;
	log_dest = dest;
	if (dest == LOG_TO_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_debug(bool on)
{
	log_debug_on = on;
}

static void
log_v(int prio, const char *label, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_dest == LOG_TO_SYSLOG)
		syslog(prio, "%s%s", label, line);
	else
		/* one fprintf call: stdio locks the stream, so lines of
		 * different threads never interleave */
		fprintf(stderr, "%s: %s%s\n", log_ident, label, line);
}

#define LOG_FN(fn, prio, label)				\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_v(prio, label, fmt, ap);			\
	va_end(ap);					\
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_v(LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_info_off)
		return;
	va_start(ap, fmt);
	log_v(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

LOG_FN(log_warn, LOG_WARNING, "warning: ")
LOG_FN(log_err, LOG_ERR, "error: ")

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_CRIT, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_CRIT, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}
