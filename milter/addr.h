/*
 * addr.h - e-mail addresses: envelope (RFC 5321) and header From
 * (RFC 5322, through GMime's address parser).
 * Owns: nothing.  Limits: CORE_ADDR_MAX bytes an address.
 * Errors: -1 for what is not an address; results are malloc'ed.
 */
#ifndef PORTCULLIS_ADDR_H
#define PORTCULLIS_ADDR_H

#include <stddef.h>

#define ADDR_MAX 512

/* "<local@Domain>" (brackets, source route and spaces optional) ->
 * "local@domain" (domain lower-cased) and the domain.  The null sender
 * "<>" gives "" and "".  0 or -1 (garbage, over ADDR_MAX). */
int addr_envelope(const char *in, char **addr, char **domain);

/* The first mailbox of a From header value -> address and domain
 * (lower-cased domain).  Returns the number of mailboxes found (0: none,
 * *addr and *domain NULL). */
int addr_header_from(const char *value, size_t len, char **addr,
    char **domain);

/* Appends the domain of every mailbox of a From header value to *domains
 * (malloc'ed strings, lower case, duplicates kept out), at most max in
 * all.  Returns the number appended; a mailbox without a usable domain
 * appends "" so that the caller sees it. */
size_t addr_header_domains(const char *value, size_t len, char ***domains,
    size_t *n, size_t max);

/* Lower-cases a domain in place and drops one trailing dot. */
void addr_domain_normalise(char *);

/* Initialises GMime; start-up only, once. */
void addr_init(void);

#endif
