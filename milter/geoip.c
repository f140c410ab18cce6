/*
 * geoip.c - country and ASN lookups in MaxMind DB files (libmaxminddb).
 * The only file that includes <maxminddb.h>.  Addresses are parsed here
 * with inet_pton(), not by libmaxminddb's getaddrinfo(), so that only plain
 * numeric addresses are accepted and IPv4-mapped IPv6 can be unmapped.
 * Owns: two MMDB_s (each a read-only mmap of its file); no locks: after
 * MMDB_open() libmaxminddb only reads, which is safe from any thread.
 * Limits: see geoip.h (two-letter countries, 32-bit ASNs).
 * Errors: geoip_open() fills a message; geoip_lookup() returns -1 only for
 * a corrupt database, everything else is "unknown".
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <maxminddb.h>

#include "geoip.h"
#include "util.h"

struct geoip {
	MMDB_s	country;	/* owns the mapping, when has_country */
	MMDB_s	asn;		/* owns the mapping, when has_asn */
	bool	has_country;
	bool	has_asn;
};

/* Writes "FILE: reason" into err; a truncated message is still useful. */
static void
open_error(char *err, size_t errlen, const char *path, int status,
    int saved_errno)
{
	if (errlen == 0)
		return;
	if ((status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) &&
	    saved_errno != 0)
		(void)snprintf(err, errlen, "%s: %s (%s)", path,
		    strerror(saved_errno), MMDB_strerror(status));
	else
		(void)snprintf(err, errlen, "%s: %s", path,
		    MMDB_strerror(status));
}

static int
open_one(MMDB_s *db, const char *path, char *err, size_t errlen)
{
	int status, saved_errno;

	errno = 0;
	status = MMDB_open(path, MMDB_MODE_MMAP, db);
	saved_errno = errno;
	if (status != MMDB_SUCCESS) {
		open_error(err, errlen, path, status, saved_errno);
		return -1;
	}
	return 0;
}

struct geoip *
geoip_open(const char *country_db, const char *asn_db, char *err,
    size_t errlen)
{
	struct geoip *g;

	if (errlen > 0)
		err[0] = '\0';
	if (country_db == NULL && asn_db == NULL)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	if (country_db != NULL) {
		if (open_one(&g->country, country_db, err, errlen) == -1)
			goto fail;
		g->has_country = true;
	}
	if (asn_db != NULL) {
		if (open_one(&g->asn, asn_db, err, errlen) == -1)
			goto fail;
		g->has_asn = true;
	}
	return g;
fail:
	geoip_close(g);
	return NULL;
}

void
geoip_close(struct geoip *g)
{
	if (g == NULL)
		return;
	if (g->has_country)
		MMDB_close(&g->country);
	if (g->has_asn)
		MMDB_close(&g->asn);
	free(g);
}

/*
 * Parses a plain numeric address into ss.  IPv4-mapped IPv6 becomes the
 * IPv4 address: MaxMind's own databases alias ::ffff:0:0/96 to the IPv4
 * tree, but third-party and hand-made ones need not.  Returns 0 or -1.
 */
static int
parse_addr(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		struct in_addr v4;

		memcpy(&v4, &sin6->sin6_addr.s6_addr[12], sizeof(v4));
		memset(ss, 0, sizeof(*ss));
		sin->sin_family = AF_INET;
		sin->sin_addr = v4;
		return 0;
	}
	sin6->sin6_family = AF_INET6;
	return 0;
}

/*
 * The record of ss in db.  Returns 1 (found, *res set), 0 (not in the
 * database) or -1 (corrupt search tree).
 */
static int
find(const MMDB_s *db, const struct sockaddr_storage *ss,
    MMDB_lookup_result_s *res)
{
	int mmdb_error = MMDB_SUCCESS;

	*res = MMDB_lookup_sockaddr(db, (const struct sockaddr *)ss,
	    &mmdb_error);
	/* an IPv4-only database knows nothing about IPv6: unknown */
	if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
		return 0;
	if (mmdb_error != MMDB_SUCCESS)
		return -1;
	return res->found_entry ? 1 : 0;
}

