/*
 * snapshot.c - load, publish and reference-count config + policy
 * generations.  See snapshot.h.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkimv.h"
#include "dns.h"
#include "geoip.h"
#include "greylist.h"
#include "log.h"
#include "report.h"
#include "snapshot.h"
#include "util.h"
#include "zonehealth.h"

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The greylist store is the process's, not a snapshot's: LMDB must not
 * open one environment twice in a process, and a reload must not lose a
 * Redis pool.  Snapshots with the same greylist_store share one handle.
 */
static pthread_mutex_t grey_lock = PTHREAD_MUTEX_INITIALIZER;
static struct grey_shared {
	char *spec;
	struct greylist *g;
	unsigned refs;
} grey_stores[4];

static struct greylist *
grey_acquire(const char *spec, char *err, size_t errlen)
{
	struct greylist *g = NULL;
	size_t i, free_slot = sizeof(grey_stores) / sizeof(grey_stores[0]);

	pthread_mutex_lock(&grey_lock);
	for (i = 0; i < sizeof(grey_stores) / sizeof(grey_stores[0]); i++) {
		if (grey_stores[i].spec != NULL &&
		    strcmp(grey_stores[i].spec, spec) == 0) {
			grey_stores[i].refs++;
			g = grey_stores[i].g;
			goto out;
		}
		if (grey_stores[i].spec == NULL && free_slot == sizeof(
		    grey_stores) / sizeof(grey_stores[0]))
			free_slot = i;
	}
	if (free_slot == sizeof(grey_stores) / sizeof(grey_stores[0])) {
		snprintf(err, errlen, "too many greylist stores in use");
		goto out;
	}
	if ((g = greylist_open(spec, err, errlen)) != NULL) {
		grey_stores[free_slot].spec = xstrdup(spec);
		grey_stores[free_slot].g = g;
		grey_stores[free_slot].refs = 1;
	}
out:
	pthread_mutex_unlock(&grey_lock);
	return g;
}

static void
grey_release(struct greylist *g)
{
	size_t i;

	if (g == NULL)
		return;
	pthread_mutex_lock(&grey_lock);
	for (i = 0; i < sizeof(grey_stores) / sizeof(grey_stores[0]); i++)
		if (grey_stores[i].g == g && --grey_stores[i].refs == 0) {
			greylist_close(g);
			free(grey_stores[i].spec);
			memset(&grey_stores[i], 0, sizeof(grey_stores[i]));
		}
	pthread_mutex_unlock(&grey_lock);
}

void
snapshot_private_greylist(struct snapshot *s)
{
	char tmpl[] = "/tmp/portcullis-greylist-XXXXXX";
	char *spec;

	if (s->grey_tmpdir != NULL || mkdtemp(tmpl) == NULL)
		return;
	s->grey_tmpdir = xstrdup(tmpl);
	spec = xasprintf("lmdb:%s", tmpl);
	free(s->cfg->greylist_store);
	s->cfg->greylist_store = spec;
}

/* Removes a private store's files and directory. */
static void
grey_tmp_remove(const char *dir)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = xasprintf("%s/%s", dir, files[i]);

		unlink(p);
		free(p);
	}
	rmdir(dir);
}
static struct snapshot *current;	/* owns one reference */
static unsigned generation;

bool
snapshot_fact_supported(enum pol_fact f)
{
	switch (f) {
	case POL_FACT_CLIENT_IP:
	case POL_FACT_CLIENT_PTR:
	case POL_FACT_HELO:
	case POL_FACT_AUTHENTICATED:
	case POL_FACT_TRUSTED:
	case POL_FACT_EXTERNAL:
	case POL_FACT_MAIL_FROM:
	case POL_FACT_MAIL_FROM_DOMAIN:
	case POL_FACT_RCPT:
	case POL_FACT_RCPT_DOMAIN:
	case POL_FACT_FROM:
	case POL_FACT_FROM_DOMAIN:
	case POL_FACT_FROM_INTERNAL:
	case POL_FACT_SUBJECT:
	case POL_FACT_SIZE:
	case POL_FACT_HEADER:
	case POL_FACT_SCORE:
	case POL_FACT_SPF:
	case POL_FACT_SPF_HELO:
	case POL_FACT_SPF_EXPLANATION:
	case POL_FACT_DKIM:
	case POL_FACT_DKIM_DOMAINS:
	case POL_FACT_DMARC:
	case POL_FACT_DMARC_POLICY:
	case POL_FACT_DNSBL_LISTED:
	case POL_FACT_DNSBL_ZONE:
	case POL_FACT_DNSBL_ZONES:
	case POL_FACT_DNSBL_REASON:
	case POL_FACT_CLIENT_COUNTRY:
	case POL_FACT_CLIENT_ASN:
	case POL_FACT_URIBL_LISTED:
	case POL_FACT_URIBL_DOMAINS:
	case POL_FACT_URL_DOMAINS:
	case POL_FACT_ATTACHMENT_BLOCKED:
	case POL_FACT_ATTACHMENT_NAME:
	case POL_FACT_ATTACHMENT_NAMES:
	case POL_FACT_ATTACHMENT_ENCRYPTED:
	case POL_FACT_ATTACHMENT_LIMITS:
	case POL_FACT_GREYLIST:
		return true;
	default:
		return false;
	}
}

