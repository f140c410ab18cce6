/*
 * session.c - the message pipeline: per-connection and per-message state,
 * the fact provider the policy evaluator asks, staged decisions, and the
 * end-of-message work (tag, Authentication-Results).  See core.h.
 * Owns: struct core_conn (one snapshot reference, the PTR query) and its
 * current struct msg (envelope, kept headers, evaluation state).
 * Limits: CORE_* in core.h.  Errors: internal failures become an on_error
 * verdict and a log line; nothing here can stop the process.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include "addr.h"
#include "attach.h"
#include "authres.h"
#include "core.h"
#include "dkimv.h"
#include "dmarc.h"
#include "dns.h"
#include "dnsbl.h"
#include "geoip.h"
#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "report.h"
#include "snapshot.h"
#include "spf.h"
#include "tag.h"
#include "uribl.h"
#include "uriscan.h"
#include "util.h"

#define PTR_NAMES_MAX	10	/* forward-confirmed names tried */
#define FROM_DOMAINS_MAX 8	/* From domains DMARC evaluates */

struct rcpt {
	char *addr;		/* owns */
	char *domain;		/* owns */
	enum pol_action action;	/* decided at RCPT, or POL_ACT_NONE */
	bool grey_done;		/* the triplet was recorded (once a
				 * message: a second look would be a
				 * retry) */
	enum greylist_state grey;
};

/* A header kept for the policy or the end-of-message edits. */
struct kept_hdr {
	char *name;		/* owns */
	char *value;		/* owns; unfolded */
	char *raw;		/* owns; as received (folds kept) */
	unsigned index;		/* 1-based among headers of that name */
};

struct msg {
	uint64_t start_ms;
	char *mail_from;	/* owns; "" for the null sender */
	char *mail_from_domain;	/* owns */
	char *auth_user;	/* owns, NULL when not authenticated */
	struct rcpt *rcpts;	/* owns */
	size_t nrcpt;
	size_t cur_rcpt;	/* index of the recipient at RCPT stage */
	size_t rcpts_seen;	/* all RCPT commands, also over the max */
	/* recipients still open at EOH/EOM, as fact lists (borrow) */
	const char **open_rcpts, **open_domains;
	size_t nopen;
	struct kept_hdr *hdrs;	/* owns */
	size_t nhdrs;
	size_t hdr_bytes;	/* kept */
	bool hdr_overflow;	/* a header we needed was not kept */
	unsigned n_subject, n_from, n_authres;
	char *from_addr;	/* owns; first mailbox of From */
	char *from_domain;	/* owns */
	bool from_parsed;
	size_t size;		/* header + body bytes */
	enum pol_stage stage;	/* stage being evaluated */
	struct pol_eval eval;
	/* a decision that waits for end of message (quarantine) */
	enum pol_action early_action;
	enum pol_stage early_stage;
	char early_rule[POL_NAME_MAX + 1];
	char early_text[POL_EXPAND_MAX + 1];
	/* the message's outcome, for the log line */
	bool logged;
	enum pol_action final_action;
	enum pol_stage final_stage;
	char final_rule[POL_NAME_MAX + 1];
	unsigned rejected_rcpts;
	enum pol_action rcpt_refusal;	/* the last refusal at RCPT */
	int grey_least;			/* least greylist state seen, -1:
					 * none (for the log line) */
	bool fact_failed;	/* the provider could not compute a fact */
	/* authentication (DESIGN.md section 4): computed when first needed,
	 * by a rule or by the Authentication-Results header */
	struct dkimv *dkim;		/* owns; hashes as the body streams */
	struct dkimv_result *dkim_res;	/* owns; NULL until end of message */
	const char **dkim_pass;		/* owns the array; borrows dkim_res */
	size_t ndkim_pass;
	const char **dkim_temp;		/* same, temperror d= (for DMARC) */
	size_t ndkim_temp;
	bool spf_done;
	struct spf_outcome spf;
	bool dmarc_done;
	struct dmarc_outcome dmarc;
	/* links of the body (uriscan) and their blocklist lookups */
	struct uriscan *uri;		/* owns; NULL: policy has no uribl */
	struct uribl_msg *uribl;	/* owns */
	/* early fetch: the first query of SPF (at MAIL) and of DMARC (at
	 * end of headers) starts before anything waits for it; the checks
	 * then find the answer in the resolver's cache or in flight */
	struct dns_query *prefetch[1 + FROM_DOMAINS_MAX];	/* owns */
	size_t nprefetch;
	/* the whole message, for attachment inspection and "strip": in
	 * memory up to SPOOL_MEM_MAX, then an unlinked temporary file, so
	 * memory stays bounded */
	FILE *spool;			/* owns; NULL: not needed */
	bool spool_failed;
	bool spool_mem;			/* spool is a memfd (small so far) */
	uint64_t spool_len;		/* bytes written to it */
	bool attach_done;
	struct attach_result att;	/* owns */
	const char *att_first;		/* first blocked name, or "" */
	char **link_keys;		/* owns: url.domains, in order found */
	size_t nlink_keys;
	char **from_domains;		/* owns: every From domain */
	size_t nfrom_domains;
	/* facts asked for, for "portcullis check" */
	char **asked_headers;	/* owns */
	size_t nasked_headers;
};

struct core_conn {
	struct snapshot *snap;	/* owns a reference; re-pinned at MAIL */
	char *ip;		/* owns; textual client address */
	struct pol_ip ipbin;
	bool ip_valid;
	char *client_name;	/* owns */
	char *helo;		/* owns */
	char qid[64];
	struct dns_query *ptr_q;	/* owns */
	bool ptr_done;
	struct dnsbl_conn *dnsbl;	/* owns; NULL: no dnsbl zone */
	bool dnsbl_started;
	bool lookups_started;	/* conn_start_lookups() ran */
	bool geo_done;
	char country[GEOIP_COUNTRY_LEN];
	unsigned long asn;
	char ptr_name[DNS_NAME_MAX + 1];
	/* a connect or HELO decision, applied to every message */
	enum pol_action conn_action;
	enum pol_stage conn_stage;
	char conn_rule[POL_NAME_MAX + 1];
	char conn_text[POL_EXPAND_MAX + 1];
	enum pol_stage stage;	/* connection-level stage */
	struct pol_eval conn_eval;
	struct msg *msg;	/* owns; NULL between messages */
	bool asked[POL_FACT_COUNT];	/* facts read, for "check" */
	bool spf_helo_done;
	struct spf_outcome spf_helo;	/* the HELO identity (spf.helo) */
	/* tracing for "portcullis check --trace" (NULL: none) */
	void (*trace)(void *ctx, const struct pol_trace_step *);
	void *trace_ctx;
};

static const struct config *
conn_cfg(const struct core_conn *c)
{
	return c->snap->cfg;
}

void
verdict_clear(struct verdict *v)
{
	size_t i;

	for (i = 0; i < v->nadded; i++) {
		free(v->added[i].name);
		free(v->added[i].value);
	}
	for (i = 0; i < v->nchanged; i++) {
		free(v->changed[i].name);
		free(v->changed[i].value);
	}
	for (i = 0; i < v->nremoved; i++)
		free(v->removed[i].name);
	free(v->added);
	free(v->changed);
	free(v->removed);
	free(v->new_body);
	memset(v, 0, sizeof(*v));
}

static void
edit_push(struct hdr_edit **arr, size_t *n, const char *name,
    const char *value, unsigned index)
{
	*arr = xreallocarray(*arr, *n + 1, sizeof(**arr));
	(*arr)[*n].name = xstrdup(name);
	(*arr)[*n].value = value ? xstrdup(value) : NULL;
	(*arr)[*n].index = index;
	(*n)++;
}

/* ---- facts ---- */

static void conn_lookups_ensure(struct core_conn *);

static void
ptr_start(struct core_conn *c)
{
	char name[DNS_NAME_MAX + 1];

	if (!c->ip_valid || c->snap->dns == NULL ||
	    dns_reverse_name(c->ipbin.family, c->ipbin.addr, name,
	    sizeof(name)) != 0) {
		c->ptr_done = true;
		return;
	}
	c->ptr_q = dns_query_start(c->snap->dns, name, DNS_T_PTR);
}

/*
 * client.ptr: the reverse name, only when it resolves back to the client
 * address (forward-confirmed, as Postfix's reverse_client_hostname does);
 * a temporary DNS failure leaves it empty as well, because a name we could
 * not confirm must not be trusted.
 */
static void
ptr_finish(struct core_conn *c)
{
	uint64_t deadline;
	size_t i, n;
	int type;

	conn_lookups_ensure(c);
	if (c->ptr_done)
		return;
	c->ptr_done = true;
	if (c->ptr_q == NULL)
		return;
	deadline = clock_ms() + conn_cfg(c)->dns_timeout_ms;
	if (dns_query_wait(c->ptr_q, deadline) != DNS_OK)
		return;
	n = dns_query_count(c->ptr_q);
	if (n > PTR_NAMES_MAX)
		n = PTR_NAMES_MAX;
	type = c->ipbin.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	for (i = 0; i < n && c->ptr_name[0] == '\0'; i++) {
		char name[DNS_NAME_MAX + 1];
		const unsigned char *rd;
		struct dns_query *fq;
		size_t len, j;

		rd = dns_query_rdata(c->ptr_q, i, &len);
		if (dns_name_from_wire(rd, len, name, sizeof(name)) != 0 ||
		    name[0] == '\0')
			continue;
		fq = dns_query_start(c->snap->dns, name, type);
		if (dns_query_wait(fq, deadline) == DNS_OK) {
			for (j = 0; j < dns_query_count(fq); j++) {
				const unsigned char *a = dns_query_rdata(fq,
				    j, &len);
				size_t want = c->ipbin.family == AF_INET ?
				    4 : 16;

				if (len == want &&
				    memcmp(a, c->ipbin.addr, want) == 0) {
					snprintf(c->ptr_name,
					    sizeof(c->ptr_name), "%s", name);
					break;
				}
			}
		}
		dns_query_free(fq);
	}
}

