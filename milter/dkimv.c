/*
 * dkimv.c - DKIM verification on libopendkim, its DNS through dns.c.
 * libopendkim asks for keys through the dkim_dns_set_* hooks below, which
 * start a dns.c query and hand back a DNS message rebuilt from its records
 * (libopendkim parses wire format).  Portcullis adds what libopendkim 2.11
 * does not enforce: rsa-sha1 never passes (RFC 8301 3.1) and the RSA key
 * size is checked again (RFC 8301 3.2).
 * Owns: the DKIM_LIB (per snapshot), one DKIM handle and the early key
 * queries per message.  No locks: the DKIM_LIB is read-only after set-up.
 * Limits and errors: see dkimv.h.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <opendkim/dkim.h>

#include "dkimv.h"
#include "dns.h"
#include "log.h"
#include "util.h"

/* The DNS message handed to libopendkim: header, question, answers. */
#define DKIMV_DNS_HDR	12
#define DKIMV_QID_MAX	64

struct dkimv_lib {
	DKIM_LIB	*lib;		/* owns */
	struct dns	*dns;		/* borrows (outlives the lib) */
	unsigned	 timeout_ms;
	unsigned	 max_sigs;
};

struct dkimv {
	struct dkimv_lib *lib;		/* borrows, until dkimv_free() */
	DKIM		*dkim;		/* owns; NULL: failed start */
	char		 qid[DKIMV_QID_MAX];
	bool		 failed;	/* internal error: eom gives -1 */
	bool		 eoh_done;
	bool		 nosig;		/* no signature parsed */
	DKIM_STAT	 eoh_stat;
	size_t		 nprefetch;
	struct dns_query *prefetch[DKIMV_SIG_MAX];	/* owns each */
	size_t		 nseen;		/* signature fields seen */
	struct dkimv_sig seen[DKIMV_SIG_MAX];	/* d= s= b= of each */
	size_t		 nignored;
	unsigned	 nfrom;		/* From fields libopendkim kept */
	char		*from;		/* owns; the first one's value, as
					 * libopendkim sees it */
};

/* One libopendkim query: borrows its answer buffer until cancel. */
struct dkimv_q {
	struct dns_query *q;		/* owns */
	unsigned char	*buf;		/* borrows (libopendkim's) */
	size_t		 buflen;
	int		 type;
	char		 name[DNS_NAME_MAX + 2];
	uint64_t	 deadline;
};

/* --- DNS hooks ---------------------------------------------------------- */

static int
dnshook_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	struct dkimv_lib *dl = srv;
	struct dkimv_q *q;
	size_t n = strlen((const char *)query);

	*qh = NULL;
	if (n == 0 || n > DNS_NAME_MAX + 1 || (type != DNS_T_TXT &&
	    type != DNS_T_A && type != DNS_T_AAAA && type != DNS_T_MX))
		return DKIM_DNS_INVALID;
	q = xcalloc(1, sizeof(*q));
	memcpy(q->name, query, n + 1);
	q->buf = buf;
	q->buflen = buflen;
	q->type = type;
	q->deadline = clock_ms() + dl->timeout_ms;
	q->q = dns_query_start(dl->dns, q->name, (enum dns_type)type);
	*qh = q;
	return DKIM_DNS_SUCCESS;
}

static int
dnshook_cancel(void *srv, void *qh)
{
	struct dkimv_q *q = qh;

	(void)srv;
	if (q != NULL) {
		dns_query_free(q->q);
		free(q);
	}
	return DKIM_DNS_SUCCESS;
}

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/*
 * Rebuilds a DNS response libopendkim can parse: the question, then each
 * record with a compression pointer to it.  -1 when it does not fit.
 */