/*
 * The GeoIP databases, opened at load so that a missing or broken file is
 * a configuration error (at the line of its key) and a reload keeps the
 * databases in use.  A policy that reads client.country or client.asn
 * without the database that gives it is refused: the fact would be
 * empty on every message, silently.
 */
static struct geoip *
open_geoip(const struct config *cfg, const struct policy *pol,
    struct diag *d)
{
	struct geoip *g;
	char err[512];
	unsigned line, col;

	if (cfg->geoip_db == NULL &&
	    pol_reference_pos(pol, POL_FACT_CLIENT_COUNTRY, &line, &col))
		diag_add(d, true, "%s:%u:%u: fact 'client.country' needs a "
		    "country database (geoip_db in %s)", cfg->policy, line,
		    col, cfg->path != NULL ? cfg->path : "the config");
	if (cfg->geoip_asn_db == NULL &&
	    pol_reference_pos(pol, POL_FACT_CLIENT_ASN, &line, &col))
		diag_add(d, true, "%s:%u:%u: fact 'client.asn' needs an ASN "
		    "database (geoip_asn_db in %s)", cfg->policy, line, col,
		    cfg->path != NULL ? cfg->path : "the config");
	if (cfg->geoip_db == NULL && cfg->geoip_asn_db == NULL)
		return NULL;
	/* each file on its own first, so an error names the right key */
	if (cfg->geoip_db != NULL) {
		g = geoip_open(cfg->geoip_db, NULL, err, sizeof(err));
		if (g == NULL) {
			diag_add(d, true, "%s:%u:%u: geoip_db: %s", cfg->path,
			    cfg->geoip_db_line, cfg->geoip_db_col, err);
			return NULL;
		}
		geoip_close(g);
	}
	if (cfg->geoip_asn_db != NULL) {
		g = geoip_open(NULL, cfg->geoip_asn_db, err, sizeof(err));
		if (g == NULL) {
			diag_add(d, true, "%s:%u:%u: geoip_asn_db: %s",
			    cfg->path, cfg->geoip_asn_db_line,
			    cfg->geoip_asn_db_col, err);
			return NULL;
		}
		geoip_close(g);
	}
	if ((g = geoip_open(cfg->geoip_db, cfg->geoip_asn_db, err,
	    sizeof(err))) == NULL)
		diag_add(d, true, "%s: %s", cfg->path, err);
	return g;
}

/*
 * The uid the daemon will run as: that of user (getpwnam_r: a reload runs
 * beside the milter threads), or the caller's without one.  0, or -1 with
 * a message in *d.
 */
static int
daemon_uid(const char *user, const char *where, uid_t *uid, struct diag *d)
{
	struct passwd pw, *res = NULL;
	long max = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t len = max > 0 ? (size_t)max : 16384;
	char *buf;
	int rc;

	if (user == NULL) {
		*uid = geteuid();
		return 0;
	}
	buf = xmalloc(len);
	rc = getpwnam_r(user, &pw, buf, len, &res);
	if (res != NULL)
		*uid = pw.pw_uid;
	else if (rc == 0)
		diag_add(d, true, "%s: unknown user '%s'", where, user);
	else
		diag_add(d, true, "%s: cannot look up user '%s': %s", where,
		    user, strerror(rc));
	free(buf);
	return res != NULL ? 0 : -1;
}

static struct snapshot *
load_as(const char *conf_path, bool daemon, const char *user,
    struct diag *d)
{
	struct pol_file_owner strict, *owner = NULL;
	struct pol_diag pd = { 0 };
	struct snapshot *s;
	struct config *cfg;
	struct policy *pol;
	struct geoip *geo;
	size_t i;
	char buf[1024];
	int f;