static bool
policy_reads_dnsbl(const struct policy *pol)
{
	return pol_references(pol, POL_FACT_DNSBL_LISTED) ||
	    pol_references(pol, POL_FACT_DNSBL_ZONE) ||
	    pol_references(pol, POL_FACT_DNSBL_ZONES) ||
	    pol_references(pol, POL_FACT_DNSBL_REASON);
}

/*
 * Early fetch at connect (DESIGN.md section 2): the reverse name and the
 * blocklist queries start before any rule asks, so they overlap the
 * SMTP dialogue.  Only for facts the policy reads.
 */
static void
conn_start_lookups(struct core_conn *c)
{
	const struct policy *pol = c->snap->pol;

	c->lookups_started = true;
	if (pol_references(pol, POL_FACT_CLIENT_PTR))
		ptr_start(c);
	else
		c->ptr_done = true;
	c->dnsbl_started = true;
	if (c->ip_valid && policy_reads_dnsbl(pol))
		c->dnsbl = dnsbl_start(c->snap->dns, pol, c->snap->health,
		    &c->ipbin, pol_references(pol, POL_FACT_DNSBL_REASON));
}

/* A new snapshot (reload) has its own resolver and zones: the
 * connection's lookups are made again with it. */
static void
conn_restart_lookups(struct core_conn *c)
{
	dns_query_free(c->ptr_q);
	c->ptr_q = NULL;
	c->ptr_done = false;
	c->ptr_name[0] = '\0';
	dnsbl_free(c->dnsbl);
	c->dnsbl = NULL;
	c->geo_done = false;
	conn_start_lookups(c);
}

/* A rule of the connect stage asks before the lookups were started. */
static void
conn_lookups_ensure(struct core_conn *c)
{
	if (!c->lookups_started)
		conn_start_lookups(c);
}

static const struct dnsbl_result *
conn_dnsbl(struct core_conn *c)
{
	conn_lookups_ensure(c);
	return dnsbl_result(c->dnsbl, clock_ms() +
	    conn_cfg(c)->dns_timeout_ms);
}

/* Starts a TXT query whose answer a check will need soon. */
static void
msg_prefetch(struct core_conn *c, struct msg *m, const char *prefix,
    const char *domain)
{
	char name[DNS_NAME_MAX + 2];
	int n;

	if (c->snap->dns == NULL || domain == NULL || domain[0] == '\0' ||
	    m->nprefetch >= sizeof(m->prefetch) / sizeof(m->prefetch[0]))
		return;
	n = snprintf(name, sizeof(name), "%s%s", prefix, domain);
	if (n < 0 || (size_t)n > DNS_NAME_MAX)
		return;
	m->prefetch[m->nprefetch++] = dns_query_start(c->snap->dns, name,
	    DNS_T_TXT);
}

static int spf_compute(struct core_conn *, struct msg *);

/* ---- attachments ---- */

static bool
policy_reads_attachments(const struct policy *pol)
{
	/* "attachments block" also serves the strip action */
	return pol_attachment_exts(pol, NULL) > 0 ||
	    pol_references(pol, POL_FACT_ATTACHMENT_BLOCKED) ||
	    pol_references(pol, POL_FACT_ATTACHMENT_NAME) ||
	    pol_references(pol, POL_FACT_ATTACHMENT_NAMES) ||
	    pol_references(pol, POL_FACT_ATTACHMENT_ENCRYPTED) ||
	    pol_references(pol, POL_FACT_ATTACHMENT_LIMITS);
}

/* The spool is kept in memory (a memfd) up to this many bytes, then moved
 * to a temporary file: most messages never touch the file system, and
 * large ones do not pin memory. */
#define SPOOL_MEM_MAX	(512u * 1024)

/* An unlinked temporary file under $TMPDIR or /tmp; -1 on failure. */
static int
spool_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	path = xasprintf("%s/portcullis-msg-XXXXXX", dir != NULL &&
	    dir[0] == '/' ? dir : "/tmp");
	if ((fd = mkstemp(path)) >= 0)
		unlink(path);
	free(path);
	return fd;
}

/* An anonymous spool: in memory when the system has memfd_create(). */
static FILE *
spool_open(struct msg *m)
{
	FILE *f = NULL;
	int fd;

	m->spool_mem = true;
	if ((fd = memfd_create("portcullis-msg", MFD_CLOEXEC)) < 0) {
		m->spool_mem = false;
		fd = spool_tmpfile();
	}
	if (fd >= 0 && (f = fdopen(fd, "w+")) == NULL)
		close(fd);
	return f;
}

/* Moves an in-memory spool past SPOOL_MEM_MAX to a temporary file (a copy
 * inside the kernel).  -1 on failure, the spool unchanged. */
static int
spool_spill(struct msg *m)
{
	off_t off = 0;
	FILE *f;
	int fd;

	if (fflush(m->spool) != 0 || (fd = spool_tmpfile()) < 0)
		return -1;
	while ((uint64_t)off < m->spool_len) {
		ssize_t k = sendfile(fd, fileno(m->spool), &off,
		    m->spool_len - (uint64_t)off);

		if (k <= 0) {
			close(fd);
			return -1;
		}
	}
	if ((f = fdopen(fd, "w+")) == NULL) {
		close(fd);
		return -1;
	}
	fclose(m->spool);
	m->spool = f;
	m->spool_mem = false;
	return 0;
}

static void
spool_write(struct msg *m, const void *p, size_t n)
{
	if (m->spool == NULL || m->spool_failed)
		return;
	if (m->spool_mem && m->spool_len + n > SPOOL_MEM_MAX &&
	    spool_spill(m) != 0) {
		m->spool_failed = true;
		return;
	}
	if (n > 0 && fwrite(p, 1, n, m->spool) != n)
		m->spool_failed = true;
	m->spool_len += n;
}

/* A header field as received, folds with CRLF. */
static void
spool_header(struct msg *m, const char *name, const char *value)
{
	const char *p;

	if (m->spool == NULL)
		return;
	spool_write(m, name, strlen(name));
	spool_write(m, ": ", 2);
	/* in spans between bare LFs, not a byte at a time */
	for (p = value; *p != '\0'; ) {
		const char *lf = strchr(p, '\n');

		if (lf == NULL) {
			spool_write(m, p, strlen(p));
			break;
		}
		spool_write(m, p, (size_t)(lf - p));
		if (lf == value || lf[-1] != '\r')
			spool_write(m, "\r", 1);
		spool_write(m, "\n", 1);
		p = lf + 1;
	}
	spool_write(m, "\r\n", 2);
}

static bool
attach_blocked_cb(void *ctx, const char *name)
{
	const char *base = strrchr(name, '/');

	/* a member's type is that of its own name, not its archive's */
	return pol_attachment_blocked(ctx, base != NULL ? base + 1 : name);
}

/* The attachment limits of the configuration (attachment_* keys). */
static void
attach_limits_of(const struct core_conn *c, struct attach_limits *l)
{
	const struct config *cfg = conn_cfg(c);

	l->mime_depth = cfg->attachment_mime_depth;
	l->mime_parts = cfg->attachment_parts;
	l->archive_depth = cfg->attachment_archive_depth;
	l->archive_entries = cfg->attachment_archive_entries;
	l->archive_bytes = cfg->attachment_archive_bytes;
}

static int
attach_compute(struct core_conn *c, struct msg *m)
{
	struct attach_limits lim;

	if (m->attach_done)
		return 0;
	if (m->spool == NULL || m->spool_failed || fflush(m->spool) != 0) {
		log_err("%s: the message could not be kept for attachment "
		    "inspection", c->qid[0] ? c->qid : "-");
		return -1;
	}
	attach_limits_of(c, &lim);
	if (attach_scan(fileno(m->spool), &lim, attach_blocked_cb,
	    c->snap->pol, &m->att) != 0) {
		log_err("%s: attachment inspection failed",
		    c->qid[0] ? c->qid : "-");
		return -1;
	}
	m->att_first = m->att.nblocked > 0 ? m->att.blocked[0] : "";
	if (m->att.limits)
		log_info("%s: attachment limit: %s", c->qid[0] ? c->qid : "-",
		    m->att.limit_what);
	m->attach_done = true;
	return 0;
}

/*
 * "strip": the body without the blocked attachments, each replaced by a
 * notice; the top-level Content-Type and Content-Transfer-Encoding change
 * when the message itself was the blocked part.  -1 when it cannot be
 * done safely (the caller tempfails).
 */