static long
dns_message_build(const struct dkimv_q *q, enum dns_status st,
    unsigned char *out, size_t outlen)
{
	size_t o = DKIMV_DNS_HDR, i, count;
	const char *lab = q->name;

	if (outlen < DKIMV_DNS_HDR + DNS_NAME_MAX + 8)
		return -1;
	memset(out, 0, DKIMV_DNS_HDR);
	out[2] = 0x81;		/* QR, RD */
	out[3] = st == DNS_NXDOMAIN ? 0x83 : 0x80;	/* RA, rcode */
	put16(out + 4, 1);
	while (*lab != '\0') {
		const char *dot = strchr(lab, '.');
		size_t len = dot != NULL ? (size_t)(dot - lab) : strlen(lab);

		if (len == 0 || len > 63)
			return -1;
		out[o++] = (unsigned char)len;
		memcpy(out + o, lab, len);
		o += len;
		lab += len;
		if (*lab == '.')
			lab++;
	}
	out[o++] = 0;
	put16(out + o, (unsigned)q->type);
	put16(out + o + 2, 1);
	o += 4;
	count = st == DNS_OK ? dns_query_count(q->q) : 0;
	for (i = 0; i < count; i++) {
		size_t len;
		const unsigned char *rd = dns_query_rdata(q->q, i, &len);

		if (rd == NULL || len > 65535 || outlen - o < 12 + len)
			return -1;
		put16(out + o, 0xc000 | DKIMV_DNS_HDR);
		put16(out + o + 2, (unsigned)q->type);
		put16(out + o + 4, 1);
		memset(out + o + 6, 0, 4);	/* TTL */
		put16(out + o + 10, (unsigned)len);
		memcpy(out + o + 12, rd, len);
		o += 12 + len;
	}
	put16(out + 6, (unsigned)count);
	return (long)o;
}

static int
dnshook_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes,
    int *error, int *dnssec)
{
	struct dkimv_q *q = qh;
	enum dns_status st;
	long n;

	(void)srv;
	(void)to;	/* whole seconds; our own deadline is finer */
	if (error != NULL)
		*error = 0;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	if (q == NULL)
		return DKIM_DNS_ERROR;
	st = dns_query_wait(q->q, q->deadline);
	switch (st) {
	case DNS_TIMEOUT:
		return DKIM_DNS_EXPIRED;
	case DNS_OK:
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		break;
	default:
		return DKIM_DNS_ERROR;
	}
	if ((n = dns_message_build(q, st, q->buf, q->buflen)) < 0) {
		log_warn("dkim: key record of %s too large", q->name);
		return DKIM_DNS_ERROR;
	}
	if (bytes != NULL)
		*bytes = (size_t)n;
	return DKIM_DNS_SUCCESS;
}

/* libopendkim's own resolver must never start or be shut down on ours. */
static int
dnshook_init(void **srv)
{
	(void)srv;
	return 0;
}

static void
dnshook_close(void *srv)
{
	(void)srv;
}

static int
dnshook_string(void *srv, const char *s)
{
	(void)srv;
	(void)s;
	return 0;
}

/* --- library ------------------------------------------------------------ */

/* Signatures past the maximum are ignored before any key is fetched. */
static DKIM_CBSTAT
prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct dkimv *v = dkim_get_user_context(dkim);
	int i;

	if (v == NULL)
		return DKIM_CBSTAT_CONTINUE;
	for (i = (int)v->lib->max_sigs; i < nsigs; i++) {
		dkim_sig_ignore(sigs[i]);
		v->nignored++;
	}
	return DKIM_CBSTAT_CONTINUE;
}

