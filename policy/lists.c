/*
 * lists.c - lists of domains, addresses and networks ("list NAME {...}",
 * "list NAME file", internal domains, trusted networks) and IP parsing.
 * Names live in an open-addressing hash set over one string arena;
 * networks in one hash set per family keyed by (masked address, prefix
 * length), looked up once per prefix length present, so a lookup costs
 * at most 33 (IPv4) or 129 (IPv6) probes whatever the size of the list.
 * Owns: the sets of each list.  Immutable after load; lookups reentrant.
 * Limits: POL_LIST_ENTRIES_MAX entries, POL_LIST_FILE_MAX bytes and
 * POL_LIST_LINE_MAX bytes a line per file.  Errors: -1 with a message,
 * or reported through the load context for list files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pol_int.h"

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint32_t
str_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h = mix64(h);
	return (uint32_t)(h >> 32) | 1;	/* never 0 */
}

/* ---- string set ---- */

static void
strset_free(struct pol_strset *set)
{
	free(set->slot);
	free(set->arena);
	memset(set, 0, sizeof(*set));
}

static void
strset_resize(struct pol_strset *set)
{
	uint64_t *old = set->slot, *ns;
	size_t ocap = set->cap, ncap = ocap ? ocap * 2 : 16, i, j;

	ns = pol_xcalloc(ncap, sizeof(*ns));
	for (i = 0; i < ocap; i++) {
		if (old[i] == 0)
			continue;
		j = (size_t)(old[i] >> 32) & (ncap - 1);
		while (ns[j] != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = old[i];
	}
	free(old);
	set->slot = ns;
	set->cap = ncap;
}

static bool
strset_has(const struct pol_strset *set, const char *s, size_t len)
{
	uint32_t h;
	size_t j;
	uint64_t v;
	const char *e;

	if (set->cap == 0)
		return false;
	h = str_hash(s, len);
	for (j = h & (set->cap - 1); (v = set->slot[j]) != 0;
	    j = (j + 1) & (set->cap - 1)) {
		if ((uint32_t)(v >> 32) != h)
			continue;
		e = set->arena + (uint32_t)v - 1;
		if (strncmp(e, s, len) == 0 && e[len] == '\0')
			return true;
	}
	return false;
}

/* 1: added, 0: already there, -1: arena full. */
static int
strset_add(struct pol_strset *set, const char *s, size_t len)
{
	uint32_t h;
	size_t j;

	if (strset_has(set, s, len))
		return 0;
	if (set->alen + len + 1 >= UINT32_MAX)
		return -1;
	if ((set->n + 1) * 2 > set->cap)
		strset_resize(set);
	pol_grow(&set->arena, &set->acap, set->alen + len + 1, 1);
	h = str_hash(s, len);
	for (j = h & (set->cap - 1); set->slot[j] != 0;
	    j = (j + 1) & (set->cap - 1))
		;
	set->slot[j] = (uint64_t)h << 32 | (uint64_t)(set->alen + 1);
	memcpy(set->arena + set->alen, s, len);
	set->arena[set->alen + len] = '\0';
	set->alen += len + 1;
	set->n++;
	return 1;
}

/* ---- network set ---- */

static void
cidrset_free(struct pol_cidrset *set)
{
	free(set->v4);
	free(set->v6);
	memset(set, 0, sizeof(*set));
}

static uint32_t
ip4_of(const struct pol_ip *ip)
{
	return (uint32_t)ip->addr[0] << 24 | (uint32_t)ip->addr[1] << 16 |
	    (uint32_t)ip->addr[2] << 8 | ip->addr[3];
}

static void
ip6_of(const struct pol_ip *ip, uint64_t *hi, uint64_t *lo)
{
	int i;

	*hi = *lo = 0;
	for (i = 0; i < 8; i++) {
		*hi = *hi << 8 | ip->addr[i];
		*lo = *lo << 8 | ip->addr[8 + i];
	}
}

static uint32_t
mask4(unsigned plen)
{
	return plen == 0 ? 0 : 0xffffffffu << (32 - plen);
}

static void
mask6(unsigned plen, uint64_t *mhi, uint64_t *mlo)
{
	*mhi = plen == 0 ? 0 : plen >= 64 ? ~0ULL : ~0ULL << (64 - plen);
	*mlo = plen <= 64 ? 0 : plen == 128 ? ~0ULL : ~0ULL << (128 - plen);
}

static uint64_t
v6_hash(uint64_t hi, uint64_t lo, unsigned plen1)
{
	return mix64(hi ^ mix64(lo ^ plen1));
}

static bool
v4_has(const struct pol_cidrset *set, uint64_t key)
{
	size_t j;

	if (set->cap4 == 0)
		return false;
	for (j = mix64(key) & (set->cap4 - 1); set->v4[j] != 0;
	    j = (j + 1) & (set->cap4 - 1))
		if (set->v4[j] == key)
			return true;
	return false;
}

static bool
v6_has(const struct pol_cidrset *set, uint64_t hi, uint64_t lo,
    unsigned plen1)
{
	const struct pol_cidr6 *e;
	size_t j;

	if (set->cap6 == 0)
		return false;
	for (j = v6_hash(hi, lo, plen1) & (set->cap6 - 1);
	    (e = &set->v6[j])->plen1 != 0; j = (j + 1) & (set->cap6 - 1))
		if (e->hi == hi && e->lo == lo && e->plen1 == plen1)
			return true;
	return false;
}

/* 1: added, 0: already there.  ip must be masked to plen. */
static int
cidrset_add(struct pol_cidrset *set, const struct pol_ip *ip,
    unsigned plen)
{
	uint64_t key, hi, lo, *n4;
	struct pol_cidr6 *n6;
	size_t ncap, i, j;

	if (ip->family == AF_INET) {
		key = (uint64_t)ip4_of(ip) << 8 | (plen + 1);
		if (v4_has(set, key))
			return 0;
		if ((set->n4 + 1) * 2 > set->cap4) {
			ncap = set->cap4 ? set->cap4 * 2 : 16;
			n4 = pol_xcalloc(ncap, sizeof(*n4));
			for (i = 0; i < set->cap4; i++) {
				if (set->v4[i] == 0)
					continue;
				for (j = mix64(set->v4[i]) & (ncap - 1);
				    n4[j] != 0; j = (j + 1) & (ncap - 1))
					;
				n4[j] = set->v4[i];
			}
			free(set->v4);
			set->v4 = n4;
			set->cap4 = ncap;
		}
		for (j = mix64(key) & (set->cap4 - 1); set->v4[j] != 0;
		    j = (j + 1) & (set->cap4 - 1))
			;
		set->v4[j] = key;
		set->n4++;
		set->lens4 |= 1ULL << plen;
		return 1;
	}
	ip6_of(ip, &hi, &lo);
	if (v6_has(set, hi, lo, plen + 1))
		return 0;
	if ((set->n6 + 1) * 2 > set->cap6) {
		ncap = set->cap6 ? set->cap6 * 2 : 16;
		n6 = pol_xcalloc(ncap, sizeof(*n6));
		for (i = 0; i < set->cap6; i++) {
			struct pol_cidr6 *e = &set->v6[i];

			if (e->plen1 == 0)
				continue;
			for (j = v6_hash(e->hi, e->lo, e->plen1) & (ncap - 1);
			    n6[j].plen1 != 0; j = (j + 1) & (ncap - 1))
				;
			n6[j] = *e;
		}
		free(set->v6);
		set->v6 = n6;
		set->cap6 = ncap;
	}
	for (j = v6_hash(hi, lo, plen + 1) & (set->cap6 - 1);
	    set->v6[j].plen1 != 0; j = (j + 1) & (set->cap6 - 1))
		;
	set->v6[j].hi = hi;
	set->v6[j].lo = lo;
	set->v6[j].plen1 = plen + 1;
	set->n6++;
	set->lens6[plen / 64] |= 1ULL << (plen % 64);
	return 1;
}

static bool
cidrset_has4(const struct pol_cidrset *set, uint32_t a)
{
	int p;

	if (set->n4 == 0)
		return false;
	for (p = 32; p >= 0; p--)
		if ((set->lens4 >> p & 1) &&
		    v4_has(set, (uint64_t)(a & mask4((unsigned)p)) << 8 |
		    (uint64_t)(p + 1)))
			return true;
	return false;
}

static bool
cidrset_has(const struct pol_cidrset *set, const struct pol_ip *ip)
{
	uint64_t hi, lo, mhi, mlo;
	int p;

	if (ip->family == AF_INET)
		return cidrset_has4(set, ip4_of(ip));
	if (ip->family != AF_INET6)
		return false;
	ip6_of(ip, &hi, &lo);
	/* an IPv4-mapped address (::ffff:a.b.c.d) also matches as IPv4 */
	if (hi == 0 && (lo >> 32) == 0xffff &&
	    cidrset_has4(set, (uint32_t)lo))
		return true;
	if (set->n6 == 0)
		return false;
	for (p = 128; p >= 0; p--) {
		if (!(set->lens6[p / 64] >> (p % 64) & 1))
			continue;
		mask6((unsigned)p, &mhi, &mlo);
		if (v6_has(set, hi & mhi, lo & mlo, (unsigned)p + 1))
			return true;
	}
	return false;
}

/* ---- addresses ---- */

int
pol_ip_parse(const char *s, struct pol_ip *ip)
{
	char buf[64];
	size_t len;

	if (s == NULL || ip == NULL)
		return -1;
	/* Sendmail writes IPv6 client addresses as "IPv6:..." */
	if (strncasecmp(s, "ipv6:", 5) == 0)
		s += 5;
	len = strlen(s);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ip, 0, sizeof(*ip));
	if (strchr(buf, ':') != NULL) {
		if (inet_pton(AF_INET6, buf, ip->addr) != 1)
			return -1;
		ip->family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, buf, ip->addr) != 1)
			return -1;
		ip->family = AF_INET;
	}
	return 0;
}