static int
strip_body(struct core_conn *c, struct msg *m, struct verdict *v)
{
	struct attach_stripped st;
	struct attach_limits lim;

	memset(&st, 0, sizeof(st));
	attach_limits_of(c, &lim);
	if (m->spool == NULL || m->spool_failed || fflush(m->spool) != 0 ||
	    attach_strip(fileno(m->spool), &lim, attach_blocked_cb,
	    c->snap->pol, &st) != 0) {
		log_err("%s: strip failed; tempfail", c->qid[0] ? c->qid :
		    "-");
		attach_stripped_free(&st);
		return -1;
	}
	if (st.removed > 0) {
		v->new_body = st.body;
		v->new_body_len = st.len;
		st.body = NULL;
		if (st.content_type != NULL)
			edit_push(&v->changed, &v->nchanged, "Content-Type",
			    st.content_type, 1);
		if (st.cte != NULL)
			edit_push(&v->changed, &v->nchanged,
			    "Content-Transfer-Encoding", st.cte, 1);
		log_info("%s: strip: %u attachment%s removed",
		    c->qid[0] ? c->qid : "-", st.removed,
		    st.removed == 1 ? "" : "s");
	}
	attach_stripped_free(&st);
	return 0;
}

/* ---- greylisting ---- */

static const char *const grey_names[] = {
	[GREY_NEW] = "new", [GREY_EARLY] = "early",
	[GREY_PASSED] = "passed", [GREY_ALLOWED] = "allowed"
};

/* One recipient's triplet, recorded once a message. */
static int
grey_rcpt(struct core_conn *c, struct msg *m, struct rcpt *r)
{
	const struct pol_greylist *pg = pol_greylist(c->snap->pol);
	struct greylist_params gp;
	const char *spf_domain = NULL;

	if (r->grey_done)
		return 0;
	if (c->snap->grey_forced) {
		r->grey = (enum greylist_state)c->snap->grey_state;
		r->grey_done = true;
		return 0;
	}
	if (c->snap->grey == NULL || !c->ip_valid) {
		/* no client address (local submission): nothing to delay */
		r->grey = GREY_ALLOWED;
		r->grey_done = true;
		return 0;
	}
	/* a sending pool retries from other hosts: when SPF vouches for
	 * the sender's domain, the domain is the sender's identity */
	if (m->mail_from[0] != '\0') {
		if (spf_compute(c, m) != 0)
			return -1;
		if (m->spf.result == SPF_R_PASS)
			spf_domain = m->mail_from_domain;
	}
	gp.delay = pg->delay;
	gp.window = pg->window;
	gp.expire = pg->expire;
	gp.netmask4 = pg->netmask4;
	gp.netmask6 = pg->netmask6;
	gp.autoallow = pg->autoallow;
	if (greylist_check(c->snap->grey, &gp, c->ip, spf_domain,
	    m->mail_from, r->addr, (uint64_t)time(NULL), &r->grey) != 0) {
		if (conn_cfg(c)->greylist_tempfail)
			return -1;
		/* greylist_on_error = pass: a store outage must not hold
		 * back all mail; the message is not greylisted */
		log_warn("%s: greylist store failed: %s not greylisted",
		    c->qid[0] ? c->qid : "-", r->addr);
		r->grey = GREY_PASSED;
	}
	r->grey_done = true;
	if (m->grey_least < 0 || (int)r->grey < m->grey_least)
		m->grey_least = (int)r->grey;
	return 0;
}

/* At RCPT the recipient's state; later the least advanced state of the
 * open recipients (one new triplet keeps the message greylisted). */
static int
grey_compute(struct core_conn *c, struct msg *m, enum pol_stage stage,
    const char **out)
{
	enum greylist_state least = GREY_ALLOWED;
	size_t i;

	if (stage == POL_STAGE_RCPT) {
		if (grey_rcpt(c, m, &m->rcpts[m->cur_rcpt]) != 0)
			return -1;
		*out = grey_names[m->rcpts[m->cur_rcpt].grey];
		return 0;
	}
	for (i = 0; i < m->nrcpt; i++) {
		if (m->rcpts[i].action != POL_ACT_NONE)
			continue;
		if (grey_rcpt(c, m, &m->rcpts[i]) != 0)
			return -1;
		if (m->rcpts[i].grey < least)
			least = m->rcpts[i].grey;
	}
	*out = grey_names[least];
	return 0;
}

static bool
policy_reads_uribl(const struct policy *pol)
{
	return pol_references(pol, POL_FACT_URIBL_LISTED) ||
	    pol_references(pol, POL_FACT_URIBL_DOMAINS);
}

/* uriscan found a link's key: its lookups start now. */
static void
uri_key_found(void *ctx, const char *key, bool is_ip)
{
	struct msg *m = ctx;

	m->link_keys = xreallocarray(m->link_keys, m->nlink_keys + 2,
	    sizeof(char *));
	m->link_keys[m->nlink_keys++] = xstrdup(key);
	m->link_keys[m->nlink_keys] = NULL;
	uribl_key(m->uribl, key, is_ip);
}

static void
uri_host_found(void *ctx, const char *host, const char *key)
{
	struct msg *m = ctx;

	uribl_host(m->uribl, host, key);
}

/* The links' lookups start as the body streams; collected here. */
static const struct uribl_result *
msg_uribl(struct core_conn *c, struct msg *m)
{
	uriscan_end(m->uri);
	return uribl_result(m->uribl, clock_ms() +
	    conn_cfg(c)->dns_timeout_ms);
}

static bool
policy_uribl_weighted(const struct policy *pol)
{
	size_t i;

	for (i = 0; i < pol_uribl_count(pol); i++)
		if (pol_uribl_get(pol, i)->weight != 0)
			return true;
	return false;
}

static bool
msg_authenticated(const struct msg *m)
{
	return m->auth_user != NULL && m->auth_user[0] != '\0';
}

static const struct kept_hdr *
hdr_find(const struct msg *m, const char *name, size_t *count)
{
	const struct kept_hdr *first = NULL;
	size_t i;

	*count = 0;
	for (i = 0; i < m->nhdrs; i++)
		if (str_ieq(m->hdrs[i].name, name)) {
			if (first == NULL)
				first = &m->hdrs[i];
			(*count)++;
		}
	return first;
}

static void
msg_parse_from(struct msg *m)
{
	const struct kept_hdr *h;
	size_t n;

	if (m->from_parsed)
		return;
	m->from_parsed = true;
	h = hdr_find(m, "From", &n);
	if (h != NULL)
		addr_header_from(h->value, strlen(h->value), &m->from_addr,
		    &m->from_domain);
}

static void
note_asked(struct core_conn *c, struct msg *m, enum pol_fact f,
    const char *hname)
{
	size_t i;

	c->asked[f] = true;
	if (m == NULL)
		return;
	if (hname == NULL)
		return;
	for (i = 0; i < m->nasked_headers; i++)
		if (str_ieq(m->asked_headers[i], hname))
			return;
	m->asked_headers = xreallocarray(m->asked_headers,
	    m->nasked_headers + 1, sizeof(char *));
	m->asked_headers[m->nasked_headers++] = xstrdup(hname);
}

static void
val_str(struct pol_value *out, const char *s)
{
	out->type = POL_V_STR;
	out->s = s != NULL ? s : "";
}

static void
val_bool(struct pol_value *out, bool b)
{
	out->type = POL_V_BOOL;
	out->b = b;
}

/* ---- authentication ---- */

static uint64_t
check_deadline(const struct core_conn *c)
{
	return clock_ms() + conn_cfg(c)->dns_timeout_ms;
}

/* SPF for the MAIL FROM identity (the HELO one for a null sender). */
static int
spf_compute(struct core_conn *c, struct msg *m)
{
	if (m->spf_done)
		return 0;
	if (!c->ip_valid) {
		/* no client address (local submission): nothing to check */
		memset(&m->spf, 0, sizeof(m->spf));
		m->spf.result = SPF_R_NONE;
	} else if (spf_check(c->snap->dns, check_deadline(c), c->ip,
	    c->helo != NULL ? c->helo : "", m->mail_from, &m->spf) != 0)
		return -1;
	m->spf_done = true;
	metrics_spf(false, m->spf.result);
	return 0;
}

static int
spf_helo_compute(struct core_conn *c)
{
	if (c->spf_helo_done)
		return 0;
	if (!c->ip_valid || c->helo == NULL || c->helo[0] == '\0') {
		memset(&c->spf_helo, 0, sizeof(c->spf_helo));
		c->spf_helo.result = SPF_R_NONE;
	} else if (spf_check_helo(c->snap->dns, check_deadline(c), c->ip,
	    c->helo, &c->spf_helo) != 0)
		return -1;
	c->spf_helo_done = true;
	metrics_spf(true, c->spf_helo.result);
	return 0;
}

