/*
 * metrics_http.c - the metrics page over HTTP with libmicrohttpd, the
 * only file that includes it.  See metrics_http.h.
 * The page is rendered per request from the atomic counters (bounded by
 * METRICS_PAGE_MAX); requests are served one at a time by libmicrohttpd's
 * polling thread, so a scraper cannot make portcullis do more than one
 * page's work at once.  The page has no authentication: config.c refuses
 * a listen address off loopback unless metrics_allow_remote says so.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "util.h"

struct metrics_http {
	struct MHD_Daemon *d;	/* owns; closes fd at stop */
	int fd;			/* the listening socket d serves */
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("metrics http: %s", msg);
}
#pragma GCC diagnostic pop

static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	static int seen;	/* marks the first call of a request */
	struct MHD_Response *r;
	enum MHD_Result rc;
	size_t len;
	char *page;

	(void)cls;
	(void)version;
	(void)upload_data;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 ||
	    strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	/* libmicrohttpd calls once with the headers, then for any body:
	 * the page is made on the last call, a body is ignored */
	if (*con_cls == NULL) {
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if ((page = metrics_render(&len)) == NULL) {
		log_err("metrics page larger than %u bytes", METRICS_PAGE_MAX);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "metrics page too large\n");
	}
	r = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(page);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

int
metrics_http_bind(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool loopback;
	int fd, one = 1;

	if (metrics_parse_addr(addr, &ss, &sslen, &loopback, NULL, 0) != 0) {
		snprintf(err, errlen, "invalid address '%s'", addr);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* a restart must not wait for the old connections' TIME_WAIT */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(fd, METRICS_HTTP_BACKLOG) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct metrics_http *
metrics_http_start(int fd, char *err, size_t errlen)
{
	struct metrics_http *h;

	if (fd < 0) {
		snprintf(err, errlen, "no listening socket");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	/*
	 * libmicrohttpd gets a duplicate: it closes the socket it serves
	 * at stop, but whether it does when it fails to start is not
	 * documented, and closing a number twice could close another
	 * thread's file.  Ours is closed either way.
	 */
	if ((h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		close(fd);
		free(h);
		return NULL;
	}
	h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONN_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_MEMORY,
	    MHD_OPTION_END);
	close(fd);
	if (h->d == NULL) {
		snprintf(err, errlen, "cannot start the HTTP server");
		free(h);
		return NULL;
	}
	return h;
}

void
metrics_http_stop(struct metrics_http *h)
{
	if (h == NULL)
		return;
	/* MHD_stop_daemon() closes a socket given with LISTEN_SOCKET too */
	MHD_stop_daemon(h->d);
	free(h);
}
