/*
 * report_agg.c - grouping stored rows into RFC 9990 aggregate reports,
 * writing their XML, naming their files and verifying their external
 * destinations (report_agg.h).
 * Owns: struct agg: two hash tables (records, domains) with chaining,
 * grown by doubling; each record keeps only its grouping key (the record
 * fields in the stored text form) and its count, and is decoded back when
 * the document is written, so a period of millions of messages costs one
 * key per distinct record.
 * Limits: AGG_GROUPS_MAX, AGG_DOMAINS_MAX, AGG_XML_MAX; DNS work of
 * agg_rua_verify() bounded by AGG_DEST_MAX URIs and dmarc.h's limits.
 * Errors: 0 / -1 with a message; nothing is logged here.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dmarc.h"
#include "dns.h"
#include "report_agg.h"
#include "util.h"

#define AGG_TAB_MIN	1024	/* initial buckets (a power of two) */

struct agg_policy {
	uint64_t time;			/* of the row it came from */
	char	 p[REPORT_WORD_MAX + 1], sp[REPORT_WORD_MAX + 1],
		 np[REPORT_WORD_MAX + 1];
	char	 adkim, aspf, testing;
	char	 fo[REPORT_FO_MAX + 1];
	char	 rua[REPORT_RUA_TEXT_MAX + 1];
};

struct agg_rec {
	struct agg_rec *next;		/* hash chain */
	struct agg_dom *dom;		/* borrows */
	uint64_t hash;
	uint64_t count;
	size_t klen;
	char key[];			/* grouping key, NUL-terminated */
};

struct agg_dom {
	struct agg_dom *next;		/* hash chain */
	uint64_t hash;
	struct agg_policy pol;
	struct agg_rec **recs;		/* borrows (the table owns) */
	size_t nrecs, cap;
	uint64_t messages;
	char name[];
};

struct agg {
	struct agg_rec **rtab;		/* owns the records */
	size_t rcap, nrec;
	struct agg_dom **dtab;		/* owns the domains */
	size_t dcap, ndom;
	struct agg_dom **doms;		/* sorted view, rebuilt on demand */
	bool sorted;
	struct buf key;			/* scratch */
};

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT	0xcbf29ce484222325ULL

struct agg *
agg_new(void)
{
	struct agg *a = xcalloc(1, sizeof(*a));

	a->rcap = a->dcap = AGG_TAB_MIN;
	a->rtab = xcalloc(a->rcap, sizeof(*a->rtab));
	a->dtab = xcalloc(a->dcap, sizeof(*a->dtab));
	buf_init(&a->key, REPORT_VALUE_MAX);
	return a;
}

void
agg_free(struct agg *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->rcap; i++)
		while (a->rtab[i] != NULL) {
			struct agg_rec *r = a->rtab[i];

			a->rtab[i] = r->next;
			free(r);
		}
	for (i = 0; i < a->dcap; i++)
		while (a->dtab[i] != NULL) {
			struct agg_dom *d = a->dtab[i];

			a->dtab[i] = d->next;
			free(d->recs);
			free(d);
		}
	free(a->rtab);
	free(a->dtab);
	free(a->doms);
	buf_free(&a->key);
	free(a);
}

/* Doubles a chained table when it is fuller than 3/4. */
#define AGG_GROW(tab, cap, n, type) do { \
	if ((n) * 4 > (cap) * 3) { \
		size_t ncap_ = (cap) * 2, i_; \
		type **nt_ = xcalloc(ncap_, sizeof(*nt_)); \
		for (i_ = 0; i_ < (cap); i_++) \
			while ((tab)[i_] != NULL) { \
				type *e_ = (tab)[i_]; \
				(tab)[i_] = e_->next; \
				e_->next = nt_[e_->hash & (ncap_ - 1)]; \
				nt_[e_->hash & (ncap_ - 1)] = e_; \
			} \
		free(tab); \
		(tab) = nt_; \
		(cap) = ncap_; \
	} \
} while (0)