/* DKIM: every signature's result, once, at end of message. */
static int
dkim_compute(struct msg *m)
{
	size_t i;

	if (m->dkim_res != NULL)
		return 0;
	if (m->dkim == NULL)
		return -1;
	m->dkim_res = xcalloc(1, sizeof(*m->dkim_res));
	if (dkimv_eom(m->dkim, m->dkim_res) != 0)
		return -1;
	metrics_dkim(m->dkim_res->best);
	m->dkim_pass = xcalloc(m->dkim_res->nsigs + 1, sizeof(char *));
	m->dkim_temp = xcalloc(m->dkim_res->nsigs + 1, sizeof(char *));
	for (i = 0; i < m->dkim_res->nsigs; i++)
		if (strcmp(m->dkim_res->sigs[i].result, "pass") == 0)
			m->dkim_pass[m->ndkim_pass++] =
			    m->dkim_res->sigs[i].domain;
		else if (strcmp(m->dkim_res->sigs[i].result, "temperror") == 0)
			m->dkim_temp[m->ndkim_temp++] =
			    m->dkim_res->sigs[i].domain;
	return 0;
}

/* Every From domain of the message, for DMARC. */
static void
msg_from_domains(struct msg *m)
{
	size_t i;

	if (m->from_domains != NULL)
		return;
	m->from_domains = xcalloc(1, sizeof(char *));
	for (i = 0; i < m->nhdrs; i++)
		if (str_ieq(m->hdrs[i].name, "From"))
			addr_header_domains(m->hdrs[i].value,
			    strlen(m->hdrs[i].value), &m->from_domains,
			    &m->nfrom_domains, FROM_DOMAINS_MAX + 1);
}

static int
dmarc_compute(struct core_conn *c, struct msg *m)
{
	struct dmarc_input in;

	if (m->dmarc_done)
		return 0;
	if (spf_compute(c, m) != 0 || dkim_compute(m) != 0)
		return -1;
	msg_from_domains(m);
	memset(&in, 0, sizeof(in));
	in.from_domains = (const char *const *)m->from_domains;
	in.nfrom = m->nfrom_domains;
	in.spf_result = spf_result_name(m->spf.result);
	/* RFC 7208 2.4: a null sender is checked as postmaster@HELO */
	in.spf_domain = m->mail_from[0] != '\0' ? m->mail_from_domain :
	    c->helo;
	in.dkim_pass_domains = m->dkim_pass;
	in.ndkim = m->ndkim_pass;
	in.dkim_temp_domains = m->dkim_temp;
	in.ndkim_temp = m->ndkim_temp;
	if (dmarc_evaluate(c->snap->dns, check_deadline(c), &in,
	    &m->dmarc) != 0)
		return -1;
	m->dmarc_done = true;
	metrics_dmarc(m->dmarc.result);
	return 0;
}

/* The pol_facts provider.  ctx is the connection. */
static int
fact_get(void *ctx, enum pol_fact f, const char *hname, struct pol_value *out)
{
	struct core_conn *c = ctx;
	struct msg *m = c->msg;
	enum pol_stage stage = m != NULL ? m->stage : c->stage;
	const struct pol_fact_info *info = pol_fact_info(f);

	memset(out, 0, sizeof(*out));
	out->type = POL_V_UNKNOWN;
	if (!snapshot_fact_supported(f))
		return -1;	/* snapshot_load() refuses such policies */
	note_asked(c, m, f, f == POL_FACT_HEADER ? hname : NULL);
	switch (f) {
	case POL_FACT_TRUSTED:
		val_bool(out, c->ip_valid &&
		    pol_ip_is_trusted(c->snap->pol, &c->ipbin));
		return 0;
	case POL_FACT_EXTERNAL:
		if (c->ip_valid && pol_ip_is_trusted(c->snap->pol, &c->ipbin))
			val_bool(out, false);
		else if (stage >= POL_STAGE_MAIL && m != NULL)
			val_bool(out, !msg_authenticated(m));
		return 0;
	default:
		break;
	}
	if (stage < info->known_at)
		return 0;
	switch (f) {
	case POL_FACT_CLIENT_IP:
		if (!c->ip_valid)
			val_str(out, "");
		else {
			out->type = POL_V_IP;
			out->s = c->ip;
			out->ip = c->ipbin;
		}
		return 0;
	case POL_FACT_CLIENT_PTR:
		ptr_finish(c);
		val_str(out, c->ptr_name);
		return 0;
	case POL_FACT_HELO:
		val_str(out, c->helo);
		return 0;
	case POL_FACT_SPF_HELO:
		if (spf_helo_compute(c) != 0)
			return -1;
		val_str(out, spf_result_name(c->spf_helo.result));
		return 0;
	case POL_FACT_CLIENT_COUNTRY:
	case POL_FACT_CLIENT_ASN:
		if (!c->geo_done) {
			/* -1: the database is corrupt, an internal error */
			if (c->ip_valid && geoip_lookup(c->snap->geoip, c->ip,
			    c->country, &c->asn) != 0)
				return -1;
			c->geo_done = true;
		}
		if (f == POL_FACT_CLIENT_COUNTRY)
			val_str(out, c->country);
		else {
			out->type = POL_V_NUM;
			out->num = (double)c->asn;
		}
		return 0;
	case POL_FACT_DNSBL_LISTED:
		val_bool(out, conn_dnsbl(c)->listed);
		return 0;
	case POL_FACT_DNSBL_ZONE:
		val_str(out, conn_dnsbl(c)->zones[0]);
		return 0;
	case POL_FACT_DNSBL_ZONES:
		out->type = POL_V_LIST;
		out->list = conn_dnsbl(c)->zones;
		out->nlist = conn_dnsbl(c)->nzones;
		return 0;
	case POL_FACT_DNSBL_REASON:
		val_str(out, conn_dnsbl(c)->reason);
		return 0;
	default:
		break;
	}
	if (m == NULL)
		return 0;	/* message facts outside a message: unknown */
	switch (f) {
	case POL_FACT_AUTHENTICATED:
		val_bool(out, msg_authenticated(m));
		return 0;
	case POL_FACT_MAIL_FROM:
		val_str(out, m->mail_from);
		return 0;
	case POL_FACT_MAIL_FROM_DOMAIN:
		val_str(out, m->mail_from_domain);
		return 0;
	case POL_FACT_RCPT:
	case POL_FACT_RCPT_DOMAIN:
		if (stage == POL_STAGE_RCPT) {
			const struct rcpt *r = &m->rcpts[m->cur_rcpt];

			val_str(out, f == POL_FACT_RCPT ? r->addr : r->domain);
		} else {
			out->type = POL_V_LIST;
			out->list = f == POL_FACT_RCPT ? m->open_rcpts :
			    m->open_domains;
			out->nlist = m->nopen;
		}
		return 0;
	case POL_FACT_FROM:
		msg_parse_from(m);
		val_str(out, m->from_addr);
		return 0;
	case POL_FACT_FROM_DOMAIN:
		msg_parse_from(m);
		val_str(out, m->from_domain);
		return 0;
	case POL_FACT_FROM_INTERNAL:
		msg_parse_from(m);
		val_bool(out, m->from_domain != NULL &&
		    pol_domain_is_internal(c->snap->pol, m->from_domain));
		return 0;
	case POL_FACT_SUBJECT: {
		size_t n;
		const struct kept_hdr *h = hdr_find(m, "Subject", &n);

		val_str(out, h != NULL ? h->value : "");
		return 0;
	}
	case POL_FACT_HEADER: {
		size_t n;
		const struct kept_hdr *h = hdr_find(m, hname, &n);

		val_str(out, h != NULL ? h->value : "");
		return 0;
	}
	case POL_FACT_SIZE:
		out->type = POL_V_NUM;
		out->num = (double)m->size;
		return 0;
	case POL_FACT_SPF:
	case POL_FACT_SPF_EXPLANATION:
		if (spf_compute(c, m) != 0)
			return -1;
		val_str(out, f == POL_FACT_SPF ? spf_result_name(m->spf.result)
		    : m->spf.explanation);
		return 0;
	case POL_FACT_DKIM:
		if (dkim_compute(m) != 0)
			return -1;
		val_str(out, m->dkim_res->best);
		return 0;
	case POL_FACT_DKIM_DOMAINS:
		if (dkim_compute(m) != 0)
			return -1;
		out->type = POL_V_LIST;
		out->list = m->dkim_pass;
		out->nlist = m->ndkim_pass;
		return 0;
	case POL_FACT_DMARC:
	case POL_FACT_DMARC_POLICY:
		if (dmarc_compute(c, m) != 0)
			return -1;
		val_str(out, f == POL_FACT_DMARC ?
		    dmarc_result_name(m->dmarc.result) :
		    dmarc_policy_name(m->dmarc.policy));
		return 0;
	case POL_FACT_URIBL_LISTED:
		val_bool(out, msg_uribl(c, m)->listed);
		return 0;
	case POL_FACT_URIBL_DOMAINS:
		out->type = POL_V_LIST;
		out->list = msg_uribl(c, m)->domains;
		out->nlist = msg_uribl(c, m)->ndomains;
		return 0;
	case POL_FACT_ATTACHMENT_BLOCKED:
	case POL_FACT_ATTACHMENT_NAME:
	case POL_FACT_ATTACHMENT_NAMES:
	case POL_FACT_ATTACHMENT_ENCRYPTED:
	case POL_FACT_ATTACHMENT_LIMITS:
		if (attach_compute(c, m) != 0)
			return -1;
		if (f == POL_FACT_ATTACHMENT_BLOCKED)
			val_bool(out, m->att.nblocked > 0);
		else if (f == POL_FACT_ATTACHMENT_NAME)
			val_str(out, m->att_first);
		else if (f == POL_FACT_ATTACHMENT_ENCRYPTED)
			val_bool(out, m->att.encrypted);
		else if (f == POL_FACT_ATTACHMENT_LIMITS)
			val_bool(out, m->att.limits);
		else {
			out->type = POL_V_LIST;
			out->list = (const char **)m->att.names;
			out->nlist = m->att.nnames;
		}
		return 0;
	case POL_FACT_GREYLIST: {
		const char *st;

		if (grey_compute(c, m, stage, &st) != 0)
			return -1;
		val_str(out, st);
		return 0;
	}
	case POL_FACT_URL_DOMAINS:
		uriscan_end(m->uri);
		out->type = POL_V_LIST;
		out->list = (const char **)m->link_keys;
		out->nlist = m->nlink_keys;
		return 0;
	case POL_FACT_SCORE:
		/* the part of the score that comes from checks: the
		 * weights of the zones that list the client, and of those
		 * that list a link (known at end of message) */
		if (stage < POL_STAGE_EOM && m->uribl != NULL &&
		    policy_uribl_weighted(c->snap->pol))
			return 0;	/* unknown until then */
		out->type = POL_V_NUM;
		out->num = conn_dnsbl(c)->weight;
		if (m->uribl != NULL)
			out->num += msg_uribl(c, m)->weight;
		return 0;
	default:
		return -1;
	}
}

