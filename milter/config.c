/*
 * config.c - parse portcullis.conf into an immutable struct config.
 * Owns: nothing global.  Every error is reported with FILE:LINE:COL and,
 * for an unknown key, the nearest known key.
 * Limits: CONFIG_LINE_MAX bytes a line, CONFIG_FILE_MAX bytes a file.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "config.h"
#include "metrics.h"
#include "suggest.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

void
diag_add(struct diag *d, bool is_error, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	d->msgs = xreallocarray(d->msgs, d->n + 1, sizeof(*d->msgs));
	d->msgs[d->n++] = msg;
	if (is_error)
		d->nerrors++;
}

void
diag_free(struct diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = d->nerrors = 0;
}

const char *
config_default_path(void)
{
	return SYSCONFDIR "/portcullis/portcullis.conf";
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->dir);
	free(c->socket);
	free(c->policy);
	free(c->authserv_id);
	free(c->resolver);
	free(c->greylist_store);
	free(c->report_store);
	free(c->geoip_db);
	free(c->geoip_asn_db);
	free(c->metrics);
	free(c->user);
	free(c->pidfile);
	free(c);
}

/* Where parsing of one line stands, for messages. */
struct cfg_pos {
	const char *file;
	unsigned line;
	struct diag *d;
};

static char *
path_join(const char *dir, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	return xasprintf("%s/%s", dir, p);
}

static bool
valid_socket(const char *v)
{
	const char *at, *p;
	unsigned long port;
	char *end;

	if (strncmp(v, "unix:", 5) == 0 || strncmp(v, "local:", 6) == 0) {
		p = strchr(v, ':') + 1;
		return p[0] == '/' && strlen(p) < 100;	/* sun_path */
	}
	if (strncmp(v, "inet:", 5) == 0)
		p = v + 5;
	else if (strncmp(v, "inet6:", 6) == 0)
		p = v + 6;
	else
		return false;
	errno = 0;
	port = strtoul(p, &end, 10);
	if (end == p || errno != 0 || port == 0 || port > 65535)
		return false;
	if (*end == '\0')
		return true;
	if (*end != '@')
		return false;
	at = end + 1;
	return *at != '\0' && strcspn(at, " \t") == strlen(at);
}

/*
 * authserv-id is an RFC 8601 "value": we accept a domain-like token so it
 * can be written without quoting in the header and compared exactly.
 */
static bool
valid_authserv_id(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > 255)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return false;
	}
	return true;
}

/* "IP", "IP:PORT", "[IPv6]:PORT" -> libunbound's "IP@PORT". */
static char *
parse_resolver(const char *v)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char tmp[16];
	const char *port = NULL;
	size_t hl;
	unsigned long pn;
	char *end;

	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (rb == NULL)
			return NULL;
		hl = (size_t)(rb - v - 1);
		if (hl >= sizeof(host))
			return NULL;
		memcpy(host, v + 1, hl);
		host[hl] = '\0';
		if (rb[1] == ':')
			port = rb + 2;
		else if (rb[1] != '\0')
			return NULL;
		if (inet_pton(AF_INET6, host, tmp) != 1)
			return NULL;
	} else {
		const char *colon = strchr(v, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* bare IPv6 without port */
			if (strlen(v) >= sizeof(host) ||
			    inet_pton(AF_INET6, v, tmp) != 1)
				return NULL;
			return xstrdup(v);
		}
		hl = colon ? (size_t)(colon - v) : strlen(v);
		if (hl >= sizeof(host))
			return NULL;
		memcpy(host, v, hl);
		host[hl] = '\0';
		if (colon)
			port = colon + 1;
		if (inet_pton(AF_INET, host, tmp) != 1)
			return NULL;
	}
	if (port == NULL)
		return xstrdup(host);
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno || pn == 0 || pn > 65535)
		return NULL;
	return xasprintf("%s@%lu", host, pn);
}

/* A decimal count from 0 to max.  0 or -1. */
static int
parse_count(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (*end != '\0' || errno != 0 || *out > max)
		return -1;
	return 0;
}

/* A byte count: digits, then optionally K, M or G (powers of 1024).
 * 0, or -1 when not one or not within 1..max. */
