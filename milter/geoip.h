/*
 * geoip.h - country and autonomous system of a client address, from
 * MaxMind DB files (libmaxminddb): GeoLite2/GeoIP2 Country or City, ASN,
 * DB-IP and any other database with the same field names.
 * Owns: up to two databases mapped read-only (MMDB_MODE_MMAP) for the life
 * of the handle; no locks, no threads.  Lookups only read, so one handle is
 * shared by all threads of a snapshot.
 * Limits: a country is exactly two ASCII letters, an ASN at most
 * GEOIP_ASN_MAX; any other value in the database counts as unknown.
 * Errors: geoip_open() returns NULL and a message naming the file;
 * geoip_lookup() returns -1 only when the database itself is broken.
 */
#ifndef PORTCULLIS_GEOIP_H
#define PORTCULLIS_GEOIP_H

#include <stddef.h>

/* Size of the country buffer: ISO 3166-1 alpha-2 and a NUL. */
#define GEOIP_COUNTRY_LEN	3
/* AS numbers are 32 bits (RFC 6793); a larger value is not an ASN. */
#define GEOIP_ASN_MAX		4294967295UL

struct geoip;	/* opaque: the open databases */

/*
 * Opens the country database and the ASN database; either path may be
 * NULL (not configured).  The files are read by what they hold,
 * not by their metadata's database_type: a country database needs
 * country.iso_code or registered_country.iso_code (GeoLite2-Country,
 * GeoIP2-City, DBIP-Country-Lite, ...), an ASN database needs
 * autonomous_system_number (GeoLite2-ASN, DBIP-ASN-Lite, ...).  A file of
 * the other kind opens fine and simply yields empty results.
 * Returns the handle, freed with geoip_close(), or NULL with err set to
 * "FILE: reason" (libmaxminddb's reason, plus errno's when it is an I/O
 * failure).  Both paths NULL: NULL with err "" -- nothing to open, not an
 * error.  err may be truncated to errlen; with errlen 0 err is never
 * written (it may be NULL).
 * Not for callbacks: it maps files (start-up and reload only).
 */
struct geoip *geoip_open(const char *country_db, const char *asn_db,
    char *err, size_t errlen);

/* Unmaps both databases and frees the handle.  NULL is fine. */
void geoip_close(struct geoip *);

/*
 * Looks ip up.  ip: textual IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1");
 * an IPv4-mapped IPv6 address (::ffff:192.0.2.1) is looked up as the IPv4
 * address.  Sets country to the ISO 3166-1 alpha-2 code in upper case,
 * from country.iso_code, else registered_country.iso_code, else ""; and
 * *asn to autonomous_system_number, else 0.  Unknown is not an error:
 * an address in no network, an IPv6 address in an IPv4-only database,
 * a database that lacks the field or holds a malformed value, and text that
 * is not a plain numeric address (NULL, "", "1.2.3", "fe80::1%eth0",
 * "[::1]") all give 0 with empty results.  g may be NULL (no database).
 * Returns 0, or -1 when a database is corrupt (search tree or data
 * section); country and *asn are then empty, the caller treats it as an
 * internal error.  Thread safe: g is only read.
 */
int geoip_lookup(const struct geoip *g, const char *ip,
    char country[GEOIP_COUNTRY_LEN], unsigned long *asn);

#endif