struct dkimv_lib *
dkimv_lib_new(struct dns *dns, unsigned timeout_ms, unsigned max_signatures)
{
	struct dkimv_lib *dl;
	/*
	 * BADSIGHANDLES: a malformed signature gets a result of its own
	 * rather than vanishing.  STRICTHDRS: a header block RFC 5322 3.6
	 * forbids (two From fields) is not verified, else a From prepended
	 * above a signed one would ride on its signature (RFC 6376 8.15).
	 */
	unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES |
	    DKIM_LIBFLAGS_STRICTHDRS;
	unsigned int secs, bits = DKIMV_RSA_BITS_MIN;

	if (dns == NULL) {
		log_err("dkim: no resolver");
		return NULL;
	}
	dl = xcalloc(1, sizeof(*dl));
	dl->dns = dns;
	dl->timeout_ms = timeout_ms != 0 ? timeout_ms : 1;
	dl->max_sigs = max_signatures == 0 ? DKIMV_SIGS_DEFAULT :
	    max_signatures > DKIMV_SIG_MAX ? DKIMV_SIG_MAX : max_signatures;
	if ((dl->lib = dkim_init(NULL, NULL)) == NULL) {
		log_err("dkim: dkim_init failed");
		free(dl);
		return NULL;
	}
	secs = (dl->timeout_ms + 999) / 1000;
	if (!dkim_libfeature(dl->lib, DKIM_FEATURE_ED25519))
		log_warn("dkim: libopendkim without ed25519-sha256: such "
		    "signatures will be neutral");
	if (dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &secs,
	    sizeof(secs)) != DKIM_STAT_OK ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits,
	    sizeof(bits)) != DKIM_STAT_OK ||
	    dkim_set_prescreen(dl->lib, prescreen) != DKIM_STAT_OK) {
		log_err("dkim: cannot configure libopendkim");
		dkim_close(dl->lib);
		free(dl);
		return NULL;
	}
	dkim_dns_set_query_service(dl->lib, dl);
	dkim_dns_set_query_start(dl->lib, dnshook_start);
	dkim_dns_set_query_cancel(dl->lib, dnshook_cancel);
	dkim_dns_set_query_waitreply(dl->lib, dnshook_waitreply);
	dkim_dns_set_init(dl->lib, dnshook_init);
	dkim_dns_set_close(dl->lib, dnshook_close);
	dkim_dns_set_nslist(dl->lib, dnshook_string);
	dkim_dns_set_config(dl->lib, dnshook_string);
	dkim_dns_set_trustanchor(dl->lib, dnshook_string);
	return dl;
}

void
dkimv_lib_free(struct dkimv_lib *dl)
{
	if (dl == NULL)
		return;
	dkim_close(dl->lib);
	free(dl);
}

/* --- one message -------------------------------------------------------- */

struct dkimv *
dkimv_new(struct dkimv_lib *dl, const char *qid)
{
	struct dkimv *v = xcalloc(1, sizeof(*v));
	DKIM_STAT st = DKIM_STAT_OK;

	v->lib = dl;
	str_escape_log(v->qid, sizeof(v->qid), qid != NULL ? qid : "-",
	    qid != NULL ? strlen(qid) : 1);
	v->dkim = dkim_verify(dl->lib, (const unsigned char *)v->qid, NULL,
	    &st);
	if (v->dkim == NULL) {
		log_err("%s: dkim: cannot start verification: %s", v->qid,
		    dkim_getresultstr(st));
		v->failed = true;
	} else if (dkim_set_user_context(v->dkim, v) != DKIM_STAT_OK) {
		log_err("%s: dkim: cannot set the context", v->qid);
		v->failed = true;
	}
	return v;
}

/*
 * Whether selector._domainkey.domain is a name DNS can hold: labels of 1
 * to 63 letters, digits, '-' or '_', at most DNS_NAME_MAX in all.  An
 * empty selector or domain (not copied: too long) is not.
 */
static bool
key_name_ok(const char *sel, const char *dom)
{
	char name[DNS_NAME_MAX + 2];
	const char *p;
	size_t lab = 0;
	int n;

	if (sel[0] == '\0' || dom[0] == '\0')
		return false;
	n = snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom);
	if (n < 0 || (size_t)n > DNS_NAME_MAX)
		return false;
	for (p = name; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (lab == 0 || lab > 63)
				return *p == '\0' && lab == 0 && p > name &&
				    p[-1] == '.';
			if (*p == '\0')
				return true;
			lab = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' &&
		    *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_')
			lab++;
		else
			return false;
	}
}

static void
set_result(struct dkimv_sig *s, const char *result, const char *reason)
{
	snprintf(s->result, sizeof(s->result), "%s", result);
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* Copies a tag value without its whitespace; -1 when it does not fit. */
static int
tag_copy(char *dst, size_t size, const char *v, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (strchr(" \t\r\n", v[i]) != NULL)
			continue;
		if (o + 1 >= size)
			return -1;
		dst[o++] = v[i];
	}
	dst[o] = '\0';
	return 0;
}