static struct agg_dom *
dom_get(struct agg *a, const char *name, char *err, size_t errlen)
{
	uint64_t h = fnv(FNV_INIT, name, strlen(name));
	struct agg_dom *d;
	size_t n;

	for (d = a->dtab[h & (a->dcap - 1)]; d != NULL; d = d->next)
		if (d->hash == h && strcmp(d->name, name) == 0)
			return d;
	if (a->ndom >= AGG_DOMAINS_MAX) {
		snprintf(err, errlen, "more than %d Policy Domains in the "
		    "period: make reports for shorter periods",
		    AGG_DOMAINS_MAX);
		return NULL;
	}
	n = strlen(name);
	d = xcalloc(1, sizeof(*d) + n + 1);
	memcpy(d->name, name, n + 1);
	d->hash = h;
	d->next = a->dtab[h & (a->dcap - 1)];
	a->dtab[h & (a->dcap - 1)] = d;
	a->ndom++;
	a->sorted = false;
	AGG_GROW(a->dtab, a->dcap, a->ndom, struct agg_dom);
	return d;
}

static void
pol_copy(struct agg_policy *p, const struct report_row *r)
{
	p->time = r->time;
	memcpy(p->p, r->p, sizeof(p->p));
	memcpy(p->sp, r->sp, sizeof(p->sp));
	memcpy(p->np, r->np, sizeof(p->np));
	p->adkim = r->adkim;
	p->aspf = r->aspf;
	p->testing = r->testing;
	memcpy(p->fo, r->fo, sizeof(p->fo));
	memcpy(p->rua, r->rua, sizeof(p->rua));
}

int
agg_add(struct agg *a, const struct report_row *r, char *err, size_t errlen)
{
	struct agg_dom *d;
	struct agg_rec *rec;
	uint64_t h;

	if ((d = dom_get(a, r->policy_domain, err, errlen)) == NULL)
		return -1;
	/* RFC 9990 2.1: one policy configuration a report; the final one
	 * observed in the period */
	if (d->messages == 0 || r->time >= d->pol.time)
		pol_copy(&d->pol, r);
	if (rrow_group_key(r, &a->key) != 0) {
		snprintf(err, errlen, "row too large");
		return -1;
	}
	h = fnv(fnv(d->hash, "\n", 1), a->key.p, a->key.len);
	for (rec = a->rtab[h & (a->rcap - 1)]; rec != NULL; rec = rec->next)
		if (rec->hash == h && rec->dom == d &&
		    rec->klen == a->key.len &&
		    memcmp(rec->key, a->key.p, a->key.len) == 0)
			break;
	if (rec == NULL) {
		if (a->nrec >= AGG_GROUPS_MAX) {
			snprintf(err, errlen, "more than %d distinct records "
			    "in the period: make reports for shorter periods",
			    AGG_GROUPS_MAX);
			return -1;
		}
		rec = xcalloc(1, sizeof(*rec) + a->key.len + 1);
		memcpy(rec->key, a->key.p, a->key.len + 1);
		rec->klen = a->key.len;
		rec->hash = h;
		rec->dom = d;
		rec->next = a->rtab[h & (a->rcap - 1)];
		a->rtab[h & (a->rcap - 1)] = rec;
		a->nrec++;
		if (d->nrecs == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 8;
			d->recs = xreallocarray(d->recs, d->cap,
			    sizeof(*d->recs));
		}
		d->recs[d->nrecs++] = rec;
		AGG_GROW(a->rtab, a->rcap, a->nrec, struct agg_rec);
	}
	rec->count++;
	d->messages++;
	return 0;
}

static int
dom_cmp(const void *x, const void *y)
{
	const struct agg_dom *const *a = x, *const *b = y;

	return strcmp((*a)->name, (*b)->name);
}