static int
parse_bytes(const char *v, uint64_t max, uint64_t *out)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (*end != '\0' || n == 0 || n > (max >> shift))
		return -1;
	*out = (uint64_t)n << shift;
	return 0;
}

/* The attachment limit keys: name, field, ceiling (attach.h). */
static unsigned *
attach_count_key(struct config *c, const char *key, unsigned long *max)
{
	if (strcmp(key, "attachment_mime_depth") == 0) {
		*max = ATTACH_MIME_DEPTH_MAX;
		return &c->attachment_mime_depth;
	}
	if (strcmp(key, "attachment_parts") == 0) {
		*max = ATTACH_MIME_PARTS_MAX;
		return &c->attachment_parts;
	}
	if (strcmp(key, "attachment_archive_depth") == 0) {
		*max = ATTACH_ARCHIVE_DEPTH_MAX;
		return &c->attachment_archive_depth;
	}
	if (strcmp(key, "attachment_archive_entries") == 0) {
		*max = ATTACH_ARCHIVE_ENTRIES_MAX;
		return &c->attachment_archive_entries;
	}
	return NULL;
}

static const char *const config_keys[] = {
	"socket", "policy", "authserv_id", "resolver", "dns_timeout",
	"greylist_store", "geoip_db", "geoip_asn_db", "user", "on_error",
	"pidfile", "dnsbl_probe_interval", "uribl_max_lookups",
	"dkim_max_signatures", "greylist_on_error", "metrics",
	"metrics_allow_remote", "report_store", "attachment_mime_depth",
	"attachment_parts", "attachment_archive_depth",
	"attachment_archive_entries", "attachment_archive_bytes", NULL
};

static void
set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = xstrdup(v);
}