int
pol_cidr_parse(const char *s, struct pol_ip *ip, unsigned *plen,
    bool *hostbits)
{
	char buf[64];
	const char *slash;
	unsigned long l;
	unsigned max, i;
	size_t alen;

	*hostbits = false;
	if ((slash = strchr(s, '/')) == NULL)
		alen = strlen(s);
	else
		alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(ip, 0, sizeof(*ip));
	if (strchr(buf, ':') != NULL) {
		if (inet_pton(AF_INET6, buf, ip->addr) != 1)
			return -1;
		ip->family = AF_INET6;
		max = 128;
	} else {
		if (inet_pton(AF_INET, buf, ip->addr) != 1)
			return -1;
		ip->family = AF_INET;
		max = 32;
	}
	*plen = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3 ||
		    pol_parse_uint(slash + 1, max, &l) != 0)
			return -1;
		*plen = (unsigned)l;
	}
	for (i = *plen; i < max; i++) {
		if (ip->addr[i / 8] & (0x80 >> (i % 8))) {
			*hostbits = true;
			ip->addr[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
		}
	}
	return *hostbits ? -1 : 0;
}

bool
pol_ip_equal(const struct pol_ip *a, const struct pol_ip *b)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (a->family == b->family)
		return memcmp(a->addr, b->addr,
		    a->family == AF_INET ? 4 : 16) == 0;
	if (a->family == AF_INET6 && b->family == AF_INET)
		return memcmp(a->addr, mapped, 12) == 0 &&
		    memcmp(a->addr + 12, b->addr, 4) == 0;
	if (a->family == AF_INET && b->family == AF_INET6)
		return pol_ip_equal(b, a);
	return false;
}