static void
agg_sort(struct agg *a)
{
	size_t i, n = 0;

	if (a->sorted)
		return;
	a->doms = xreallocarray(a->doms, a->ndom ? a->ndom : 1,
	    sizeof(*a->doms));
	for (i = 0; i < a->dcap; i++) {
		struct agg_dom *d;

		for (d = a->dtab[i]; d != NULL; d = d->next)
			a->doms[n++] = d;
	}
	qsort(a->doms, n, sizeof(*a->doms), dom_cmp);
	a->sorted = true;
}

size_t
agg_ndomains(struct agg *a)
{
	return a->ndom;
}

const char *
agg_domain(struct agg *a, size_t i)
{
	agg_sort(a);
	return i < a->ndom ? a->doms[i]->name : NULL;
}

void
agg_domain_counts(struct agg *a, size_t i, size_t *records,
    uint64_t *messages)
{
	agg_sort(a);
	*records = i < a->ndom ? a->doms[i]->nrecs : 0;
	*messages = i < a->ndom ? a->doms[i]->messages : 0;
}

const char *
agg_domain_rua(struct agg *a, size_t i)
{
	agg_sort(a);
	return i < a->ndom ? a->doms[i]->pol.rua : "";
}

/* ------------------------------------------------------------------ */
/* XML                                                                */
/* ------------------------------------------------------------------ */

static int
rec_cmp(const void *x, const void *y)
{
	const struct agg_rec *const *a = x, *const *b = y;

	return strcmp((*a)->key, (*b)->key);
}

/* <name>escaped text</name> at an indentation. */
static int
x_elem(struct buf *b, int indent, const char *name, const char *text)
{
	if (buf_appendf(b, "%*s<%s>", indent, "", name) != 0 ||
	    rrow_xml_escape(b, text, strlen(text)) != 0 ||
	    buf_appendf(b, "</%s>\n", name) != 0)
		return -1;
	return 0;
}

static int
x_elem_u64(struct buf *b, int indent, const char *name, uint64_t v)
{
	return buf_appendf(b, "%*s<%s>%llu</%s>\n", indent, "", name,
	    (unsigned long long)v, name);
}

static int
x_record(struct buf *b, const struct agg_rec *rec)
{
	struct report_row r;
	size_t i;
	int rc = 0;

	if (rrow_decode_key(rec->key, rec->klen, &r) != 0)
		return -1;
	rc |= buf_puts(b, "  <record>\n    <row>\n");
	rc |= x_elem(b, 6, "source_ip", r.ip);
	rc |= x_elem_u64(b, 6, "count", rec->count);
	rc |= buf_puts(b, "      <policy_evaluated>\n");
	rc |= x_elem(b, 8, "disposition", r.disposition);
	rc |= x_elem(b, 8, "dkim", r.dkim_aligned ? "pass" : "fail");
	rc |= x_elem(b, 8, "spf", r.spf_aligned ? "pass" : "fail");
	for (i = 0; i < r.nreason; i++) {
		rc |= buf_puts(b, "        <reason>\n");
		rc |= x_elem(b, 10, "type", r.reason[i]);
		rc |= buf_puts(b, "        </reason>\n");
	}
	rc |= buf_puts(b, "      </policy_evaluated>\n    </row>\n"
	    "    <identifiers>\n");
	rc |= x_elem(b, 6, "header_from", r.header_from);
	/* RFC 9990: present but empty for the null reverse-path */
	rc |= x_elem(b, 6, "envelope_from", r.envelope_from);
	if (r.envelope_to[0] != '\0')
		rc |= x_elem(b, 6, "envelope_to", r.envelope_to);
	rc |= buf_puts(b, "    </identifiers>\n    <auth_results>\n");
	for (i = 0; i < r.ndkim; i++) {
		rc |= buf_puts(b, "      <dkim>\n");
		rc |= x_elem(b, 8, "domain", r.dkim[i].domain);
		rc |= x_elem(b, 8, "selector", r.dkim[i].selector);
		rc |= x_elem(b, 8, "result", r.dkim[i].result);
		rc |= buf_puts(b, "      </dkim>\n");
	}
	if (r.spf_result[0] != '\0') {
		rc |= buf_puts(b, "      <spf>\n");
		rc |= x_elem(b, 8, "domain", r.spf_domain);
		rc |= x_elem(b, 8, "scope", "mfrom");
		rc |= x_elem(b, 8, "result", r.spf_result);
		rc |= buf_puts(b, "      </spf>\n");
	}
	rc |= buf_puts(b, "    </auth_results>\n  </record>\n");
	return rc != 0 ? -1 : 0;
}

