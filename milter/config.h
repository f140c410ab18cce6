/*
 * config.h - portcullis.conf: "key = value" lines (DESIGN.md section 5).
 * Owns: struct config and its strings.  A loaded config is immutable and
 * belongs to one snapshot.
 * Errors: config_load() reports every problem as "FILE:LINE:COL: message"
 * through the diag list and returns NULL when there was any.
 */
#ifndef PORTCULLIS_CONFIG_H
#define PORTCULLIS_CONFIG_H

#include <sys/stat.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_LINE_MAX		4096
#define CONFIG_FILE_MAX		(1024 * 1024)
#define CONFIG_DNS_TIMEOUT_MAX	60000	/* ms */
#define CONFIG_PROBE_DEFAULT	300000	/* ms: dnsbl_probe_interval */
#define CONFIG_PROBE_MAX	86400000	/* ms */
#define CONFIG_URIBL_LOOKUPS_DEFAULT	40
#define CONFIG_URIBL_LOOKUPS_MAX	1000
#define CONFIG_DKIM_SIGS_DEFAULT	5
#define CONFIG_DKIM_SIGS_MAX		8	/* DKIMV_SIG_MAX */

enum on_error { ON_ERROR_TEMPFAIL = 0, ON_ERROR_ACCEPT };

struct config {
	char *path;		/* owns; the file read, or NULL (defaults) */
	struct stat file_st;	/* of that file as it was read (its owner
				 * and mode are checked by the daemon:
				 * snapshot_load_daemon()) */
	char *dir;		/* owns; directory relative paths start at */
	char *socket;		/* owns; libmilter connection spec */
	char *policy;		/* owns; absolute path of the policy */
	char *authserv_id;	/* owns */
	char *resolver;		/* owns; libunbound "IP@PORT" or NULL */
	unsigned dns_timeout_ms;
	char *greylist_store;	/* owns */
	char *report_store;	/* owns; DMARC report rows, NULL: none
				 * recorded */
	unsigned report_store_line, report_store_col;	/* where set */
	char *geoip_db;		/* owns, may be NULL */
	char *geoip_asn_db;	/* owns, may be NULL */
	unsigned geoip_db_line, geoip_db_col;	/* where set, for errors */
	unsigned geoip_asn_db_line, geoip_asn_db_col;
	unsigned dnsbl_probe_ms;	/* zone health interval, 0: off */
	unsigned uribl_max_lookups;	/* link domains looked up a message */
	unsigned dkim_max_signatures;	/* signatures verified a message */
	/* attachment inspection limits (struct attach_limits, attach.h) */
	unsigned attachment_mime_depth;
	unsigned attachment_parts;
	unsigned attachment_archive_depth;
	unsigned attachment_archive_entries;
	uint64_t attachment_archive_bytes;
	bool greylist_tempfail;	/* greylist_on_error = tempfail */
	char *metrics;		/* owns; metrics listen address in
				 * canonical form ("127.0.0.1:9790",
				 * "[::1]:9790"), NULL: no listener */
	bool metrics_allow_remote;	/* an address off loopback is allowed */
	unsigned metrics_line, metrics_col;	/* where set, for errors */
	char *user;		/* owns, may be NULL */
	char *pidfile;		/* owns, may be NULL */
	enum on_error on_error;
};

/* A list of formatted diagnostics ("FILE:LINE:COL: message"). */
struct diag {
	char **msgs;	/* owns */
	size_t n;
	size_t nerrors;
};
void diag_add(struct diag *, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_free(struct diag *);

/*
 * Reads the config file at path (NULL: built-in defaults only, relative
 * paths then start at the default config directory).  Returns a config
 * or NULL with errors in *d.  Reentrant.
 */
struct config *config_load(const char *path, struct diag *d);
void config_free(struct config *);

/* The default config file (SYSCONFDIR/portcullis/portcullis.conf). */
const char *config_default_path(void);

#endif