/* Labels of letters, digits, '-', '_' or UTF-8; not all-numeric TLD. */
bool
pol_domain_valid(const char *s, size_t len)
{
	size_t i, lab = 0, last = 0;
	bool digits = true, dot = false;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			dot = true;
			last = i + 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c >= 0x80))
			return false;
		if (++lab > 63)
			return false;
	}
	if (lab == 0)
		return false;
	for (i = last; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			digits = false;
	/* "300.1.2.3" is a mistyped address, not a domain */
	return !(dot && digits);
}

/* ---- lists ---- */

struct pol_list *
pol_list_new(const char *name, struct pol_pos pos)
{
	struct pol_list *l = pol_xcalloc(1, sizeof(*l));

	if (name != NULL)
		l->name = pol_xstrdup(name);
	l->pos = pos;
	return l;
}

void
pol_list_free(struct pol_list *l)
{
	if (l == NULL)
		return;
	free(l->name);
	free(l->path);
	strset_free(&l->names);
	cidrset_free(&l->nets);
	free(l);
}

static const char *
kinds_text(unsigned mask)
{
	switch (mask & POL_ENT_ANY) {
	case POL_ENT_DOMAIN:
		return "a domain";
	case POL_ENT_NET:
		return "an IP address or network";
	case POL_ENT_ADDR:
		return "an address";
	default:
		return "a domain, an address or a network";
	}
}

static bool
is_net_like(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '/' || s[i] == ':' ||
		    (pol_lc((unsigned char)s[i]) >= 'a' &&
		    pol_lc((unsigned char)s[i]) <= 'f')))
			return false;
	return len > 0 && (memchr(s, ':', len) != NULL ||
	    (s[0] >= '0' && s[0] <= '9'));
}

static int
list_insert(struct pol_list *l, int r, char *err, size_t errlen)
{
	if (r < 0) {
		snprintf(err, errlen, "list is too large");
		return -1;
	}
	if (r > 0) {
		if (l->count >= POL_LIST_ENTRIES_MAX) {
			snprintf(err, errlen, "list has more than %u entries",
			    POL_LIST_ENTRIES_MAX);
			return -1;
		}
		l->count++;
	}
	return 0;
}