/*
 * Notes d=, s= and b= of a DKIM-Signature as soon as it is seen, for the
 * result of a message libopendkim will not parse (see dkimv_eom), and
 * starts its key lookup, so the lookups of several signatures overlap;
 * libopendkim's own query at eoh then joins it in the resolver.  A tag
 * list this cannot read is left to libopendkim to judge.
 */
static void
sig_peek(struct dkimv *v, const char *value)
{
	struct dkimv_sig *sig;
	char name[DNS_NAME_MAX + 2];
	const char *p = value;
	int n;

	if (v->nseen >= v->lib->max_sigs)
		return;
	sig = &v->seen[v->nseen++];
	while (*p != '\0') {
		const char *t, *te, *vs, *end;
		size_t vlen;

		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		for (t = p; t < end && strchr(" \t\r\n", *t) != NULL; t++)
			;
		for (te = t; te < end && *te != '=' &&
		    strchr(" \t\r\n", *te) == NULL; te++)
			;
		vs = memchr(t, '=', (size_t)(end - t));
		vlen = vs != NULL ? (size_t)(end - vs - 1) : 0;
		if (vs != NULL && te - t == 1 && *t == 'd' &&
		    tag_copy(sig->domain, sizeof(sig->domain), vs + 1,
		    vlen) != 0)
			sig->domain[0] = '\0';
		else if (vs != NULL && te - t == 1 && *t == 's' &&
		    tag_copy(sig->selector, sizeof(sig->selector), vs + 1,
		    vlen) != 0)
			sig->selector[0] = '\0';
		else if (vs != NULL && te - t == 1 && *t == 'b') {
			size_t i, o = 0;

			/* only the first characters are shown */
			for (i = 0; i < vlen && o < DKIMV_B_LEN; i++)
				if (strchr(" \t\r\n", vs[1 + i]) == NULL)
					sig->b[o++] = vs[1 + i];
			sig->b[o] = '\0';
		}
		p = *end == ';' ? end + 1 : end;
	}
	if (!key_name_ok(sig->selector, sig->domain))
		return;
	n = snprintf(name, sizeof(name), "%s._domainkey.%s", sig->selector,
	    sig->domain);
	if (n < 0 || (size_t)n > DNS_NAME_MAX)
		return;
	v->prefetch[v->nprefetch++] = dns_query_start(v->lib->dns, name,
	    DNS_T_TXT);
}

int
dkimv_header(struct dkimv *v, const char *name, const char *value)
{
	struct buf b;
	const char *p;
	DKIM_STAT st;
	size_t nseen;
	bool sig;

	if (v->failed || v->dkim == NULL)
		return -1;
	if (v->eoh_done)
		return 0;
	buf_init(&b, DKIMV_HEADER_MAX);
	if (buf_appendf(&b, "%s: ", name) != 0)
		goto toolong;
	/* libmilter folds with bare LF; DKIM canonicalises CRLF folds */
	for (p = value; *p != '\0'; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r')) {
			if (buf_append(&b, "\r\n", 2) != 0)
				goto toolong;
		} else if (buf_append(&b, p, 1) != 0)
			goto toolong;
	}
	sig = str_ieq(name, DKIM_SIGNHEADER);
	nseen = v->nseen;
	if (sig)
		sig_peek(v, value);
	st = dkim_header(v->dkim, (unsigned char *)b.p, b.len);
	if (st == DKIM_STAT_OK && str_ieq(name, "From") && v->nfrom++ == 0)
		v->from = xstrndup(b.p + strlen(name) + 1,
		    b.len - strlen(name) - 1);
	buf_free(&b);
	if (st == DKIM_STAT_SYNTAX) {
		/*
		 * A field libopendkim cannot parse (a DKIM-Signature with a
		 * broken tag list, among others) is the sender's fault: it
		 * is left out, a signature gets neutral, the rest goes on.
		 */
		if (sig && v->nseen > nseen)
			set_result(&v->seen[nseen], "neutral",
			    "malformed signature");
		else if (sig)
			v->nignored++;
		return 0;
	}
	if (st != DKIM_STAT_OK) {
		log_err("%s: dkim: header refused: %s", v->qid,
		    dkim_getresultstr(st));
		v->failed = true;
		return -1;
	}
	return 0;
