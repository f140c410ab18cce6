/*
 * metrics_http.h - the HTTP listener of the metrics page (libmicrohttpd):
 * GET /metrics answers the Prometheus text exposition (metrics.h);
 * anything else is 404.
 * Owns: per listener one listening socket and libmicrohttpd's one
 * polling thread (no thread per connection).
 * Limits: METRICS_HTTP_CONN_MAX connections at once, each
 * METRICS_HTTP_TIMEOUT_S seconds idle at most and METRICS_HTTP_MEMORY
 * bytes of request; one page is bounded by METRICS_PAGE_MAX.
 * Errors: functions return -1 / NULL with a message in err.
 */
#ifndef PORTCULLIS_METRICS_HTTP_H
#define PORTCULLIS_METRICS_HTTP_H

#include <stddef.h>

#define METRICS_HTTP_CONN_MAX	8
#define METRICS_HTTP_TIMEOUT_S	10
#define METRICS_HTTP_MEMORY	(16 * 1024)
#define METRICS_HTTP_BACKLOG	16

struct metrics_http;

/*
 * Binds and listens on addr ("IP:PORT", "[IPv6]:PORT"): the daemon does
 * this before it drops privileges, as it opens the milter socket, so
 * that any port the starting user may bind works.  Returns the socket
 * (close-on-exec) or -1.
 */
int metrics_http_bind(const char *addr, char *err, size_t errlen);
/* Starts serving on a socket from metrics_http_bind() (taken over, also
 * on failure): one thread, started after privileges are dropped.  NULL on
 * failure. */
struct metrics_http *metrics_http_start(int fd, char *err, size_t errlen);
/* Stops the thread and closes the socket.  NULL is fine. */
void metrics_http_stop(struct metrics_http *);

#endif