/* Applies one key.  vcol: column of the value, for messages. */
static void
config_apply(struct config *c, struct cfg_pos *pos, const char *key,
    unsigned kcol, const char *v, unsigned vcol)
{
	unsigned long amax;

#define BAD(...) diag_add(pos->d, true, "%s:%u:%u: " __VA_ARGS__)
	if (strcmp(key, "socket") == 0) {
		if (!valid_socket(v))
			BAD("invalid socket '%s' (expected unix:/PATH, "
			    "inet:PORT@HOST or inet6:PORT@HOST)",
			    pos->file, pos->line, vcol, v);
		else
			set_str(&c->socket, v);
	} else if (strcmp(key, "policy") == 0) {
		free(c->policy);
		c->policy = path_join(c->dir, v);
	} else if (strcmp(key, "authserv_id") == 0) {
		if (!valid_authserv_id(v))
			BAD("invalid authserv_id '%s' (letters, digits, "
			    "'.', '-', '_')", pos->file, pos->line, vcol, v);
		else
			set_str(&c->authserv_id, v);
	} else if (strcmp(key, "resolver") == 0) {
		char *r = parse_resolver(v);

		if (r == NULL)
			BAD("invalid resolver '%s' (expected IP, IP:PORT or "
			    "[IPv6]:PORT)", pos->file, pos->line, vcol, v);
		else {
			free(c->resolver);
			c->resolver = r;
		}
	} else if (strcmp(key, "dns_timeout") == 0) {
		uint64_t ms;

		if (duration_parse_ms(v, &ms) != 0 || ms == 0 ||
		    ms > CONFIG_DNS_TIMEOUT_MAX)
			BAD("invalid dns_timeout '%s' (a duration from 1ms "
			    "to 60s, e.g. 5s)", pos->file, pos->line, vcol, v);
		else
			c->dns_timeout_ms = (unsigned)ms;
	} else if (strcmp(key, "greylist_store") == 0) {
		if (strncmp(v, "lmdb:", 5) == 0 && v[5] != '\0') {
			char *p = path_join(c->dir, v + 5);

			free(c->greylist_store);
			c->greylist_store = xasprintf("lmdb:%s", p);
			free(p);
		} else if (strncmp(v, "redis://", 8) == 0 && v[8] != '\0')
			set_str(&c->greylist_store, v);
		else
			BAD("invalid greylist_store '%s' (expected lmdb:DIR "
			    "or redis://HOST:PORT/DB)", pos->file, pos->line,
			    vcol, v);
	} else if (strcmp(key, "report_store") == 0) {
		if (strncmp(v, "lmdb:", 5) == 0 && v[5] != '\0') {
			char *p = path_join(c->dir, v + 5);

			free(c->report_store);
			c->report_store = xasprintf("lmdb:%s", p);
			free(p);
		} else if (strncmp(v, "redis://", 8) == 0 && v[8] != '\0')
			set_str(&c->report_store, v);
		else
			BAD("invalid report_store '%s' (expected lmdb:DIR "
			    "or redis://HOST:PORT/DB)", pos->file, pos->line,
			    vcol, v);
		c->report_store_line = pos->line;
		c->report_store_col = vcol;
	} else if (strcmp(key, "geoip_db") == 0) {
		free(c->geoip_db);
		c->geoip_db = path_join(c->dir, v);
		c->geoip_db_line = pos->line;
		c->geoip_db_col = vcol;
	} else if (strcmp(key, "geoip_asn_db") == 0) {
		free(c->geoip_asn_db);
		c->geoip_asn_db = path_join(c->dir, v);
		c->geoip_asn_db_line = pos->line;
		c->geoip_asn_db_col = vcol;
	} else if (strcmp(key, "dnsbl_probe_interval") == 0) {
		uint64_t ms;

		if (strcmp(v, "0") == 0)
			c->dnsbl_probe_ms = 0;
		else if (duration_parse_ms(v, &ms) != 0 || ms < 1000 ||
		    ms > CONFIG_PROBE_MAX)
			BAD("invalid dnsbl_probe_interval '%s' (0 for off, or "
			    "a duration from 1s to 1d, e.g. 5m)", pos->file,
			    pos->line, vcol, v);
		else
			c->dnsbl_probe_ms = (unsigned)ms;
	} else if (strcmp(key, "uribl_max_lookups") == 0) {
		unsigned long n;

		if (parse_count(v, CONFIG_URIBL_LOOKUPS_MAX, &n) != 0)
			BAD("invalid uribl_max_lookups '%s' (a number from 0 "
			    "to %u)", pos->file, pos->line, vcol, v,
			    CONFIG_URIBL_LOOKUPS_MAX);
		else
			c->uribl_max_lookups = (unsigned)n;
	} else if (strcmp(key, "dkim_max_signatures") == 0) {
		unsigned long n;

		if (parse_count(v, CONFIG_DKIM_SIGS_MAX, &n) != 0 || n == 0)
			BAD("invalid dkim_max_signatures '%s' (a number from "
			    "1 to %u)", pos->file, pos->line, vcol, v,
			    CONFIG_DKIM_SIGS_MAX);
		else
			c->dkim_max_signatures = (unsigned)n;
	} else if (attach_count_key(c, key, &amax) != NULL) {
		unsigned long n;

		if (parse_count(v, amax, &n) != 0 || n == 0)
			BAD("invalid %s '%s' (a number from 1 to %lu)",
			    pos->file, pos->line, vcol, key, v, amax);
		else
			*attach_count_key(c, key, &amax) = (unsigned)n;
	} else if (strcmp(key, "attachment_archive_bytes") == 0) {
		uint64_t n;

		if (parse_bytes(v, ATTACH_ARCHIVE_BYTES_MAX, &n) != 0)
			BAD("invalid attachment_archive_bytes '%s' (bytes, "
			    "or with K, M or G, from 1 to 1024G)", pos->file,
			    pos->line, vcol, v);
		else
			c->attachment_archive_bytes = n;
	} else if (strcmp(key, "greylist_on_error") == 0) {
		if (strcmp(v, "pass") == 0)
			c->greylist_tempfail = false;
		else if (strcmp(v, "tempfail") == 0)
			c->greylist_tempfail = true;
		else
			BAD("invalid greylist_on_error '%s' (expected pass or "
			    "tempfail)", pos->file, pos->line, vcol, v);
	} else if (strcmp(key, "metrics") == 0) {
		struct sockaddr_storage ss;
		socklen_t sslen;
		bool loopback;
		char norm[INET6_ADDRSTRLEN + 16];

		if (metrics_parse_addr(v, &ss, &sslen, &loopback, norm,
		    sizeof(norm)) != 0)
			BAD("invalid metrics address '%s' (expected IP:PORT or "
			    "[IPv6]:PORT, e.g. 127.0.0.1:9790)", pos->file,
			    pos->line, vcol, v);
		else {
			set_str(&c->metrics, norm);
			c->metrics_line = pos->line;
			c->metrics_col = vcol;
		}
	} else if (strcmp(key, "metrics_allow_remote") == 0) {
		if (strcmp(v, "yes") == 0)
			c->metrics_allow_remote = true;
		else if (strcmp(v, "no") == 0)
			c->metrics_allow_remote = false;
		else
			BAD("invalid metrics_allow_remote '%s' (expected yes "
			    "or no)", pos->file, pos->line, vcol, v);
	} else if (strcmp(key, "user") == 0) {
		set_str(&c->user, v);
	} else if (strcmp(key, "pidfile") == 0) {
		free(c->pidfile);
		c->pidfile = path_join(c->dir, v);
	} else if (strcmp(key, "on_error") == 0) {
		if (strcmp(v, "tempfail") == 0)
			c->on_error = ON_ERROR_TEMPFAIL;
		else if (strcmp(v, "accept") == 0)
			c->on_error = ON_ERROR_ACCEPT;
		else
			BAD("invalid on_error '%s' (expected tempfail or "
			    "accept)", pos->file, pos->line, vcol, v);
	} else {
		const char *near = suggest_nearest(key, config_keys);

		if (near != NULL)
			BAD("unknown key '%s' (did you mean '%s'?)",
			    pos->file, pos->line, kcol, key, near);
		else
			BAD("unknown key '%s'", pos->file, pos->line, kcol,
			    key);
	}
#undef BAD
}