toolong:
	buf_free(&b);
	log_err("%s: dkim: header field over %d bytes", v->qid,
	    DKIMV_HEADER_MAX);
	v->failed = true;
	return -1;
}

/*
 * Whether libopendkim's RFC 5322 check (STRICTHDRS) can take the one From
 * field apart: an address with a local part and a domain.
 */
static bool
from_parses(const char *value)
{
	char *copy = xstrdup(value);	/* dkim_mail_parse() writes in it */
	unsigned char *user = NULL, *domain = NULL;
	bool ok;

	ok = dkim_mail_parse((unsigned char *)copy, &user, &domain) == 0 &&
	    user != NULL && user[0] != '\0' && domain != NULL &&
	    domain[0] != '\0';
	free(copy);
	return ok;
}

int
dkimv_eoh(struct dkimv *v)
{
	if (v->failed || v->dkim == NULL)
		return -1;
	if (v->eoh_done)
		return 0;
	v->eoh_done = true;
	/*
	 * A single From libopendkim cannot take apart ("From: nobody"):
	 * its answer is DKIM_STAT_SYNTAX (RFC 5322 3.6), but libopendkim
	 * 2.11 leaks its copy of the field on that path, which every such
	 * message would repeat.  Give its answer without asking it.
	 */
	if (v->nfrom == 1 && !from_parses(v->from)) {
		v->eoh_stat = DKIM_STAT_SYNTAX;
		return 0;
	}
	v->eoh_stat = dkim_eoh(v->dkim);
	if (v->eoh_stat == DKIM_STAT_NOSIG)
		v->nosig = true;
	else if (v->eoh_stat == DKIM_STAT_NORESOURCE ||
	    v->eoh_stat == DKIM_STAT_INTERNAL ||
	    v->eoh_stat == DKIM_STAT_INVALID) {
		log_err("%s: dkim: end of headers: %s", v->qid,
		    dkim_getresultstr(v->eoh_stat));
		v->failed = true;
		return -1;
	}
	return 0;
}

int
dkimv_body(struct dkimv *v, const unsigned char *p, size_t len)
{
	DKIM_STAT st;

	if (v->failed || v->dkim == NULL || !v->eoh_done)
		return -1;
	if (v->nosig || v->eoh_stat != DKIM_STAT_OK || len == 0)
		return 0;
	/* dkim_body() does not write to the chunk; its prototype is old */
	st = dkim_body(v->dkim, (unsigned char *)(uintptr_t)p, len);
	if (st != DKIM_STAT_OK) {
		log_err("%s: dkim: body refused: %s", v->qid,
		    dkim_getresultstr(st));
		v->failed = true;
		return -1;
	}
	return 0;
}

static void
copy_field(char *dst, size_t size, const unsigned char *src)
{
	int n;

	dst[0] = '\0';
	if (src == NULL)
		return;
	n = snprintf(dst, size, "%s", (const char *)src);
	if (n < 0 || (size_t)n >= size)
		dst[0] = '\0';	/* left out rather than cut */
}

static const char *
sig_errstr(int err)
{
	const char *s = dkim_sig_geterrorstr(err);

	return s != NULL ? s : "unknown error";
}