int
pol_list_add(struct pol_list *l, const char *s, size_t len, unsigned mask,
    bool quoted, char *err, size_t errlen)
{
	char buf[POL_LIST_LINE_MAX + 1], q[80], hint[64];
	struct pol_ip ip;
	unsigned plen;
	bool hostbits;
	const char *at;
	size_t i;

	if (len == 0) {
		snprintf(err, errlen, "empty entry");
		return -1;
	}
	if (len > POL_LIST_LINE_MAX) {
		snprintf(err, errlen, "entry longer than %u bytes",
		    POL_LIST_LINE_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		buf[i] = (char)pol_lc((unsigned char)s[i]);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "NUL byte in entry");
		return -1;
	}
	if (is_net_like(buf, len)) {
		if (pol_cidr_parse(buf, &ip, &plen, &hostbits) == 0) {
			if (!(mask & POL_ENT_NET))
				goto bad;
			/* ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/N-96 */
			if (ip.family == AF_INET6 && plen >= 96 &&
			    memcmp(ip.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff",
			    12) == 0) {
				memmove(ip.addr, ip.addr + 12, 4);
				memset(ip.addr + 4, 0, 12);
				ip.family = AF_INET;
				plen -= 96;
			}
			return list_insert(l, cidrset_add(&l->nets, &ip, plen),
			    err, errlen);
		}
		if (hostbits) {
			inet_ntop(ip.family, ip.addr, hint, sizeof(hint));
			snprintf(err, errlen, "'%s' has host bits set "
			    "(did you mean '%s/%u'?)",
			    pol_quote(q, sizeof(q), s, len), hint, plen);
			return -1;
		}
	}
	if ((at = strrchr(buf, '@')) != NULL) {
		size_t dlen = len - (size_t)(at + 1 - buf);

		if (!(mask & POL_ENT_ADDR) || at == buf ||
		    !pol_domain_valid(at + 1, dlen) ||
		    strpbrk(buf, " \t\r\n") != NULL) {
			if (quoted && (mask & POL_ENT_TEXT))
				return list_insert(l,
				    strset_add(&l->names, buf, len), err,
				    errlen);
			goto bad;
		}
		if (buf[len - 1] == '.')
			buf[--len] = '\0';
		return list_insert(l, strset_add(&l->names, buf, len), err,
		    errlen);
	}
	{
		char *d = buf;
		size_t dlen = len;

		/* "*.example.org" and ".example.org" mean example.org */
		if (dlen > 2 && d[0] == '*' && d[1] == '.') {
			d += 2;
			dlen -= 2;
		} else if (dlen > 1 && d[0] == '.') {
			d++;
			dlen--;
		}
		if ((mask & POL_ENT_DOMAIN) && pol_domain_valid(d, dlen)) {
			if (d[dlen - 1] == '.')
				d[--dlen] = '\0';
			return list_insert(l, strset_add(&l->names, d, dlen),
			    err, errlen);
		}
	}
	if (quoted && (mask & POL_ENT_TEXT))
		return list_insert(l, strset_add(&l->names, buf, len), err,
		    errlen);
bad:
	snprintf(err, errlen, "'%s' is not %s", pol_quote(q, sizeof(q), s,
	    len), kinds_text(mask));
	return -1;
}

/* Columns count characters, as the policy lexer does. */
static unsigned
col_of(const char *line, size_t off)
{
	unsigned col = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (((unsigned char)line[i] & 0xc0) != 0x80)
			col++;
	return col;
}

static void
list_line(struct pol_list *l, struct pol_ctx *ctx, const char *path,
    unsigned lineno, const char *line, size_t len)
{
	char err[256];
	size_t s, e, r;

	for (s = 0; s < len && (line[s] == ' ' || line[s] == '\t'); s++)
		;
	if (s == len || line[s] == '#' || line[s] == ';')
		return;
	for (e = s; e < len && line[e] != ' ' && line[e] != '\t' &&
	    line[e] != '#' && line[e] != ';'; e++)
		;
	for (r = e; r < len && (line[r] == ' ' || line[r] == '\t'); r++)
		;
	if (r < len && line[r] != '#' && line[r] != ';') {
		pol_report(ctx, true, path, lineno, col_of(line, r),
		    "unexpected text after the entry "
		    "(one entry a line; comments start with '#')");
		return;
	}
	if (pol_list_add(l, line + s, e - s, POL_ENT_ANY, false, err,
	    sizeof(err)) != 0)
		pol_report(ctx, true, path, lineno, col_of(line, s), "%s", err);
}