/* ---- decisions ---- */

/* Copies text without control characters (policy text, expanded). */
static void
copy_clean(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 1 < size; src++)
		if ((unsigned char)*src >= 0x20 && *src != 0x7f)
			dst[o++] = *src;
	dst[o] = '\0';
}

/* Sets the SMTP reply of a refusal from the rule's expanded text. */
static void
verdict_reply(struct verdict *v, enum pol_action a, const char *text)
{
	struct pol_reply r;

	pol_reply_make(a, text, &r);
	v->code = (int)r.code;
	snprintf(v->dsn, sizeof(v->dsn), "%s", r.dsn);
	if (r.text == NULL || r.text[0] == '\0')
		r.text = a == POL_ACT_REJECT ? "message rejected by policy" :
		    "temporarily deferred by policy, please try again later";
	copy_clean(v->text, sizeof(v->text), r.text);
}

static void
verdict_on_error(struct core_conn *c, struct verdict *v, enum pol_stage st,
    const char *why)
{
	verdict_clear(v);
	v->decided = true;
	v->on_error = true;
	v->stage = st;
	snprintf(v->rule, sizeof(v->rule), "on_error");
	log_warn("%s: internal failure at %s: %s; applying on_error",
	    c->qid[0] ? c->qid : "-", pol_stage_name(st), why);
	if (conn_cfg(c)->on_error == ON_ERROR_ACCEPT) {
		v->action = POL_ACT_ACCEPT;
		return;
	}
	v->action = POL_ACT_TEMPFAIL;
	v->code = 451;
	snprintf(v->dsn, sizeof(v->dsn), "4.3.0");
	snprintf(v->text, sizeof(v->text),
	    "temporary failure in the mail filter, please try again later");
}

static struct pol_facts
conn_facts(struct core_conn *c)
{
	struct pol_facts pf = { fact_get, c };

	return pf;
}

/* Expands the raw rule text of a decision into out. */
/*
 * Evaluates stage st with eval state e.  Returns 1 when decided (action,
 * rule and expanded text filled), 0 when undecided, -1 on failure.
 */
static int
evaluate(struct core_conn *c, struct pol_eval *e, enum pol_stage st,
    enum pol_action *action, char *rule, char *text)
{
	struct pol_facts pf = conn_facts(c);

	if (c->msg != NULL)
		c->msg->stage = st;
	else
		c->stage = st;
	e->trace = c->trace;
	e->trace_ctx = c->trace_ctx;
	if (pol_evaluate(c->snap->pol, st, &pf, e) != 0)
		return -1;
	if (e->state != POL_TRUE)
		return 0;
	*action = e->action;
	snprintf(rule, POL_NAME_MAX + 1, "%s", e->rule ? e->rule : "?");
	/* %{score} is the evaluation's sum (score rules and zone weights),
	 * not the provider's part alone */
	text[0] = '\0';
	if (e->text != NULL && pol_expand_eval(e->text, &pf, e, text,
	    POL_EXPAND_MAX + 1) != 0)
		return -1;
	return 1;
}

static void
verdict_decide(struct verdict *v, enum pol_action a, enum pol_stage st,
    const char *rule, const char *text)
{
	v->decided = true;
	v->action = a;
	v->stage = st;
	snprintf(v->rule, sizeof(v->rule), "%s", rule);
	if (a == POL_ACT_REJECT || a == POL_ACT_TEMPFAIL)
		verdict_reply(v, a, text);
	else if (a == POL_ACT_QUARANTINE)
		copy_clean(v->quarantine, sizeof(v->quarantine),
		    text != NULL && text[0] != '\0' ? text : rule);
}

/* ---- message lifetime ---- */

static const char *
esc(char *buf, size_t size, const char *s)
{
	if (s == NULL)
		return "";
	str_escape_log(buf, size, s, strlen(s));
	return buf;
}

static void
msg_log(struct core_conn *c, struct msg *m)
{
	char ip[64], from[200], rc[400], rule[100], mon[400];
	struct buf rl, ml;
	size_t i;

	if (m->logged)
		return;
	m->logged = true;
	metrics_message(m->final_action, m->final_rule);
	buf_init(&rl, 300);
	for (i = 0; i < m->nrcpt; i++) {
		if (buf_appendf(&rl, "%s<%s>", i ? "," : "",
		    m->rcpts[i].addr) != 0) {
			buf_append(&rl, ",...", 4);
			break;
		}
	}
	/* monitor rules: what they would have done, never done */
	buf_init(&ml, 300);
	for (i = 0; i < m->eval.nmonitored; i++)
		if (buf_appendf(&ml, "%s%s:%s@%s", i ? "," : "",
		    m->eval.monitored[i].rule,
		    pol_action_name(m->eval.monitored[i].action),
		    pol_stage_name(m->eval.monitored[i].stage)) != 0)
			break;
	log_info("%s: client=%s mail_from=<%s> rcpts=%s nrcpt=%zu "
	    "action=%s rule=%s stage=%s score=%g monitored=%s%s%s%s%s%s%s "
	    "ms=%llu",
	    c->qid[0] ? c->qid : "-", esc(ip, sizeof(ip), c->ip),
	    esc(from, sizeof(from), m->mail_from),
	    esc(rc, sizeof(rc), rl.p ? rl.p : ""), m->rcpts_seen,
	    pol_action_name(m->final_action),
	    esc(rule, sizeof(rule), m->final_rule[0] ? m->final_rule : "-"),
	    pol_stage_name(m->final_stage),
	    m->eval.score_known ? m->eval.score : 0,
	    esc(mon, sizeof(mon), ml.p ? ml.p : "-"),
	    dnsbl_summary(c->dnsbl)[0] ? " dnsbl=" : "",
	    dnsbl_summary(c->dnsbl),
	    uribl_summary(m->uribl)[0] ? " uribl=" : "",
	    uribl_summary(m->uribl),
	    m->grey_least >= 0 ? " greylist=" : "",
	    m->grey_least >= 0 ? grey_names[m->grey_least] : "",
	    (unsigned long long)(clock_ms() - m->start_ms));
	buf_free(&rl);
	buf_free(&ml);
}

static void
msg_free(struct msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->mail_from);
	free(m->mail_from_domain);
	free(m->auth_user);
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].domain);
	}
	free(m->rcpts);
	free(m->open_rcpts);
	free(m->open_domains);
	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
		free(m->hdrs[i].raw);
	}
	free(m->hdrs);
	free(m->from_addr);
	free(m->from_domain);
	dkimv_free(m->dkim);
	uriscan_free(m->uri);
	uribl_free(m->uribl);
	if (m->spool != NULL)
		fclose(m->spool);
	attach_result_free(&m->att);
	for (i = 0; i < m->nprefetch; i++)
		dns_query_free(m->prefetch[i]);
	for (i = 0; i < m->nlink_keys; i++)
		free(m->link_keys[i]);
	free(m->link_keys);
	free(m->dkim_res);
	free(m->dkim_pass);
	free(m->dkim_temp);
	for (i = 0; i < m->nfrom_domains; i++)
		free(m->from_domains[i]);
	free(m->from_domains);
	for (i = 0; i < m->nasked_headers; i++)
		free(m->asked_headers[i]);
	free(m->asked_headers);
	free(m);
}

/* Ends the current message: one log line, state freed. */
static void
msg_end(struct core_conn *c)
{
	struct msg *m = c->msg;

	if (m == NULL)
		return;
	/* every recipient refused at RCPT: the message was refused, and
	 * its log line says how (reject, or tempfail for greylisting) */
	if (m->final_action == POL_ACT_NONE && m->nrcpt == 0 &&
	    m->rejected_rcpts > 0) {
		m->final_action = m->rcpt_refusal;
		m->final_stage = POL_STAGE_RCPT;
	}
	if (m->final_action != POL_ACT_NONE || m->nrcpt > 0)
		msg_log(c, m);
	msg_free(m);
	c->msg = NULL;
}