/* The RFC 8601 result of one processed signature (see dkimv.h). */
static void
sig_judge(DKIM_SIGINFO *sig, struct dkimv_sig *s)
{
	unsigned int flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig), bh = dkim_sig_getbh(sig);
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
	bool ok = err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_UNKNOWN;

	(void)dkim_sig_getsignalg(sig, &alg);
	if (ok && (flags & DKIM_SIGFLAG_PASSED) != 0 &&
	    bh == DKIM_SIGBH_MATCH) {
		if (alg == DKIM_SIGN_RSASHA1)
			set_result(s, "fail", "rsa-sha1 not accepted "
			    "(RFC 8301)");
		else if (alg != DKIM_SIGN_ED25519SHA256 &&
		    s->bits < DKIMV_RSA_BITS_MIN)
			set_result(s, "fail", "key too small");
		else
			set_result(s, "pass", "");
		return;
	}
	/* a good header signature over a changed body: libopendkim keeps
	 * PASSED and sets BADSIG */
	if ((ok || err == DKIM_SIGERROR_BADSIG) && bh == DKIM_SIGBH_MISMATCH) {
		set_result(s, "fail", "body hash mismatch");
		return;
	}
	if (ok && (flags & DKIM_SIGFLAG_PROCESSED) != 0) {
		set_result(s, "fail", "signature mismatch");
		return;
	}
	switch (err) {
	case DKIM_SIGERROR_UNKNOWN:
	case DKIM_SIGERROR_OK:
		set_result(s, "permerror", "not verified");
		return;
	case DKIM_SIGERROR_KEYFAIL:
		/* a name no server can answer fails for ever, not for now */
		if (key_name_ok(s->selector, s->domain))
			set_result(s, "temperror", "key lookup failed");
		else
			set_result(s, "permerror", "invalid key name");
		return;
	case DKIM_SIGERROR_BADSIG:
		set_result(s, "fail", "signature mismatch");
		return;
	case DKIM_SIGERROR_KEYREVOKED:
		set_result(s, "fail", "key revoked");
		return;
	case DKIM_SIGERROR_EXPIRED:
		set_result(s, "fail", "signature expired");
		return;
	case DKIM_SIGERROR_KEYTOOSMALL:
		set_result(s, "fail", "key too small");
		return;
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_MBSFAILED:
	case DKIM_SIGERROR_INVALID_H:	/* From unsigned: RFC 6376 6.1.1 */
		set_result(s, "permerror", sig_errstr(err));
		return;
	default:
		/* the signature's own syntax, algorithm or tags */
		set_result(s, "neutral", sig_errstr(err));
		return;
	}
}

static int
result_rank(const char *r)
{
	static const char *const order[] = { "pass", "temperror", "fail",
	    "policy", "neutral", "permerror", NULL };
	int i;

	for (i = 0; order[i] != NULL; i++)
		if (strcmp(r, order[i]) == 0)
			return i;
	return i;
}

/* best: "none" until the first signature, then the highest rank. */
static void
best_update(struct dkimv_result *res, const char *result)
{
	if (strcmp(res->best, "none") == 0 ||
	    result_rank(result) < result_rank(res->best))
		snprintf(res->best, sizeof(res->best), "%s", result);
}

