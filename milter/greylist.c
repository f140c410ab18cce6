/*
 * greylist.c - greylisting triplet logic, independent of the store: the
 * sender identity (client network or SPF-passing domain), key building and
 * the state transitions of DESIGN.md section 4 (grey_decide()).
 * Owns: struct greylist (a backend handle and its ops); no locks of its
 * own, the backends lock (store.h).
 * Limits: keys <= GREY_KEY_MAX bytes (sender and recipient hashed beyond).
 * Errors: -1 and a log line; the caller applies greylist_on_error.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

struct greylist {
	const struct grey_store_ops *ops;	/* borrows (static) */
	void *h;				/* owns, through ops->close */
};

const char *
greylist_state_name(enum greylist_state s)
{
	switch (s) {
	case GREY_NEW:
		return "new";
	case GREY_EARLY:
		return "early";
	case GREY_PASSED:
		return "passed";
	case GREY_ALLOWED:
		return "allowed";
	}
	return "?";
}

int
greylist_state_parse(const char *s)
{
	int st;

	for (st = GREY_NEW; st <= GREY_ALLOWED; st++)
		if (strcmp(s, greylist_state_name((enum greylist_state)st)) ==
		    0)
			return st;
	return -1;
}

struct greylist *
greylist_from_store(const struct grey_store_ops *ops, void *h)
{
	struct greylist *g = xcalloc(1, sizeof(*g));

	g->ops = ops;
	g->h = h;
	return g;
}

const struct grey_store_ops *
greylist_ops(struct greylist *g, void **h)
{
	*h = g->h;
	return g->ops;
}

struct greylist *
greylist_open(const char *spec, char *err, size_t errlen)
{
	void *h;

	if (strncmp(spec, "lmdb:", 5) == 0) {
		if ((h = grey_lmdb_open(spec + 5, err, errlen)) == NULL)
			return NULL;
		return greylist_from_store(&grey_lmdb_ops, h);
	}
	if (strncmp(spec, "redis://", 8) == 0) {
		if ((h = grey_redis_open(spec, err, errlen)) == NULL)
			return NULL;
		return greylist_from_store(&grey_redis_ops, h);
	}
	snprintf(err, errlen, "greylist store '%s': expected lmdb:DIR or "
	    "redis://HOST:PORT/DB or redis:///SOCKET?db=N", spec);
	return NULL;
}

void
greylist_close(struct greylist *g)
{
	if (g == NULL)
		return;
	g->ops->close(g->h);
	free(g);
}