int
pol_list_load_file(struct pol_list *l, struct pol_ctx *ctx,
    const char *path, const struct pol_file_owner *owner, char *why,
    size_t whylen)
{
	char *chunk, *line;
	size_t llen = 0, i, start;
	unsigned lineno = 1;
	bool toolong = false;
	struct stat st;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang the load; checked below */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -2;
	}
	if ((uint64_t)st.st_size > POL_LIST_FILE_MAX) {
		close(fd);
		errno = EFBIG;
		return -3;
	}
	if (pol_file_untrusted(&st, owner, why, whylen)) {
		close(fd);
		errno = EPERM;
		return -4;
	}
	chunk = pol_xmalloc(65536);
	line = pol_xmalloc(POL_LIST_LINE_MAX + 1);
	for (;;) {
		n = read(fd, chunk, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(chunk);
			free(line);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		for (start = 0, i = 0; i < (size_t)n; i++) {
			if (chunk[i] != '\n')
				continue;
			if (!toolong && llen + (i - start) <=
			    POL_LIST_LINE_MAX) {
				memcpy(line + llen, chunk + start, i - start);
				llen += i - start;
				if (llen > 0 && line[llen - 1] == '\r')
					llen--;
				list_line(l, ctx, path, lineno, line, llen);
			} else
				pol_report(ctx, true, path, lineno, 1,
				    "line longer than %u bytes",
				    POL_LIST_LINE_MAX);
			lineno++;
			llen = 0;
			toolong = false;
			start = i + 1;
		}
		if (!toolong && llen + ((size_t)n - start) <=
		    POL_LIST_LINE_MAX) {
			memcpy(line + llen, chunk + start, (size_t)n - start);
			llen += (size_t)n - start;
		} else
			toolong = true;
	}
	if (toolong)
		pol_report(ctx, true, path, lineno, 1,
		    "line longer than %u bytes", POL_LIST_LINE_MAX);
	else if (llen > 0) {
		if (line[llen - 1] == '\r')
			llen--;
		list_line(l, ctx, path, lineno, line, llen);
	}
	free(chunk);
	free(line);
	close(fd);
	return 0;
}

/* ---- matching ---- */

static bool
match_domain(const struct pol_list *l, const char *d, size_t len)
{
	const char *dot;

	while (len > 0 && *d == '.') {
		d++;
		len--;
	}
	if (len > 0 && d[len - 1] == '.')
		len--;
	while (len > 0) {
		if (strset_has(&l->names, d, len))
			return true;
		if ((dot = memchr(d, '.', len)) == NULL)
			break;
		len -= (size_t)(dot + 1 - d);
		d = dot + 1;
	}
	return false;
}

bool
pol_list_match_ip(const struct pol_list *l, const struct pol_ip *ip)
{
	if (l == NULL || ip == NULL)
		return false;
	return cidrset_has(&l->nets, ip);
}

bool
pol_list_match(const struct pol_list *l, enum pol_match how, const char *s)
{
	char buf[POL_LIST_LINE_MAX + 1];
	struct pol_ip ip;
	const char *at;
	size_t len, i;

	if (l == NULL || s == NULL)
		return false;
	if (how == POL_M_IP || how == POL_M_HOST) {
		if (pol_ip_parse(s, &ip) == 0)
			return cidrset_has(&l->nets, &ip);
		if (how == POL_M_IP)
			return false;
		how = POL_M_DOMAIN;
	}
	len = strlen(s);
	if (how == POL_M_ADDR && len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	/* longer than any entry: only its domain part can match */
	if (len > POL_LIST_LINE_MAX) {
		if (how != POL_M_ADDR || (at = strrchr(s, '@')) == NULL ||
		    strlen(at + 1) > POL_LIST_LINE_MAX)
			return false;
		s = at + 1;
		len = strlen(s);
		how = POL_M_DOMAIN;
	}
	for (i = 0; i < len; i++)
		buf[i] = (char)pol_lc((unsigned char)s[i]);
	buf[len] = '\0';
	switch (how) {
	case POL_M_TEXT:
		return strset_has(&l->names, buf, len);
	case POL_M_ADDR:
		if ((at = strrchr(buf, '@')) == NULL)
			return match_domain(l, buf, len);
		if (len > 0 && buf[len - 1] == '.')
			buf[--len] = '\0';
		if (strset_has(&l->names, buf, len))
			return true;
		return match_domain(l, at + 1, len - (size_t)(at + 1 - buf));
	default:
		return match_domain(l, buf, len);
	}
}