int
agg_xml(struct agg *a, size_t i, const struct agg_meta *m, struct buf *b)
{
	const struct agg_dom *d;
	const struct agg_policy *p;
	struct agg_rec **sorted;
	char c[2] = { 0, 0 };
	size_t j;
	int rc = 0;

	agg_sort(a);
	if (i >= a->ndom)
		return -1;
	d = a->doms[i];
	p = &d->pol;
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
	rc |= buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
	    "  <version>1.0</version>\n  <report_metadata>\n");
	rc |= x_elem(b, 4, "org_name", m->org_name);
	rc |= x_elem(b, 4, "email", m->email);
	if (m->extra_contact_info != NULL)
		rc |= x_elem(b, 4, "extra_contact_info",
		    m->extra_contact_info);
	rc |= x_elem(b, 4, "report_id", m->report_id);
	rc |= buf_puts(b, "    <date_range>\n");
	rc |= x_elem_u64(b, 6, "begin", m->begin);
	rc |= x_elem_u64(b, 6, "end", m->end);
	rc |= buf_puts(b, "    </date_range>\n");
	if (m->generator != NULL)
		rc |= x_elem(b, 4, "generator", m->generator);
	rc |= buf_puts(b, "  </report_metadata>\n  <policy_published>\n");
	rc |= x_elem(b, 4, "domain", d->name);
	/* RFC 9989 policy discovery is the tree walk, never the PSL */
	rc |= x_elem(b, 4, "discovery_method", "treewalk");
	rc |= x_elem(b, 4, "p", p->p[0] != '\0' ? p->p : "none");
	rc |= x_elem(b, 4, "sp", p->sp[0] != '\0' ? p->sp : p->p[0] != '\0' ?
	    p->p : "none");
	if (p->np[0] != '\0')
		rc |= x_elem(b, 4, "np", p->np);
	c[0] = p->adkim;
	rc |= x_elem(b, 4, "adkim", c);
	c[0] = p->aspf;
	rc |= x_elem(b, 4, "aspf", c);
	if (p->fo[0] != '\0')
		rc |= x_elem(b, 4, "fo", p->fo);
	c[0] = p->testing;
	rc |= x_elem(b, 4, "testing", c);
	rc |= buf_puts(b, "  </policy_published>\n");
	if (rc != 0)
		return -1;
	sorted = xreallocarray(NULL, d->nrecs ? d->nrecs : 1,
	    sizeof(*sorted));
	memcpy(sorted, d->recs, d->nrecs * sizeof(*sorted));
	qsort(sorted, d->nrecs, sizeof(*sorted), rec_cmp);
	for (j = 0; rc == 0 && j < d->nrecs; j++)
		rc = x_record(b, sorted[j]);
	free(sorted);
	if (rc != 0 || buf_puts(b, "</feedback>\n") != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Names                                                              */
/* ------------------------------------------------------------------ */

int
agg_report_id(const char *receiver, const char *domain, uint64_t begin,
    uint64_t end, char *id, size_t idlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	char *in;
	int ok;

	if (idlen < 17 || !rrow_domain_ok(receiver) ||
	    !rrow_domain_ok(domain))
		return -1;
	in = xasprintf("%s!%s!%llu!%llu", receiver, domain,
	    (unsigned long long)begin, (unsigned long long)end);
	ok = EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha256(), NULL);
	free(in);
	if (!ok || mdlen < 8)
		return -1;
	for (i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int
agg_filename(const char *receiver, const char *domain, uint64_t begin,
    uint64_t end, const char *id, bool gz, char *out, size_t outlen)
{
	int n;

	if (!rrow_domain_ok(receiver) || !rrow_domain_ok(domain) ||
	    id[0] == '\0' || strspn(id, "0123456789abcdef") != strlen(id))
		return -1;
	n = snprintf(out, outlen, "%s!%s!%llu!%llu!%s.%s", receiver, domain,
	    (unsigned long long)begin, (unsigned long long)end, id,
	    gz ? "xml.gz" : "xml");
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Verifying external destinations (RFC 9990 section 4)               */
/* ------------------------------------------------------------------ */

static struct agg_dest *
dest_add(struct agg_dest *out, size_t *n, size_t max, const char *uri)
{
	struct agg_dest *d;

	if (*n >= max)
		return NULL;
	d = &out[(*n)++];
	memset(d, 0, sizeof(*d));
	snprintf(d->uri, sizeof(d->uri), "%s", uri);
	return d;
}

static void
dest_keep(struct agg_dest *out, size_t *n, size_t max,
    const struct rua_uri *u, const char *why)
{
	struct agg_dest *d;
	size_t i;

	for (i = 0; i < *n; i++)
		if (out[i].kept && strcmp(out[i].addr, u->addr) == 0) {
			if ((d = dest_add(out, n, max, u->uri)) != NULL)
				snprintf(d->why, sizeof(d->why), "duplicate "
				    "of %s", u->addr);
			return;
		}
	if ((d = dest_add(out, n, max, u->uri)) == NULL)
		return;
	d->kept = true;
	snprintf(d->addr, sizeof(d->addr), "%s", u->addr);
	snprintf(d->why, sizeof(d->why), "%s", why);
}

static void
dest_drop(struct agg_dest *out, size_t *n, size_t max, const char *uri,
    const char *why)
{
	struct agg_dest *d = dest_add(out, n, max, uri);

	if (d != NULL)
		snprintf(d->why, sizeof(d->why), "%s", why);
}

/* The authorization record set at name: 1 authorized (with its rua=
 * text in override, "" when none), 0 not, -1 temporary failure. */
static int
auth_lookup(struct dns *dns, unsigned timeout_ms, const char *name,
    char *override, size_t olen, char *txt)
{
	struct dns_query *q;
	enum dns_status st;
	size_t i;
	int found = 0;

	override[0] = '\0';
	q = dns_query_start(dns, name, DNS_T_TXT);
	st = dns_query_wait(q, clock_ms() + timeout_ms);
	if (st == DNS_OK) {
		for (i = 0; i < dns_query_count(q); i++) {
			struct dmarc_record rec;
			const unsigned char *rd;
			size_t rdlen;
			long tl;

			if ((rd = dns_query_rdata(q, i, &rdlen)) == NULL)
				continue;
			tl = dns_txt_join(rd, rdlen, txt, DNS_RDATA_MAX + 1,
			    0);
			/* step 6: tag=value pairs, v=DMARC1 first */
			if (tl < 0 || dmarc_record_parse(txt, (size_t)tl,
			    &rec) != 0)
				continue;
			if (!found || (override[0] == '\0' &&
			    rec.rua[0] != '\0'))
				snprintf(override, olen, "%s", rec.rua);
			found = 1;
		}
	} else if (st != DNS_NXDOMAIN && st != DNS_NODATA)
		found = -1;
	dns_query_free(q);
	return found;
}

size_t
agg_rua_verify(struct dns *dns, unsigned timeout_ms,
    const char *policy_domain, const char *rua, uint64_t report_size,
    struct agg_dest *out, size_t max)
{
	struct rua_uri *uris, *ov;	/* owns; about 1 KB each */
	char porg[REPORT_DOMAIN_MAX + 1], horg[REPORT_DOMAIN_MAX + 1];
	char name[DNS_NAME_MAX + 64], override[DMARC_URI_MAX + 1];
	char why[DNS_NAME_MAX + 2 * REPORT_RUA_TEXT_MAX + 80];
	char *txt = NULL;
	size_t nu, nov, i, j, n = 0;
	bool more, porg_ok;
	int rc;

	if (rua == NULL || rua[0] == '\0')
		return 0;
	uris = xcalloc(REPORT_RUA_MAX, sizeof(*uris));
	ov = xcalloc(REPORT_RUA_MAX, sizeof(*ov));
	nu = rrow_rua_parse(rua, strlen(rua), uris, REPORT_RUA_MAX, &more);
	porg_ok = dmarc_org_domain(dns, clock_ms() + timeout_ms,
	    policy_domain, porg, sizeof(porg)) == 0;
	txt = xmalloc(DNS_RDATA_MAX + 1);
	for (i = 0; i < nu; i++) {
		const struct rua_uri *u = &uris[i];

		if (!u->mailto) {
			dest_drop(out, &n, max, u->uri, u->why);
			continue;
		}
		if (u->size_limit != 0 && report_size > u->size_limit) {
			dest_drop(out, &n, max, u->uri, "report larger "
			    "than the URI's size limit");
			continue;
		}
		rc = dmarc_org_domain(dns, clock_ms() + timeout_ms, u->host,
		    horg, sizeof(horg));
		if (!porg_ok || rc == -1) {
			snprintf(why, sizeof(why), "DNS temporary failure "
			    "finding the Organizational Domain of %s",
			    porg_ok ? u->host : policy_domain);
			dest_drop(out, &n, max, u->uri, why);
			continue;
		}
		if (rc == 0 && strcmp(horg, porg) == 0) {
			dest_keep(out, &n, max, u, "same Organizational "
			    "Domain");
			continue;
		}
		/* steps 1-4: <policy domain>._report._dmarc.<host> */
		if ((size_t)snprintf(name, sizeof(name), "%s._report._dmarc."
		    "%s", policy_domain, u->host) > DNS_NAME_MAX) {
			dest_drop(out, &n, max, u->uri, "the _report._dmarc "
			    "name is too long for the DNS");
			continue;
		}
		rc = auth_lookup(dns, timeout_ms, name, override,
		    sizeof(override), txt);
		if (rc < 0) {
			snprintf(why, sizeof(why), "DNS temporary failure "
			    "at %s", name);
			dest_drop(out, &n, max, u->uri, why);
			continue;
		}
		if (rc == 0) {
			snprintf(why, sizeof(why), "not authorized: no "
			    "v=DMARC1 record at %s", name);
			dest_drop(out, &n, max, u->uri, why);
			continue;
		}
		if (override[0] == '\0') {
			snprintf(why, sizeof(why), "authorized by %s", name);
			dest_keep(out, &n, max, u, why);
			continue;
		}
		/* step 9: the Report Consumer's own rua= replaces it, on
		 * the same host only; otherwise neither is used */
		nov = rrow_rua_parse(override, strlen(override), ov,
		    REPORT_RUA_MAX, NULL);
		for (j = 0; j < nov; j++)
			if (!ov[j].mailto || strcmp(ov[j].host, u->host) != 0)
				break;
		if (nov == 0 || j < nov) {
			snprintf(why, sizeof(why), "the authorization "
			    "record at %s names another destination host",
			    name);
			dest_drop(out, &n, max, u->uri, why);
			continue;
		}
		for (j = 0; j < nov; j++) {
			if (ov[j].size_limit != 0 &&
			    report_size > ov[j].size_limit) {
				dest_drop(out, &n, max, ov[j].uri, "report "
				    "larger than the URI's size limit");
				continue;
			}
			snprintf(why, sizeof(why), "authorized by %s, which "
			    "replaces %s", name, u->uri);
			dest_keep(out, &n, max, &ov[j], why);
		}
	}
	if (more)
		dest_drop(out, &n, max, "...", "more URIs than the "
		    "receiver's limit");
	free(txt);
	free(ov);
	free(uris);
	return n;
}