int
greylist_identity(const struct greylist_params *p, const char *client_ip,
    const char *spf_pass_domain, char *dst, size_t size)
{
	unsigned char a[16];
	char txt[INET6_ADDRSTRLEN];
	unsigned bits, i;
	int af, n;

	if (spf_pass_domain != NULL && spf_pass_domain[0] != '\0') {
		char dom[256];
		size_t len = strlen(spf_pass_domain);

		/* Same folding as addr_domain_normalise(): lower case, one
		 * trailing dot dropped; escaping keeps the key unambiguous. */
		if (len > 0 && spf_pass_domain[len - 1] == '.')
			len--;
		if (len == 0 || len >= sizeof(dom))
			return -1;
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)spf_pass_domain[i];

			if (c <= 0x20 || c >= 0x7f || c == '%' || c == '/')
				return -1;	/* not a domain SPF passed */
			dom[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		dom[len] = '\0';
		n = snprintf(dst, size, "spf:%s", dom);
		return n < 0 || (size_t)n >= size ? -1 : 0;
	}
	if (client_ip == NULL)
		return -1;
	if (inet_pton(AF_INET, client_ip, a) == 1) {
		af = AF_INET;
	} else if (inet_pton(AF_INET6, client_ip, a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		af = AF_INET6;
		/* ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack
		 * socket: group it with its IPv4 network, or the same host
		 * would be greylisted once per address family. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memmove(a, a + 12, 4);
			af = AF_INET;
		}
	} else
		return -1;
	if (af == AF_INET) {
		bits = p->netmask4 == 0 ? 24 : p->netmask4;
		if (bits > 32)
			bits = 32;
	} else {
		bits = p->netmask6 == 0 ? 64 : p->netmask6;
		if (bits > 128)
			bits = 128;
	}
	for (i = 0; i < (af == AF_INET ? 4u : 16u); i++) {
		if (bits >= 8 * (i + 1))
			continue;
		if (bits <= 8 * i)
			a[i] = 0;
		else
			a[i] &= (unsigned char)(0xff00u >> (bits - 8 * i));
	}
	if (inet_ntop(af, a, txt, sizeof(txt)) == NULL)
		return -1;
	n = snprintf(dst, size, "%s/%u", txt, bits);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Appends s escaped and (fold) lower-cased; -1 when it does not fit. */
static int
key_put(char *dst, size_t size, size_t *len, const char *s, bool fold)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (*len + 4 > size)
			return -1;
		/* The separator, other controls and spaces must not appear
		 * raw: "a\tb","c" and "a","b\tc" would share a key, and the
		 * listing would be ambiguous. */
		if (c <= 0x20 || c == 0x7f || c == '%') {
			dst[(*len)++] = '%';
			dst[(*len)++] = hex[c >> 4];
			dst[(*len)++] = hex[c & 15];
		} else
			dst[(*len)++] = (char)(fold && c >= 'A' && c <= 'Z' ?
			    c + 32 : c);
	}
	dst[*len] = '\0';
	return 0;
}

int
grey_key_identity(const char *identity, char *dst, size_t size)
{
	size_t len = 0;

	if (size > GREY_KEY_MAX + 1)
		size = GREY_KEY_MAX + 1;
	if (key_put(dst, size, &len, GREY_IDENTITY_PREFIX, false) != 0 ||
	    key_put(dst, size, &len, identity, true) != 0)
		return -1;
	return (int)len;
}

int
grey_key_triplet(const char *identity, const char *sender, const char *rcpt,
    char *dst, size_t size)
{
	char sep[2] = { GREY_SEP, '\0' };
	size_t len = 0, base;

	if (size > GREY_KEY_MAX + 1)
		size = GREY_KEY_MAX + 1;
	if (sender[0] == '\0')
		sender = GREY_NULL_SENDER;
	if (key_put(dst, size, &len, GREY_TRIPLET_PREFIX, false) != 0 ||
	    key_put(dst, size, &len, identity, true) != 0 || len + 2 > size)
		return -1;
	dst[len++] = sep[0];
	base = len;
	if (key_put(dst, size, &len, sender, true) == 0 && len + 2 <= size) {
		dst[len++] = sep[0];
		if (key_put(dst, size, &len, rcpt, true) == 0)
			return (int)len;
	}

	/* Too long: keep the identity in clear (for `list` and `allow
	 * --network`) and hash the folded, escaped sender and recipient. */
	{
		EVP_MD_CTX *ctx;
		unsigned char md[32];
		char tmp[GREY_KEY_MAX + 1];
		const char *parts[3] = { sender, sep, rcpt };
		static const char hex[] = "0123456789abcdef";
		unsigned mdlen = 0;
		int ok;

		if (base + 1 + 64 + 1 > size)
			return -1;
		if ((ctx = EVP_MD_CTX_new()) == NULL)
			return -1;
		ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		for (size_t i = 0; ok && i < 3; i++) {
			const char *s = parts[i];

			/* In slices, so that no input length is too long. */
			while (ok && *s != '\0') {
				size_t n = 0;

				while (*s != '\0' && n + 4 < sizeof(tmp)) {
					char one[2] = { *s++, '\0' };

					if (i == 1)
						tmp[n++] = one[0];
					else
						(void)key_put(tmp, sizeof(tmp),
						    &n, one, true);
				}
				ok = EVP_DigestUpdate(ctx, tmp, n);
			}
		}
		ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
		EVP_MD_CTX_free(ctx);
		if (!ok)
			return -1;
		len = base;
		dst[len++] = '#';
		for (size_t i = 0; i < 32; i++) {
			dst[len++] = hex[md[i] >> 4];
			dst[len++] = hex[md[i] & 15];
		}
		dst[len] = '\0';
		return (int)len;
	}
}

int
grey_key_split(const char *key, size_t len, struct grey_entry *e, char *buf,
    size_t size)
{
	char *t1, *t2;

	if (len + 1 > size || memchr(key, '\0', len) != NULL)
		return -1;
	memcpy(buf, key, len);
	buf[len] = '\0';
	memset(e, 0, sizeof(*e));
	if (strncmp(buf, GREY_IDENTITY_PREFIX, 2) == 0) {
		e->identity = buf + 2;
		return 0;
	}
	if (strncmp(buf, GREY_TRIPLET_PREFIX, 2) != 0 ||
	    (t1 = strchr(buf + 2, GREY_SEP)) == NULL)
		return -1;
	*t1++ = '\0';
	e->identity = buf + 2;
	e->sender = t1;
	if ((t2 = strchr(t1, GREY_SEP)) != NULL) {
		*t2++ = '\0';
		e->rcpt = t2;
	} else if (t1[0] == '#')
		e->rcpt = "";
	else
		return -1;
	return 0;
}

/* a + b without wrapping: a `now` near the top of the range must not make
 * an old record look fresh. */
static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Seconds after which a sighting of an allowed triplet (or identity)
 * writes its timestamps again: expire / GREY_REFRESH_DIV, at most
 * GREY_REFRESH_MAX.  In between, an allowed message is a read only. */
uint64_t
grey_refresh_after(const struct greylist_params *p)
{
	uint64_t r = p->expire / GREY_REFRESH_DIV;

	return r > GREY_REFRESH_MAX ? GREY_REFRESH_MAX : r;
}

/* Whether a record last refreshed at `last` is due for another write.  A
 * clock that stepped back (now < last) is not a reason to write. */
static bool
refresh_due(const struct greylist_params *p, uint64_t last, uint64_t now)
{
	return now >= add_sat(last, grey_refresh_after(p));
}

unsigned
grey_decide(const struct greylist_params *p, uint64_t now,
    struct grey_rec *t, struct grey_rec *id, enum greylist_state *out)
{
	unsigned w = 0;

	/* Expiry is judged with the current params (a reload may change
	 * them); expires_at only tells the store when it may delete. */
	if (t->present) {
		if (t->passed ? now > add_sat(t->last_pass, p->expire) :
		    now > add_sat(t->first_seen, p->window))
			t->present = false;	/* expired: new again */
	}
	if (id->present && now > add_sat(id->last_seen, p->expire))
		id->present = false;

	if (t->present && t->passed) {
		*out = GREY_ALLOWED;
		/* Each sighting keeps a regular correspondent allowed; the
		 * timestamps move at most once per grey_refresh_after(), so
		 * that most allowed messages cost no write (and no
		 * synchronous commit).  The record may so expire up to that
		 * much earlier than expire after its last sighting. */
		if (refresh_due(p, t->last_pass, now)) {
			t->last_seen = t->last_pass = now;
			t->expires_at = add_sat(now, p->expire);
			w |= GREY_WRITE_TRIPLET;
		}
		if (id->present && refresh_due(p, id->last_seen, now)) {
			id->last_seen = now;
			id->expires_at = add_sat(now, p->expire);
			w |= GREY_WRITE_IDENTITY;
		}
		return w;
	} else if (id->present &&
	    (id->manual || (p->autoallow > 0 && id->count >= p->autoallow))) {
		*out = GREY_ALLOWED;
		if (t->present && refresh_due(p, t->last_seen, now)) {
			t->last_seen = now;
			w |= GREY_WRITE_TRIPLET;
		}
		/* An autoallowed sender that keeps sending stays allowed
		 * (refreshed as above). */
		if (refresh_due(p, id->last_seen, now)) {
			id->last_seen = now;
			id->expires_at = add_sat(now, p->expire);
			w |= GREY_WRITE_IDENTITY;
		}
		return w;
	} else if (!t->present) {
		*out = GREY_NEW;
		memset(t, 0, sizeof(*t));
		t->present = true;
		t->first_seen = t->last_seen = now;
		t->expires_at = add_sat(now, p->window);
		return GREY_WRITE_TRIPLET;
	} else if (now < add_sat(t->first_seen, p->delay)) {
		*out = GREY_EARLY;
		t->last_seen = now;
		return GREY_WRITE_TRIPLET;
	}
	*out = GREY_PASSED;
	t->passed = true;
	t->last_seen = t->last_pass = now;
	t->expires_at = add_sat(now, p->expire);
	w |= GREY_WRITE_TRIPLET;
	if (!id->present) {
		memset(id, 0, sizeof(*id));
		id->present = true;
		id->first_seen = now;
	}
	/* One pass a triplet (it is allowed, not passed, afterwards), so
	 * this counts distinct triplets. */
	if (id->count < UINT32_MAX)
		id->count++;
	id->last_seen = now;
	id->expires_at = add_sat(now, p->expire);
	return w | GREY_WRITE_IDENTITY;
}

int
greylist_check(struct greylist *g, const struct greylist_params *p,
    const char *client_ip, const char *spf_pass_domain,
    const char *mail_from, const char *rcpt, uint64_t now,
    enum greylist_state *out)
{
	char identity[300], tkey[GREY_KEY_MAX + 1], ikey[GREY_KEY_MAX + 1];
	int tlen, ilen, rc;

	if (greylist_identity(p, client_ip, spf_pass_domain, identity,
	    sizeof(identity)) != 0) {
		char esc[80];

		str_escape_log(esc, sizeof(esc), client_ip != NULL ?
		    client_ip : "(none)", client_ip != NULL ?
		    strlen(client_ip) : 6);
		log_warn("greylist: no sender identity for client '%s'", esc);
		return -1;
	}
	if ((tlen = grey_key_triplet(identity, mail_from != NULL ? mail_from :
	    "", rcpt != NULL ? rcpt : "", tkey, sizeof(tkey))) < 0 ||
	    (ilen = grey_key_identity(identity, ikey, sizeof(ikey))) < 0) {
		log_warn("greylist: key too long for identity %s", identity);
		return -1;
	}
	rc = g->ops->check(g->h, p, tkey, (size_t)tlen, ikey, (size_t)ilen,
	    now, out);
	metrics_greylist(rc == 0 ? (int)*out : -1);
	return rc;
}