/*
 * Fetches one path of the record.  Returns 1 (value in *val), 0 (absent,
 * or the record is not shaped for this path: a database of another kind)
 * or -1 (corrupt data section).
 */
static int
get_value(MMDB_entry_s *entry, MMDB_entry_data_s *val, const char *key1,
    const char *key2)
{
	int status;

	status = MMDB_get_value(entry, val, key1, key2, NULL);
	switch (status) {
	case MMDB_SUCCESS:
		return val->has_data ? 1 : 0;
	case MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR:
	case MMDB_INVALID_LOOKUP_PATH_ERROR:
		return 0;
	default:
		return -1;
	}
}

/*
 * Copies an iso_code value into country when it is exactly two ASCII
 * letters, upper-cased.  Anything else (other type, length, bytes) from a
 * hostile or broken database is dropped: the value ends up in headers and
 * logs.  Returns true when copied; country is untouched otherwise.
 */
static bool
take_country(const MMDB_entry_data_s *val, char country[GEOIP_COUNTRY_LEN])
{
	char cc[GEOIP_COUNTRY_LEN];
	size_t i;

	if (val->type != MMDB_DATA_TYPE_UTF8_STRING || val->data_size != 2)
		return false;
	for (i = 0; i < 2; i++) {
		char c = val->utf8_string[i];

		/* not isalpha(): locale-independent, ASCII only */
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		cc[i] = c;
	}
	cc[2] = '\0';
	memcpy(country, cc, sizeof(cc));
	return true;
}

static int
lookup_country(const MMDB_s *db, const struct sockaddr_storage *ss,
    char country[GEOIP_COUNTRY_LEN])
{
	static const char *const where[] = { "country", "registered_country" };
	MMDB_lookup_result_s res;
	MMDB_entry_data_s val;
	size_t i;
	int r;

	if ((r = find(db, ss, &res)) != 1)
		return r;
	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		r = get_value(&res.entry, &val, where[i], "iso_code");
		if (r == -1)
			return -1;
		/* a malformed country.iso_code falls back like a missing one */
		if (r == 1 && take_country(&val, country))
			return 0;
	}
	return 0;
}

static int
lookup_asn(const MMDB_s *db, const struct sockaddr_storage *ss,
    unsigned long *asn)
{
	MMDB_lookup_result_s res;
	MMDB_entry_data_s val;
	uint64_t n;
	int r;

	if ((r = find(db, ss, &res)) != 1)
		return r;
	r = get_value(&res.entry, &val, "autonomous_system_number", NULL);
	if (r != 1)
		return r;
	/* MaxMind writes uint32; accept any integer type that fits */
	switch (val.type) {
	case MMDB_DATA_TYPE_UINT16:
		n = val.uint16;
		break;
	case MMDB_DATA_TYPE_UINT32:
		n = val.uint32;
		break;
	case MMDB_DATA_TYPE_UINT64:
		n = val.uint64;
		break;
	case MMDB_DATA_TYPE_INT32:
		if (val.int32 < 0)
			return 0;
		n = (uint64_t)val.int32;
		break;
	default:
		return 0;
	}
	if (n > GEOIP_ASN_MAX)
		return 0;
	*asn = (unsigned long)n;
	return 0;
}

int
geoip_lookup(const struct geoip *g, const char *ip,
    char country[GEOIP_COUNTRY_LEN], unsigned long *asn)
{
	struct sockaddr_storage ss;

	country[0] = '\0';
	*asn = 0;
	if (g == NULL || ip == NULL || parse_addr(ip, &ss) == -1)
		return 0;
	if (g->has_country && lookup_country(&g->country, &ss, country) == -1)
		goto corrupt;
	if (g->has_asn && lookup_asn(&g->asn, &ss, asn) == -1)
		goto corrupt;
	return 0;
corrupt:
	country[0] = '\0';
	*asn = 0;
	return -1;
}