/*
 * The metrics page has no authentication and tells who mails whom how
 * much: off loopback only when the administrator says so (after the whole
 * file, so the two keys may come in any order).
 */
static void
config_check_metrics(const struct config *c, const char *path,
    struct diag *d)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool loopback;

	if (c->metrics == NULL || c->metrics_allow_remote ||
	    metrics_parse_addr(c->metrics, &ss, &sslen, &loopback, NULL,
	    0) != 0 || loopback)
		return;
	diag_add(d, true, "%s:%u:%u: metrics address '%s' is not a loopback "
	    "address (the page has no authentication; set "
	    "metrics_allow_remote = yes to serve it there)", path,
	    c->metrics_line, c->metrics_col, c->metrics);
}

static struct config *
config_defaults(const char *dir)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char host[256];

	c->dir = xstrdup(dir);
	c->socket = xstrdup("inet:8895@127.0.0.1");
	c->policy = path_join(dir, "policy.rules");
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0' ||
	    !valid_authserv_id(host))
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	c->authserv_id = xstrdup(host);
	c->dns_timeout_ms = 5000;
	c->dnsbl_probe_ms = CONFIG_PROBE_DEFAULT;
	c->uribl_max_lookups = CONFIG_URIBL_LOOKUPS_DEFAULT;
	c->dkim_max_signatures = CONFIG_DKIM_SIGS_DEFAULT;
	c->attachment_mime_depth = ATTACH_MIME_DEPTH_DEFAULT;
	c->attachment_parts = ATTACH_MIME_PARTS_DEFAULT;
	c->attachment_archive_depth = ATTACH_ARCHIVE_DEPTH_DEFAULT;
	c->attachment_archive_entries = ATTACH_ARCHIVE_ENTRIES_DEFAULT;
	c->attachment_archive_bytes = ATTACH_ARCHIVE_BYTES_DEFAULT;
	c->greylist_store = xstrdup("lmdb:" LOCALSTATEDIR
	    "/lib/portcullis/greylist");
	c->on_error = ON_ERROR_TEMPFAIL;
	return c;
}

static char *
dir_of(const char *path)
{
	char *abs, *slash;

	if (path[0] == '/')
		abs = xstrdup(path);
	else {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return xstrdup(".");
		abs = xasprintf("%s/%s", cwd, path);
	}
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
	return abs;
}

