/*
 * snapshot.h - one immutable, refcounted generation of config + policy +
 * resolver.  SIGHUP builds a new one completely and publishes it with a
 * pointer swap; a message keeps the snapshot it started with.
 * Owns: the current-snapshot pointer and its mutex (held only for the
 * swap and for taking a reference, never across I/O).
 * Errors: snapshot_load() returns NULL and fills the diag list with every
 * error as "FILE:LINE:COL: message".
 */
#ifndef PORTCULLIS_SNAPSHOT_H
#define PORTCULLIS_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "policy.h"

struct dns;
struct dns_options;
struct dkimv_lib;
struct zone_health;
struct geoip;
struct greylist;
struct report_store;

struct snapshot {
	atomic_int refs;
	struct config *cfg;	/* owns */
	struct policy *pol;	/* owns */
	struct dns *dns;	/* owns; NULL until snapshot_start() */
	struct dkimv_lib *dkim;	/* owns; made with dns */
	struct zone_health *health;	/* owns; blocklist zone states */
	struct geoip *geoip;	/* owns; NULL without geoip_db/_asn_db */
	struct greylist *grey;	/* a reference to the process's store;
				 * NULL when no rule reads greylist */
	struct report_store *reports;	/* a reference to the process's
					 * DMARC report store; NULL: none
					 * (report_store unset, or not the
					 * daemon) */
	char *grey_tmpdir;	/* owns: a private store's directory
				 * ("check", "test"), removed at free */
	bool grey_forced;	/* "check --greylist", a case's "greylist"
				 * line: every triplet has grey_state */
	unsigned grey_state;	/* enum greylist_state */
	unsigned generation;
};

/*
 * Reads the config (NULL: defaults) and the policy it names, and checks
 * that the policy uses only facts this build computes.  Warnings go to
 * *d too.  No threads are started (safe before daemonising).
 */
struct snapshot *snapshot_load(const char *conf_path, struct diag *d);
/*
 * The daemon's load (start, reload, "portcullis -n"): as snapshot_load(),
 * and the config file, the policy and its list files must be owned by
 * root or by the user the daemon runs as (user, e.g. from -u; else the
 * config's "user"; else the caller) and writable by neither their group
 * nor other users; an unknown user is an error too.  Each refusal is
 * "FILE: refused: REASON" (the policy: "FILE:1:1: cannot load the
 * policy: REASON"; a list: at the policy line naming it).
 */
struct snapshot *snapshot_load_daemon(const char *conf_path,
    const char *user, struct diag *d);
/* Starts the snapshot's resolver and opens the greylist store (when a
 * rule reads greylist).  0, or -1 with a message in *d. */
int snapshot_start(struct snapshot *, struct diag *d);
/* For "portcullis check" and "portcullis test": the greylist store is a
 * private, empty one (every triplet is new), never the daemon's. */
void snapshot_private_greylist(struct snapshot *);
/* The same with explicit resolver options ("portcullis test": local data,
 * no network). */
int snapshot_start_with(struct snapshot *, const struct dns_options *,
    struct diag *d);

/* The daemon's part: probes the blocklist zones of s now and every
 * dnsbl_probe_interval (zonehealth.h), starting from the states of the
 * current snapshot.  Call after snapshot_start(), before publishing.
 * 0 or -1. */
int snapshot_start_probes(struct snapshot *);

/* The daemon's part: opens the report store of report_store (shared with
 * the running generation when the same) and its writer thread, so the
 * pipeline records DMARC results.  "check" and "test" never record.
 * 0, or -1 with a message in *d; nothing to do without report_store. */
int snapshot_start_reports(struct snapshot *, struct diag *d);

/* Publishes s as current (takes over the caller's reference). */
void snapshot_publish(struct snapshot *s);
/* A new reference to the current snapshot (NULL before the first
 * publish). */
struct snapshot *snapshot_acquire(void);
struct snapshot *snapshot_ref(struct snapshot *);
void snapshot_release(struct snapshot *);
/* Drops the current snapshot at shutdown. */
void snapshot_clear(void);

/* Whether this build computes the fact (facts of later checks are
 * rejected at load time rather than guessed at). */
bool snapshot_fact_supported(enum pol_fact);

#endif