static void
msg_final(struct msg *m, const struct verdict *v)
{
	m->final_action = v->action;
	m->final_stage = v->stage;
	snprintf(m->final_rule, sizeof(m->final_rule), "%s", v->rule);
}

/* ---- events ---- */

/*
 * Evaluates a connection-level stage (connect, HELO).  A decision is kept
 * for every message of the connection; only an accept answers at once:
 * refusals are given at MAIL, where every MTA relays our reply text.
 */
static void
conn_evaluate(struct core_conn *c, enum pol_stage st, struct verdict *v)
{
	int rc = evaluate(c, &c->conn_eval, st, &c->conn_action,
	    c->conn_rule, c->conn_text);

	if (rc < 0)
		verdict_on_error(c, v, st, "policy evaluation");
	else if (rc > 0) {
		c->conn_stage = st;
		if (c->conn_action == POL_ACT_ACCEPT)
			verdict_decide(v, POL_ACT_ACCEPT, st, c->conn_rule,
			    NULL);
	}
}

struct core_conn *
core_connect(struct snapshot *s, const struct core_client *cl,
    struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_CONNECT);
	struct core_conn *c = xcalloc(1, sizeof(*c));

	memset(v, 0, sizeof(*v));
	c->snap = s;
	c->ip = xstrdup(cl->ip != NULL ? cl->ip : "");
	c->client_name = xstrdup(cl->name != NULL ? cl->name : "");
	c->ip_valid = cl->ip != NULL && pol_ip_parse(cl->ip, &c->ipbin) == 0;
	c->trace = cl->trace;
	c->trace_ctx = cl->trace_ctx;
	/* IPv4-mapped IPv6 clients are IPv4 clients */
	if (c->ip_valid && c->ipbin.family == AF_INET6) {
		static const unsigned char mapped[12] =
		    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(c->ipbin.addr, mapped, 12) == 0) {
			char buf[INET_ADDRSTRLEN];

			memmove(c->ipbin.addr, c->ipbin.addr + 12, 4);
			memset(c->ipbin.addr + 4, 0, 12);
			c->ipbin.family = AF_INET;
			inet_ntop(AF_INET, c->ipbin.addr, buf, sizeof(buf));
			free(c->ip);
			c->ip = xstrdup(buf);
		}
	}
	pol_eval_init(&c->conn_eval);
	/* The connect stage first: a client it decides (a trusted network,
	 * say) costs no DNS query at all.  A rule of that stage that reads a
	 * lookup starts them (conn_lookups_ensure()); otherwise they start
	 * here, early, for the stages to come. */
	conn_evaluate(c, POL_STAGE_CONNECT, v);
	if (c->conn_action == POL_ACT_NONE && !v->on_error)
		conn_lookups_ensure(c);
	return c;
}

void
core_close(struct core_conn *c)
{
	if (c == NULL)
		return;
	msg_end(c);
	dns_query_free(c->ptr_q);
	dnsbl_free(c->dnsbl);
	snapshot_release(c->snap);
	free(c->ip);
	free(c->client_name);
	free(c->helo);
	free(c);
}

void
core_set_queue_id(struct core_conn *c, const char *qid)
{
	if (qid != NULL && qid[0] != '\0')
		copy_clean(c->qid, sizeof(c->qid), qid);
}

bool
core_needs_body(const struct core_conn *c)
{
	(void)c;
	return true;	/* DKIM for Authentication-Results */
}

void
core_helo(struct core_conn *c, const char *helo, struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_HELO);
	memset(v, 0, sizeof(*v));
	free(c->helo);
	c->helo = xstrndup(helo != NULL ? helo : "", 255);
	if (c->conn_action != POL_ACT_NONE)
		return;
	/* the connection was undecided: HELO may decide it */
	pol_eval_init(&c->conn_eval);
	conn_evaluate(c, POL_STAGE_HELO, v);
}

/* Message-level decision handling shared by MAIL, EOH. */
static void
msg_decision(struct core_conn *c, struct verdict *v, enum pol_action a,
    enum pol_stage st, const char *rule, const char *text)
{
	struct msg *m = c->msg;

	bool refusal = a == POL_ACT_REJECT || a == POL_ACT_TEMPFAIL;

	if (a == POL_ACT_QUARANTINE || a == POL_ACT_STRIP ||
	    (refusal && st < POL_STAGE_RCPT)) {
		/*
		 * Quarantine and strip are applied at end of message, where
		 * the MTA allows them.  Refusals decided before RCPT are
		 * given at each RCPT, as Postfix's smtpd_delay_reject does:
		 * some clients mishandle a refused MAIL FROM and retry at
		 * once, and the log then names the recipients.
		 */
		m->early_action = a;
		m->early_stage = st;
		snprintf(m->early_rule, sizeof(m->early_rule), "%s", rule);
		snprintf(m->early_text, sizeof(m->early_text), "%s", text);
		if (refusal) {
			m->final_action = a;
			m->final_stage = st;
			snprintf(m->final_rule, sizeof(m->final_rule), "%s",
			    rule);
		}
		return;
	}
	verdict_decide(v, a, st, rule, text);
	msg_final(m, v);
}

void
core_mail(struct core_conn *c, const char *from, const char *auth_user,
    struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_MAIL);
	struct snapshot *s;
	struct msg *m;
	char rule[POL_NAME_MAX + 1], text[POL_EXPAND_MAX + 1];
	enum pol_action a;
	int rc;

	memset(v, 0, sizeof(*v));
	msg_end(c);
	/* re-pin: a reload between messages applies to the next one */
	if ((s = snapshot_acquire()) != NULL && s != c->snap) {
		snapshot_release(c->snap);
		c->snap = s;
		conn_restart_lookups(c);
	} else if (s != NULL)
		snapshot_release(s);
	m = c->msg = xcalloc(1, sizeof(*m));
	m->start_ms = clock_ms();
	m->grey_least = -1;
	/* DKIM hashes the body as it streams: it starts with the message */
	m->dkim = dkimv_new(c->snap->dkim, c->qid);
	if (policy_reads_attachments(c->snap->pol) &&
	    (m->spool = spool_open(m)) == NULL)
		m->spool_failed = true;	/* on_error when it is needed */
	/* the links of the body are read only when the policy asks */
	if (policy_reads_uribl(c->snap->pol) ||
	    pol_references(c->snap->pol, POL_FACT_URL_DOMAINS)) {
		m->uribl = uribl_new(c->snap->dns, c->snap->pol,
		    c->snap->health, conn_cfg(c)->uribl_max_lookups);
		m->uri = uriscan_new(NULL, uri_key_found, m);
		if (m->uri != NULL && uribl_wants_hosts(c->snap->pol) &&
		    uriscan_set_host_fn(m->uri, uri_host_found) != 0)
			log_warn("uribl: out of memory: host names of links "
			    "not looked up");
	}
	pol_eval_init(&m->eval);
	if (addr_envelope(from != NULL ? from : "", &m->mail_from,
	    &m->mail_from_domain) != 0) {
		m->mail_from = xstrdup("");
		m->mail_from_domain = xstrdup("");
		verdict_decide(v, POL_ACT_REJECT, POL_STAGE_MAIL, "syntax",
		    "5.1.7 invalid sender address");
		msg_final(m, v);
		return;
	}
	if (auth_user != NULL && auth_user[0] != '\0')
		m->auth_user = xstrndup(auth_user, CORE_ADDR_MAX);
	/* SPF's first query: the sender domain's TXT (HELO for <>) */
	if (c->ip_valid)
		msg_prefetch(c, m, "", m->mail_from[0] != '\0' ?
		    m->mail_from_domain : c->helo);
	if (c->conn_action != POL_ACT_NONE) {
		msg_decision(c, v, c->conn_action, c->conn_stage,
		    c->conn_rule, c->conn_text);
		return;
	}
	rc = evaluate(c, &m->eval, POL_STAGE_MAIL, &a, rule, text);
	if (rc < 0) {
		verdict_on_error(c, v, POL_STAGE_MAIL, "policy evaluation");
		msg_final(m, v);
	} else if (rc > 0)
		msg_decision(c, v, a, POL_STAGE_MAIL, rule, text);
}