int
dkimv_eom(struct dkimv *v, struct dkimv_result *res)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0, i;
	size_t nlib;
	bool testkey = false;
	DKIM_STAT st;

	memset(res, 0, sizeof(*res));
	snprintf(res->best, sizeof(res->best), "none");
	if (!v->failed && v->dkim != NULL && !v->eoh_done)
		(void)dkimv_eoh(v);
	if (v->failed || v->dkim == NULL) {
		snprintf(res->best, sizeof(res->best), "temperror");
		return -1;
	}
	res->nignored = v->nignored;
	if (v->nosig && v->nseen == 0)
		return 0;
	if (v->eoh_stat == DKIM_STAT_OK && !v->nosig) {
		st = dkim_eom(v->dkim, &testkey);
		if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL ||
		    st == DKIM_STAT_INVALID) {
			log_err("%s: dkim: end of message: %s", v->qid,
			    dkim_getresultstr(st));
			snprintf(res->best, sizeof(res->best), "temperror");
			return -1;
		}
	}
	if (v->nosig || dkim_getsiglist(v->dkim, &sigs, &nsigs) !=
	    DKIM_STAT_OK)
		nsigs = 0;
	if (nsigs == 0 && v->nseen > 0) {
		/*
		 * libopendkim refused the header block before reading the
		 * signatures, or found none it could parse: each DKIM-
		 * Signature field seen still gets its result.
		 */
		const char *r = v->nosig ? "neutral" : "permerror";

		for (i = 0; i < (int)v->nseen; i++) {
			res->sigs[i] = v->seen[i];
			if (res->sigs[i].result[0] == '\0')
				set_result(&res->sigs[i], r, v->nosig ?
				    "signature not parsed" :
				    v->eoh_stat == DKIM_STAT_SYNTAX ?
				    "header fields against RFC 5322 3.6" :
				    "message not verifiable");
			best_update(res, res->sigs[i].result);
		}
		res->nsigs = v->nseen;
		return 0;
	}
	for (i = 0; i < nsigs && res->nsigs < DKIMV_SIG_MAX; i++) {
		struct dkimv_sig *s = &res->sigs[res->nsigs];
		unsigned int flags = dkim_sig_getflags(sigs[i]);
		const unsigned char *b;
		size_t o = 0;

		if ((flags & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		res->nsigs++;
		copy_field(s->domain, sizeof(s->domain),
		    dkim_sig_getdomain(sigs[i]));
		copy_field(s->selector, sizeof(s->selector),
		    dkim_sig_getselector(sigs[i]));
		b = dkim_sig_gettagvalue(sigs[i], false,
		    (unsigned char *)"b");
		for (; b != NULL && *b != '\0' && o < DKIMV_B_LEN; b++)
			if (strchr(" \t\r\n", *b) == NULL)
				s->b[o++] = (char)*b;
		s->b[o] = '\0';
		s->has_l = dkim_sig_gettagvalue(sigs[i], false,
		    (unsigned char *)"l") != NULL;
		if (dkim_sig_getkeysize(sigs[i], &s->bits) != DKIM_STAT_OK)
			s->bits = 0;
		{
			dkim_alg_t alg;

			s->ed25519 = dkim_sig_getsignalg(sigs[i], &alg) ==
			    DKIM_STAT_OK && alg == DKIM_SIGN_ED25519SHA256;
		}
		if (v->eoh_stat != DKIM_STAT_OK &&
		    (flags & DKIM_SIGFLAG_PROCESSED) == 0)
			set_result(s, "permerror",
			    v->eoh_stat == DKIM_STAT_SYNTAX ?
			    "header fields against RFC 5322 3.6" :
			    "message not verifiable");
		else
			sig_judge(sigs[i], s);
		if ((flags & DKIM_SIGFLAG_TESTKEY) != 0) {
			size_t n = strlen(s->reason);

			s->testing = true;
			snprintf(s->reason + n, sizeof(s->reason) - n, "%s%s",
			    n != 0 ? "; " : "", "testing key (t=y)");
		}
		/* RFC 6376 3.6.1: a signer in testing mode is treated as
		 * unsigned mail, so its signature that does not verify is
		 * not counted in best (the A-R still shows it) */
		if (!s->testing || strcmp(s->result, "pass") == 0)
			best_update(res, s->result);
	}
	/*
	 * The signatures dkim_header() refused, after libopendkim's own,
	 * unless it reported them anyway (it does when it could read b=):
	 * the same d= and b= is the same field.
	 */
	nlib = res->nsigs;
	for (i = 0; i < (int)v->nseen && res->nsigs < DKIMV_SIG_MAX; i++) {
		const struct dkimv_sig *seen = &v->seen[i];
		size_t j;

		if (seen->result[0] == '\0')
			continue;
		for (j = 0; j < nlib; j++)
			if (strcmp(res->sigs[j].b, seen->b) == 0 &&
			    strcmp(res->sigs[j].domain, seen->domain) == 0)
				break;
		if (j < nlib)
			continue;
		res->sigs[res->nsigs++] = *seen;
		best_update(res, seen->result);
	}
	return 0;
}

void
dkimv_free(struct dkimv *v)
{
	size_t i;

	if (v == NULL)
		return;
	if (v->dkim != NULL)
		dkim_free(v->dkim);
	free(v->from);
	for (i = 0; i < v->nprefetch; i++)
		dns_query_free(v->prefetch[i]);
	free(v);
}
