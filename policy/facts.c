/*
 * facts.c - the table of facts (DESIGN.md section 4): names, value types,
 * the stage at which each can first be known, the values of enumerated
 * facts and how "in" compares them with a list; enum names.
 * Owns: constant tables only.  Reentrant.
 * Limits: header names of at most POL_NAME_MAX bytes.  Errors: -1/NULL.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <string.h>

#include "pol_int.h"

static const char *const spf_values[] = {
	"pass", "fail", "softfail", "neutral", "none", "temperror",
	"permerror"
};
static const char *const dkim_values[] = {
	"pass", "fail", "neutral", "policy", "none", "temperror", "permerror"
};
static const char *const dmarc_values[] = {
	"pass", "fail", "none", "temperror", "permerror"
};
static const char *const dmarc_policy_values[] = {
	"none", "quarantine", "reject"
};
static const char *const greylist_values[] = {
	"new", "early", "passed", "allowed"
};

#define N(a)	(sizeof(a) / sizeof((a)[0]))
#define ENUMV(a)	POL_FK_ENUM, a, N(a)

/* Indexed by enum pol_fact. */
static const struct pol_fact_def facts[POL_FACT_COUNT] = {
	{ { "client.ip", POL_V_IP, POL_STAGE_CONNECT }, POL_FK_IP, NULL, 0 },
	{ { "client.ptr", POL_V_STR, POL_STAGE_CONNECT }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "client.country", POL_V_STR, POL_STAGE_CONNECT }, POL_FK_TEXT,
	    NULL, 0 },
	{ { "client.asn", POL_V_NUM, POL_STAGE_CONNECT }, POL_FK_NUM,
	    NULL, 0 },
	{ { "helo", POL_V_STR, POL_STAGE_HELO }, POL_FK_HOST, NULL, 0 },
	{ { "authenticated", POL_V_BOOL, POL_STAGE_MAIL }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "trusted", POL_V_BOOL, POL_STAGE_CONNECT }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "external", POL_V_BOOL, POL_STAGE_MAIL }, POL_FK_BOOL, NULL, 0 },
	{ { "mail_from", POL_V_STR, POL_STAGE_MAIL }, POL_FK_ADDR, NULL, 0 },
	{ { "mail_from.domain", POL_V_STR, POL_STAGE_MAIL }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "rcpt", POL_V_STR, POL_STAGE_RCPT }, POL_FK_ADDR, NULL, 0 },
	{ { "rcpt.domain", POL_V_STR, POL_STAGE_RCPT }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "from", POL_V_STR, POL_STAGE_EOH }, POL_FK_ADDR, NULL, 0 },
	{ { "from.domain", POL_V_STR, POL_STAGE_EOH }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "from.internal", POL_V_BOOL, POL_STAGE_EOH }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "subject", POL_V_STR, POL_STAGE_EOH }, POL_FK_TEXT, NULL, 0 },
	{ { "size", POL_V_NUM, POL_STAGE_EOM }, POL_FK_NUM, NULL, 0 },
	{ { "header.NAME", POL_V_STR, POL_STAGE_EOH }, POL_FK_TEXT, NULL, 0 },
	{ { "spf", POL_V_STR, POL_STAGE_MAIL }, ENUMV(spf_values) },
	{ { "spf.helo", POL_V_STR, POL_STAGE_HELO }, ENUMV(spf_values) },
	{ { "spf.explanation", POL_V_STR, POL_STAGE_MAIL }, POL_FK_TEXT,
	    NULL, 0 },
	{ { "dkim", POL_V_STR, POL_STAGE_EOM }, ENUMV(dkim_values) },
	{ { "dkim.domains", POL_V_LIST, POL_STAGE_EOM }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "dmarc", POL_V_STR, POL_STAGE_EOM }, ENUMV(dmarc_values) },
	{ { "dmarc.policy", POL_V_STR, POL_STAGE_EOM },
	    ENUMV(dmarc_policy_values) },
	{ { "dnsbl.listed", POL_V_BOOL, POL_STAGE_CONNECT }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "dnsbl.zone", POL_V_STR, POL_STAGE_CONNECT }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "dnsbl.zones", POL_V_LIST, POL_STAGE_CONNECT }, POL_FK_DOMAIN,
	    NULL, 0 },
	{ { "dnsbl.reason", POL_V_STR, POL_STAGE_CONNECT }, POL_FK_TEXT,
	    NULL, 0 },
	{ { "uribl.listed", POL_V_BOOL, POL_STAGE_EOM }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "uribl.domains", POL_V_LIST, POL_STAGE_EOM }, POL_FK_HOST,
	    NULL, 0 },
	{ { "url.domains", POL_V_LIST, POL_STAGE_EOM }, POL_FK_HOST,
	    NULL, 0 },
	{ { "attachment.blocked", POL_V_BOOL, POL_STAGE_EOM }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "attachment.name", POL_V_STR, POL_STAGE_EOM }, POL_FK_TEXT,
	    NULL, 0 },
	{ { "attachment.names", POL_V_LIST, POL_STAGE_EOM }, POL_FK_TEXT,
	    NULL, 0 },
	{ { "attachment.encrypted", POL_V_BOOL, POL_STAGE_EOM }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "attachment.limits", POL_V_BOOL, POL_STAGE_EOM }, POL_FK_BOOL,
	    NULL, 0 },
	{ { "greylist", POL_V_STR, POL_STAGE_RCPT }, ENUMV(greylist_values) },
	{ { "score", POL_V_NUM, POL_STAGE_CONNECT }, POL_FK_NUM, NULL, 0 },
};