	if ((cfg = config_load(conf_path, d)) == NULL)
		return NULL;
	if (daemon) {
		const char *who = cfg->user, *where = cfg->path;

		/*
		 * The config file says what the starting user (root) does
		 * before dropping privileges: which socket it chmods and
		 * chowns, which pidfile it truncates.  So only root (or the
		 * user starting portcullis, when that is not root) may own
		 * it, not the user the daemon becomes.  Its content is not
		 * looked at before this check passed.
		 */
		strict.strict = true;
		strict.uid = geteuid();
		if (cfg->path != NULL && pol_file_untrusted(&cfg->file_st,
		    &strict, buf, sizeof(buf))) {
			diag_add(d, true, "%s: refused: %s", cfg->path, buf);
			config_free(cfg);
			return NULL;
		}
		/* the policy and lists decide only what the daemon decides
		 * anyway: root's or the user's it runs as */
		if (user != NULL) {
			who = user;
			where = "-u";
		}
		if (daemon_uid(who, where, &strict.uid, d) != 0) {
			config_free(cfg);
			return NULL;
		}
		owner = &strict;
	}
	pol = pol_load_owned(cfg->policy, owner, &pd);
	for (i = 0; i < pd.n; i++) {
		pol_diag_format(&pd.items[i], buf, sizeof(buf));
		diag_add(d, pd.items[i].is_error, "%s", buf);
	}
	pol_diag_free(&pd);
	if (pol == NULL) {
		config_free(cfg);
		return NULL;
	}
	for (f = 0; f < POL_FACT_COUNT; f++) {
		unsigned line, col;

		if (!snapshot_fact_supported((enum pol_fact)f) &&
		    pol_reference_pos(pol, (enum pol_fact)f, &line, &col))
			diag_add(d, true, "%s:%u:%u: fact '%s' is not computed "
			    "by portcullis %s yet", cfg->policy, line, col,
			    pol_fact_info((enum pol_fact)f)->name,
			    PACKAGE_VERSION);
	}
	geo = open_geoip(cfg, pol, d);
	if (d->nerrors > 0) {
		geoip_close(geo);
		pol_free(pol);
		config_free(cfg);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->geoip = geo;
	atomic_init(&s->refs, 1);
	s->cfg = cfg;
	s->pol = pol;
	return s;
}

struct snapshot *
snapshot_load(const char *conf_path, struct diag *d)
{
	return load_as(conf_path, false, NULL, d);
}

struct snapshot *
snapshot_load_daemon(const char *conf_path, const char *user,
    struct diag *d)
{
	return load_as(conf_path, true, user, d);
}

int
snapshot_start_with(struct snapshot *s, const struct dns_options *o,
    struct diag *d)
{
	const char *err;

	if ((s->dns = dns_new(o, &err)) == NULL) {
		diag_add(d, true, "resolver: %s", err);
		return -1;
	}
	if ((s->dkim = dkimv_lib_new(s->dns, s->cfg->dns_timeout_ms,
	    s->cfg->dkim_max_signatures)) == NULL) {
		diag_add(d, true, "cannot start the DKIM library");
		return -1;
	}
	s->health = zone_health_new(s->pol, NULL);
	if (pol_references(s->pol, POL_FACT_GREYLIST)) {
		char why[512];

		if ((s->grey = grey_acquire(s->cfg->greylist_store, why,
		    sizeof(why))) == NULL) {
			diag_add(d, true, "%s: greylist_store %s: %s",
			    s->cfg->path != NULL ? s->cfg->path : "config",
			    s->cfg->greylist_store, why);
			return -1;
		}
	}
	return 0;
}

int
snapshot_start_probes(struct snapshot *s)
{
	struct snapshot *prev = snapshot_acquire();
	struct zone_health *h;

	/* a reload keeps what the running generation learnt: a broken
	 * zone stays out of use until a probe finds it healthy */
	h = zone_health_new(s->pol, prev != NULL ? prev->health : NULL);
	snapshot_release(prev);
	zone_health_free(s->health);
	s->health = h;
	return zone_health_start(h, s->dns, s->cfg->dnsbl_probe_ms,
	    s->cfg->dns_timeout_ms);
}

int
snapshot_start(struct snapshot *s, struct diag *d)
{
	struct dns_options o = { 0 };

	o.forwarder = s->cfg->resolver;
	return snapshot_start_with(s, &o, d);
}

int
snapshot_start_reports(struct snapshot *s, struct diag *d)
{
	char why[512];

	if (s->cfg->report_store == NULL || s->reports != NULL)
		return 0;
	if ((s->reports = report_store_acquire(s->cfg->report_store, true,
	    why, sizeof(why))) == NULL) {
		diag_add(d, true, "%s: report_store %s: %s",
		    s->cfg->path != NULL ? s->cfg->path : "config",
		    s->cfg->report_store, why);
		return -1;
	}
	return 0;
}

void
snapshot_publish(struct snapshot *s)
{
	struct snapshot *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = s;
	s->generation = ++generation;
	pthread_mutex_unlock(&current_lock);
	snapshot_release(old);
}

struct snapshot *
snapshot_acquire(void)
{
	struct snapshot *s;

	pthread_mutex_lock(&current_lock);
	s = current;
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&current_lock);
	return s;
}

struct snapshot *
snapshot_ref(struct snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void
snapshot_release(struct snapshot *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	/* the prober uses the resolver: it stops first */
	zone_health_free(s->health);
	geoip_close(s->geoip);
	grey_release(s->grey);
	report_store_release(s->reports);
	if (s->grey_tmpdir != NULL)
		grey_tmp_remove(s->grey_tmpdir);
	free(s->grey_tmpdir);
	dkimv_lib_free(s->dkim);
	dns_free(s->dns);
	pol_free(s->pol);
	config_free(s->cfg);
	free(s);
}

void
snapshot_clear(void)
{
	struct snapshot *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = NULL;
	pthread_mutex_unlock(&current_lock);
	snapshot_release(old);
}