static void
config_parse_line(struct config *c, struct cfg_pos *pos, char *line)
{
	char *p = line, *key, *val, *end;
	unsigned kcol, vcol;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return;
	key = p;
	kcol = (unsigned)(p - line) + 1;
	while (*p != '\0' && *p != '=' && *p != ' ' && *p != '\t')
		p++;
	end = p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=') {
		diag_add(pos->d, true, "%s:%u:%u: expected '=' after '%.*s'",
		    pos->file, pos->line, (unsigned)(p - line) + 1,
		    (int)(end - key), key);
		return;
	}
	*end = '\0';
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	val = p;
	vcol = (unsigned)(p - line) + 1;
	/* a '#' after white space starts a comment; values hold no spaces */
	for (end = val; *end != '\0'; end++)
		if (*end == '#' && (end == val || end[-1] == ' ' ||
		    end[-1] == '\t'))
			break;
	*end = '\0';
	while (end > val && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*val == '\0') {
		diag_add(pos->d, true, "%s:%u:%u: missing value for '%s'",
		    pos->file, pos->line, vcol, key);
		return;
	}
	for (p = val; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20) {
			diag_add(pos->d, true, "%s:%u:%u: control character "
			    "in value", pos->file, pos->line,
			    (unsigned)(p - line) + 1);
			return;
		}
	config_apply(c, pos, key, kcol, val, vcol);
}

struct config *
config_load(const char *path, struct diag *d)
{
	struct config *c;
	struct cfg_pos pos;
	char *dir, line[CONFIG_LINE_MAX + 2];
	size_t total = 0, errors_before = d->nerrors;
	FILE *fp;

	if (path == NULL) {
		dir = xstrdup(SYSCONFDIR "/portcullis");
		c = config_defaults(dir);
		free(dir);
		return c;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		diag_add(d, true, "%s: cannot open: %s", path,
		    strerror(errno));
		return NULL;
	}
	dir = dir_of(path);
	c = config_defaults(dir);
	free(dir);
	c->path = xstrdup(path);
	/* the status of the file read, not of whatever the name points to
	 * a moment later */
	if (fstat(fileno(fp), &c->file_st) != 0) {
		diag_add(d, true, "%s: cannot stat: %s", path,
		    strerror(errno));
		fclose(fp);
		config_free(c);
		return NULL;
	}
	pos.file = path;
	pos.line = 0;
	pos.d = d;
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);

		pos.line++;
		total += n;
		if (total > CONFIG_FILE_MAX) {
			diag_add(d, true, "%s:%u:1: file too large (over %u "
			    "bytes)", path, pos.line, CONFIG_FILE_MAX);
			break;
		}
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(fp)) {
			int ch;

			diag_add(d, true, "%s:%u:1: line too long (over %u "
			    "bytes)", path, pos.line, CONFIG_LINE_MAX);
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (strlen(line) != n) {
			diag_add(d, true, "%s:%u:%zu: NUL byte in line", path,
			    pos.line, strlen(line) + 1);
			continue;
		}
		config_parse_line(c, &pos, line);
	}
	if (ferror(fp))
		diag_add(d, true, "%s: read error: %s", path, strerror(errno));
	fclose(fp);
	config_check_metrics(c, path, d);
	/* Two LMDB stores in one directory would be one database: the
	 * greylist sweep deletes what it cannot read. */
	if (c->report_store != NULL && c->greylist_store != NULL &&
	    strncmp(c->report_store, "lmdb:", 5) == 0 &&
	    strncmp(c->greylist_store, "lmdb:", 5) == 0 &&
	    strcspn(c->report_store, "?") == strcspn(c->greylist_store, "?") &&
	    strncmp(c->report_store, c->greylist_store,
	    strcspn(c->report_store, "?")) == 0)
		diag_add(d, true, "%s:%u:%u: report_store is the directory of "
		    "greylist_store: give it a directory of its own", path,
		    c->report_store_line, c->report_store_col);
	if (d->nerrors > errors_before) {
		config_free(c);
		return NULL;
	}
	return c;
}