void
core_rcpt(struct core_conn *c, const char *rcpt, struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_RCPT);
	struct msg *m = c->msg;
	char rule[POL_NAME_MAX + 1], text[POL_EXPAND_MAX + 1];
	struct rcpt *r;
	enum pol_action a;
	int rc;

	memset(v, 0, sizeof(*v));
	if (m == NULL) {
		verdict_on_error(c, v, POL_STAGE_RCPT, "RCPT without MAIL");
		return;
	}
	m->rcpts_seen++;
	if (m->nrcpt >= CORE_RCPT_MAX) {
		verdict_decide(v, POL_ACT_TEMPFAIL, POL_STAGE_RCPT,
		    "limits", "4.5.3 too many recipients");
		v->code = 452;	/* RFC 5321 4.5.3.1.10 */
		return;
	}
	m->rcpts = xreallocarray(m->rcpts, m->nrcpt + 1, sizeof(*m->rcpts));
	r = &m->rcpts[m->nrcpt];
	memset(r, 0, sizeof(*r));
	if (addr_envelope(rcpt != NULL ? rcpt : "", &r->addr,
	    &r->domain) != 0 || r->addr[0] == '\0') {
		free(r->addr);
		free(r->domain);
		verdict_decide(v, POL_ACT_REJECT, POL_STAGE_RCPT, "syntax",
		    "5.1.3 invalid recipient address");
		return;
	}
	m->cur_rcpt = m->nrcpt++;
	if (m->early_action == POL_ACT_REJECT ||
	    m->early_action == POL_ACT_TEMPFAIL) {
		/* the refusal decided before RCPT (see msg_decision()) */
		verdict_decide(v, m->early_action, m->early_stage,
		    m->early_rule, m->early_text);
		r->action = m->early_action;
		m->rejected_rcpts++;
		free(r->addr);
		free(r->domain);
		m->nrcpt--;
		return;
	}
	if (m->early_action != POL_ACT_NONE)
		return;		/* decided before: no more policy work */
	/* each recipient is judged on its own from a fresh evaluation */
	{
		struct pol_eval e;

		pol_eval_init(&e);
		/* a monitor rule is reported once per message */
		memcpy(e.monitor_done, m->eval.monitor_done,
		    sizeof(e.monitor_done));
		rc = evaluate(c, &e, POL_STAGE_RCPT, &a, rule, text);
		/* keep monitor hits and score of the message */
		m->eval.score = e.score;
		m->eval.score_known = e.score_known;
		for (size_t i = 0; i < e.nmonitored &&
		    m->eval.nmonitored < POL_MONITORED_MAX; i++)
			m->eval.monitored[m->eval.nmonitored++] =
			    e.monitored[i];
		memcpy(m->eval.monitor_done, e.monitor_done,
		    sizeof(e.monitor_done));
	}
	if (rc < 0) {
		verdict_on_error(c, v, POL_STAGE_RCPT, "policy evaluation");
		r->action = v->action;
	} else if (rc > 0) {
		if (a == POL_ACT_QUARANTINE || a == POL_ACT_STRIP) {
			/* cannot be per recipient: the whole message */
			msg_decision(c, v, a, POL_STAGE_RCPT, rule, text);
			return;
		}
		r->action = a;
		verdict_decide(v, a, POL_STAGE_RCPT, rule, text);
		if (a == POL_ACT_ACCEPT) {
			/* an accepted recipient goes on untouched; the
			 * message answers accept when all did */
			v->decided = false;
			snprintf(m->final_rule, sizeof(m->final_rule), "%s",
			    rule);
		}
	}
	if (r->action == POL_ACT_REJECT || r->action == POL_ACT_TEMPFAIL) {
		/* a refused recipient is not part of the message */
		m->rejected_rcpts++;
		m->rcpt_refusal = r->action;
		free(r->addr);
		free(r->domain);
		m->nrcpt--;
		if (m->final_action == POL_ACT_NONE)
			snprintf(m->final_rule, sizeof(m->final_rule), "%s",
			    v->rule);
	}
}

void
core_header(struct core_conn *c, const char *name, const char *value)
{
	struct msg *m = c->msg;
	struct kept_hdr *h;
	size_t nlen, vlen, i, o;
	unsigned idx = 0;
	bool keep;

	if (m == NULL)
		return;
	if (m->dkim != NULL)
		dkimv_header(m->dkim, name, value);
	uriscan_header(m->uri, name, value);
	spool_header(m, name, value);
	nlen = strlen(name);
	vlen = strlen(value);
	m->size += nlen + vlen + 4;	/* ": " and CRLF */
	/* keep only what the policy and the edits need */
	keep = str_ieq(name, "From") || str_ieq(name, "Subject") ||
	    str_ieq(name, "Authentication-Results");
	if (!keep) {
		const char *const *names;
		size_t n = pol_header_names(c->snap->pol, &names);

		for (i = 0; i < n && !keep; i++)
			keep = str_ieq(names[i], name);
	}
	if (str_ieq(name, "Subject"))
		idx = ++m->n_subject;
	else if (str_ieq(name, "From"))
		idx = ++m->n_from;
	else if (str_ieq(name, "Authentication-Results"))
		idx = ++m->n_authres;
	if (!keep)
		return;
	if (vlen > CORE_HDR_VALUE_MAX ||
	    m->hdr_bytes + nlen + vlen > CORE_HDR_KEEP_MAX) {
		m->hdr_overflow = true;
		return;
	}
	m->hdr_bytes += nlen + vlen;
	m->hdrs = xreallocarray(m->hdrs, m->nhdrs + 1, sizeof(*m->hdrs));
	h = &m->hdrs[m->nhdrs++];
	h->name = xstrdup(name);
	h->raw = xstrdup(value);
	h->index = idx;
	if (idx == 0) {
		size_t cnt;

		hdr_find(m, name, &cnt);
		h->index = (unsigned)cnt;	/* counts itself */
	}
	/* unfold (RFC 5322 2.2.3): drop CR and LF, keep the WSP */
	h->value = xmalloc(vlen + 1);
	for (i = o = 0; i < vlen; i++)
		if (value[i] != '\r' && value[i] != '\n')
			h->value[o++] = value[i];
	h->value[o] = '\0';
}

void
core_body(struct core_conn *c, const unsigned char *p, size_t n)
{
	struct msg *m = c->msg;

	if (m == NULL)
		return;
	m->size += n;
	if (m->dkim != NULL)
		dkimv_body(m->dkim, p, n);
	uriscan_body(m->uri, p, n);
	spool_write(m, p, n);
}

/* The recipients still open after RCPT, as fact lists. */
static void
msg_open_rcpts(struct msg *m)
{
	size_t i;

	free(m->open_rcpts);
	free(m->open_domains);
	m->open_rcpts = xcalloc(m->nrcpt + 1, sizeof(char *));
	m->open_domains = xcalloc(m->nrcpt + 1, sizeof(char *));
	m->nopen = 0;
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpts[i].action == POL_ACT_NONE) {
			m->open_rcpts[m->nopen] = m->rcpts[i].addr;
			m->open_domains[m->nopen++] = m->rcpts[i].domain;
		}
}

void
core_eoh(struct core_conn *c, struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_EOH);
	struct msg *m = c->msg;
	char rule[POL_NAME_MAX + 1], text[POL_EXPAND_MAX + 1];
	enum pol_action a;
	int rc;

	memset(v, 0, sizeof(*v));
	if (m == NULL) {
		verdict_on_error(c, v, POL_STAGE_EOH, "headers without MAIL");
		return;
	}
	if (m->dkim != NULL)
		dkimv_eoh(m->dkim);	/* DKIM keys are asked from here */
	spool_write(m, "\r\n", 2);	/* the header ends */
	if (m->early_action != POL_ACT_NONE)
		return;
	msg_open_rcpts(m);
	if (m->nopen == 0 && m->nrcpt > 0) {
		/* every recipient was accepted at RCPT */
		verdict_decide(v, POL_ACT_ACCEPT, POL_STAGE_RCPT,
		    m->final_rule, NULL);
		msg_final(m, v);
		return;
	}
	/* DMARC's first queries: the record of each From domain */
	msg_from_domains(m);
	for (size_t i = 0; i < m->nfrom_domains; i++) {
		char d[DMARC_DOMAIN_MAX + 1];

		/* the name DMARC will ask: A-labels for an IDN domain */
		if (dmarc_domain_dns(m->from_domains[i], d) == 0)
			msg_prefetch(c, m, "_dmarc.", d);
	}
	rc = evaluate(c, &m->eval, POL_STAGE_EOH, &a, rule, text);
	if (rc < 0) {
		verdict_on_error(c, v, POL_STAGE_EOH, "policy evaluation");
		msg_final(m, v);
	} else if (rc > 0)
		msg_decision(c, v, a, POL_STAGE_EOH, rule, text);
}

/* The value of the Authentication-Results header of this message. */
static int
authres_value(struct core_conn *c, char **out)
{
	struct msg *m = c->msg;
	struct ar_dkim_sig sigs[DKIMV_SIG_MAX];
	struct ar_input in;
	size_t i;

	if (spf_compute(c, m) != 0 || dkim_compute(m) != 0 ||
	    dmarc_compute(c, m) != 0)
		return -1;
	memset(&in, 0, sizeof(in));
	in.authserv_id = conn_cfg(c)->authserv_id;
	in.spf = spf_result_name(m->spf.result);
	in.smtp_mailfrom = m->mail_from;
	in.smtp_helo = c->helo;
	for (i = 0; i < m->dkim_res->nsigs && i < DKIMV_SIG_MAX; i++) {
		const struct dkimv_sig *ds = &m->dkim_res->sigs[i];

		sigs[i].result = ds->result;
		sigs[i].bits = ds->bits;
		sigs[i].ed25519 = ds->ed25519;
		sigs[i].partial_body = ds->has_l;
		sigs[i].testing = ds->testing;
		sigs[i].domain = ds->domain;
		sigs[i].selector = ds->selector;
		sigs[i].b = ds->b;
	}
	in.dkim = sigs;
	in.ndkim = i;
	in.dmarc = dmarc_result_name(m->dmarc.result);
	if (m->dmarc.policy_domain[0] != '\0') {
		in.dmarc_p = m->dmarc.p;
		in.dmarc_sp = m->dmarc.sp;
		in.dmarc_dis = m->dmarc.dis;
	}
	msg_parse_from(m);
	in.header_from = m->dmarc.header_from[0] != '\0' ?
	    m->dmarc.header_from : m->from_domain;
	return ar_build(&in, out);
}