/* Names for suggestions: the table without "header.NAME". */
static const char *const fact_names[] = {
	"client.ip", "client.ptr", "client.country", "client.asn", "helo",
	"authenticated", "trusted", "external", "mail_from",
	"mail_from.domain", "rcpt", "rcpt.domain", "from", "from.domain",
	"from.internal", "subject", "size", "spf", "spf.helo",
	"spf.explanation", "dkim", "dkim.domains", "dmarc", "dmarc.policy",
	"dnsbl.listed", "dnsbl.zone", "dnsbl.zones", "dnsbl.reason",
	"uribl.listed", "uribl.domains", "url.domains", "attachment.blocked",
	"attachment.name", "attachment.names", "attachment.encrypted",
	"attachment.limits", "greylist", "score"
};

const struct pol_fact_def *
pol_fact_def(enum pol_fact f)
{
	if ((int)f < 0 || f >= POL_FACT_COUNT)
		return NULL;
	return &facts[f];
}

const struct pol_fact_info *
pol_fact_info(enum pol_fact f)
{
	const struct pol_fact_def *d = pol_fact_def(f);

	return d != NULL ? &d->info : NULL;
}

const char *const *
pol_fact_values(enum pol_fact f, size_t *n)
{
	const struct pol_fact_def *d = pol_fact_def(f);

	if (d == NULL || d->kind != POL_FK_ENUM) {
		if (n != NULL)
			*n = 0;
		return NULL;
	}
	if (n != NULL)
		*n = d->nvalues;
	return d->values;
}

const char *const *
pol_fact_names(size_t *n)
{
	*n = N(fact_names);
	return fact_names;
}

enum pol_match
pol_fact_match(enum pol_fact f)
{
	const struct pol_fact_def *d = pol_fact_def(f);

	if (d == NULL)
		return POL_M_TEXT;
	switch (d->kind) {
	case POL_FK_IP:
		return POL_M_IP;
	case POL_FK_ADDR:
		return POL_M_ADDR;
	case POL_FK_DOMAIN:
		return POL_M_DOMAIN;
	case POL_FK_HOST:
		return POL_M_HOST;
	default:
		return POL_M_TEXT;
	}
}

/* RFC 5322 field name: printable ASCII but ':'. */
static bool
header_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > POL_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == ':')
			return false;
	return true;
}

int
pol_fact_lookup(const char *name, size_t len)
{
	size_t i;

	if (name == NULL)
		return -1;
	if (len > 7 && memcmp(name, "header.", 7) == 0)
		return header_name_valid(name + 7, len - 7) ?
		    POL_FACT_HEADER : -1;
	for (i = 0; i < POL_FACT_COUNT; i++)
		if (i != POL_FACT_HEADER && strlen(facts[i].info.name) == len &&
		    memcmp(facts[i].info.name, name, len) == 0)
			return (int)i;
	return -1;
}

const char *
pol_action_name(enum pol_action a)
{
	switch (a) {
	case POL_ACT_NONE:
		return "none";
	case POL_ACT_ACCEPT:
		return "accept";
	case POL_ACT_REJECT:
		return "reject";
	case POL_ACT_TEMPFAIL:
		return "tempfail";
	case POL_ACT_QUARANTINE:
		return "quarantine";
	case POL_ACT_STRIP:
		return "strip";
	}
	return "unknown";
}

const char *
pol_stage_name(enum pol_stage s)
{
	static const char *const names[POL_STAGE_COUNT] = {
		"connect", "helo", "mail", "rcpt", "eoh", "eom"
	};

	if ((int)s < 0 || s >= POL_STAGE_COUNT)
		return "unknown";
	return names[s];
}