/* Header edits of an accepted or quarantined message. */
static int
eom_edits(struct core_conn *c, struct verdict *v)
{
	struct msg *m = c->msg;
	const char *tag = pol_tag_text(c->snap->pol);
	struct pol_facts pf = conn_facts(c);
	char *val = NULL;
	size_t i;

	if (m->hdr_overflow)
		return -1;	/* we could not see every header we edit */
	if (tag != NULL && tag[0] != '\0') {
		bool applies = false;

		if (pol_tag_applies(c->snap->pol, &pf, &applies) != 0)
			return -1;
		if (applies) {
			size_t n;
			const struct kept_hdr *h = hdr_find(m, "Subject", &n);
			char *newsub = NULL;

			if (tag_subject(tag, h ? h->raw : NULL,
			    h ? strlen(h->raw) : 0, &newsub) != 0)
				return -1;
			if (newsub != NULL) {
				if (h != NULL)
					edit_push(&v->changed, &v->nchanged,
					    "Subject", newsub, h->index);
				else
					edit_push(&v->added, &v->nadded,
					    "Subject", newsub, 0);
				free(newsub);
			}
		}
	}
	/* RFC 8601 section 5: forged headers with our authserv-id go;
	 * highest index first so earlier indexes stay valid */
	for (i = m->nhdrs; i-- > 0;) {
		const struct kept_hdr *h = &m->hdrs[i];

		if (str_ieq(h->name, "Authentication-Results") &&
		    ar_is_ours(h->raw, strlen(h->raw),
		    conn_cfg(c)->authserv_id))
			edit_push(&v->removed, &v->nremoved,
			    "Authentication-Results", NULL, h->index);
	}
	if (authres_value(c, &val) != 0)
		return -1;
	edit_push(&v->added, &v->nadded, "Authentication-Results", val, 0);
	free(val);
	return 0;
}

void
core_eom(struct core_conn *c, struct verdict *v)
{
	METRICS_STAGE_TIMER(POL_STAGE_EOM);
	struct msg *m = c->msg;
	char rule[POL_NAME_MAX + 1], text[POL_EXPAND_MAX + 1];
	enum pol_action a;
	int rc;

	memset(v, 0, sizeof(*v));
	if (m == NULL) {
		verdict_on_error(c, v, POL_STAGE_EOM, "end of message "
		    "without MAIL");
		return;
	}
	msg_open_rcpts(m);
	if (m->early_action != POL_ACT_NONE) {
		a = m->early_action;
		verdict_decide(v, a, m->early_stage, m->early_rule,
		    m->early_text);
	} else if (m->nopen == 0 && m->nrcpt > 0) {
		verdict_decide(v, POL_ACT_ACCEPT, POL_STAGE_RCPT,
		    m->final_rule, NULL);
		msg_final(m, v);
		msg_log(c, m);
		return;
	} else {
		rc = evaluate(c, &m->eval, POL_STAGE_EOM, &a, rule, text);
		if (rc <= 0) {
			verdict_on_error(c, v, POL_STAGE_EOM, rc < 0 ?
			    "policy evaluation" : "policy undecided at end "
			    "of message");
			goto done;
		}
		verdict_decide(v, a, POL_STAGE_EOM, rule, text);
	}
	if (a == POL_ACT_STRIP && strip_body(c, m, v) != 0) {
		/* the blocked file must never be delivered, whatever
		 * on_error says: the sender is asked to retry */
		verdict_clear(v);
		verdict_decide(v, POL_ACT_TEMPFAIL, POL_STAGE_EOM, "strip",
		    "4.3.0 temporary failure in the mail filter, please try "
		    "again later");
		goto done;
	}
	if (a == POL_ACT_ACCEPT || a == POL_ACT_QUARANTINE ||
	    a == POL_ACT_STRIP) {
		if (eom_edits(c, v) != 0)
			verdict_on_error(c, v, POL_STAGE_EOM, "header edits");
	}
done:
	v->score = m->eval.score;
	v->score_known = m->eval.score_known;
	msg_final(m, v);
	/* DMARC aggregate reports: queued, never waited for */
	if (c->snap->reports != NULL && m->dmarc_done)
		report_record(c->snap->reports, &(const struct report_msg){
		    c->ip_valid ? c->ip : NULL, c->helo, m->mail_from,
		    m->mail_from_domain, m->nopen > 0 ? m->open_domains[0] :
		    NULL, &m->spf, m->dkim_res, &m->dmarc, v->action });
	/* logged now; the state stays for "check" until the next event */
	msg_log(c, m);
}

void
core_abort(struct core_conn *c)
{
	msg_end(c);
}

/* ---- JSON for portcullis check ---- */


static void
json_value(struct buf *b, const struct pol_value *v)
{
	size_t i;

	switch (v->type) {
	case POL_V_BOOL:
		buf_appendf(b, "%s", v->b ? "true" : "false");
		break;
	case POL_V_NUM:
		buf_appendf(b, "%g", v->num);
		break;
	case POL_V_STR:
	case POL_V_IP:
		buf_append_json(b, v->s);
		break;
	case POL_V_LIST:
		buf_append(b, "[", 1);
		for (i = 0; i < v->nlist; i++) {
			if (i)
				buf_append(b, ", ", 2);
			buf_append_json(b, v->list[i]);
		}
		buf_append(b, "]", 1);
		break;
	default:
		buf_append(b, "null", 4);
	}
}

char *
core_facts_json(struct core_conn *c)
{
	struct msg *m = c->msg;
	struct buf b;
	struct pol_value v;
	bool asked[POL_FACT_COUNT];
	size_t i, nh;
	char **hnames;
	int f;
	bool first = true;

	buf_init(&b, 4 * 1024 * 1024);
	memcpy(asked, c->asked, sizeof(asked));
	if (asked[POL_FACT_URIBL_LISTED] || asked[POL_FACT_URIBL_DOMAINS])
		asked[POL_FACT_URIBL_LISTED] = asked[POL_FACT_URIBL_DOMAINS] =
		    true;
	{
		static const enum pol_fact att[] = {
			POL_FACT_ATTACHMENT_BLOCKED, POL_FACT_ATTACHMENT_NAME,
			POL_FACT_ATTACHMENT_NAMES,
			POL_FACT_ATTACHMENT_ENCRYPTED,
			POL_FACT_ATTACHMENT_LIMITS
		};
		bool any = false;
		size_t k;

		for (k = 0; k < sizeof(att) / sizeof(att[0]); k++)
			any = any || asked[att[k]];
		for (k = 0; any && k < sizeof(att) / sizeof(att[0]); k++)
			asked[att[k]] = true;
	}
	/* the facts of one lookup are computed together: all are shown */
	if (asked[POL_FACT_DNSBL_LISTED] || asked[POL_FACT_DNSBL_ZONE] ||
	    asked[POL_FACT_DNSBL_ZONES] || asked[POL_FACT_DNSBL_REASON])
		asked[POL_FACT_DNSBL_LISTED] = asked[POL_FACT_DNSBL_ZONE] =
		    asked[POL_FACT_DNSBL_ZONES] =
		    asked[POL_FACT_DNSBL_REASON] = true;
	hnames = m != NULL ? m->asked_headers : NULL;
	nh = m != NULL ? m->nasked_headers : 0;
	if (m != NULL)
		m->stage = POL_STAGE_EOM;
	for (f = 0; f < POL_FACT_COUNT; f++) {
		if (!asked[f] || f == POL_FACT_HEADER)
			continue;
		if (fact_get(c, (enum pol_fact)f, NULL, &v) != 0)
			continue;
		buf_appendf(&b, "%s\"%s\": ", first ? "" : ", ",
		    pol_fact_info((enum pol_fact)f)->name);
		if (f == POL_FACT_SCORE && m != NULL) {
			v.type = POL_V_NUM;
			v.num = m->eval.score;
		}
		json_value(&b, &v);
		first = false;
	}
	for (i = 0; i < nh; i++) {
		char key[300];

		if (fact_get(c, POL_FACT_HEADER, hnames[i], &v) != 0)
			continue;
		snprintf(key, sizeof(key), "header.%s", hnames[i]);
		buf_append(&b, first ? "" : ", ", first ? 0 : 2);
		buf_append_json(&b, key);
		buf_append(&b, ": ", 2);
		json_value(&b, &v);
		first = false;
	}
	return b.p != NULL ? b.p : xstrdup("");
}

char *
core_monitored_json(struct core_conn *c)
{
	struct msg *m = c->msg;
	struct buf b;
	size_t i;

	buf_init(&b, 64 * 1024);
	buf_append(&b, "[", 1);
	for (i = 0; m != NULL && i < m->eval.nmonitored; i++) {
		const struct pol_monitored *pm = &m->eval.monitored[i];

		buf_appendf(&b, "%s{\"rule\": ", i ? ", " : "");
		buf_append_json(&b, pm->rule);
		buf_appendf(&b, ", \"action\": \"%s\", \"stage\": \"%s\"}",
		    pol_action_name(pm->action), pol_stage_name(pm->stage));
	}
	buf_append(&b, "]", 1);
	return b.p;
}
