/*
 * greylist_cli.c - `portcullis greylist [-c conf] [-s store] COMMAND`:
 *   list                              every record, one line each
 *   allow IDENTITY SENDER RCPT        mark a triplet passed now
 *   allow --network CIDR|spf:DOMAIN   allow a sender identity (autoallow)
 *   delete IDENTITY SENDER RCPT | delete --network CIDR|spf:DOMAIN
 *   stats                             counts per state and store size
 *   sweep                             delete expired records (LMDB)
 * Fields are given as `list` prints them (%XX escapes undone, then folded
 * like the milter folds them), so a listed line can be pasted back.
 * Owns: the config and store it opens, for one call.
 * Errors: "portcullis greylist: message" on stderr, exit status 1.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "greylist.h"
#include "greylist_cli.h"
#include "policy.h"
#include "store.h"
#include "util.h"

#define CLI_FIELD_MAX	1024

static void
usage(void)
{
	fputs("usage: portcullis greylist [-c conf] [-s store] list | stats "
	    "| sweep\n"
	    "       portcullis greylist [-c conf] [-s store] [-e expire] "
	    "allow IDENTITY SENDER RCPT\n"
	    "       portcullis greylist [-c conf] [-s store] [-e expire] "
	    "allow --network CIDR|spf:DOMAIN\n"
	    "       portcullis greylist [-c conf] [-s store] "
	    "delete IDENTITY SENDER RCPT\n"
	    "       portcullis greylist [-c conf] [-s store] "
	    "delete --network CIDR|spf:DOMAIN\n", stderr);
}

static void
cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("portcullis greylist: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undoes the %XX escapes of a listed field; -1 for a bad one. */
static int
unescape(const char *s, char *dst, size_t size)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		int c = (unsigned char)*s;

		if (c == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = hi << 4 | lo;
			s += 2;
		}
		if (n + 1 >= size)
			return -1;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return 0;
}

/*
 * "spf:DOMAIN", "ADDR/LEN" or "ADDR" (the policy defaults /24, /64) ->
 * the identity the milter computes, network bits masked.
 */
static int
identity_parse(const char *arg, char *dst, size_t size)
{
	struct greylist_params p = { 0 };
	char ip[CLI_FIELD_MAX], *slash, *end;
	unsigned long len;

	if (strncmp(arg, "spf:", 4) == 0)
		return greylist_identity(&p, NULL, arg + 4, dst, size);
	if (strlen(arg) >= sizeof(ip))
		return -1;
	strcpy(ip, arg);
	if ((slash = strchr(ip, '/')) != NULL) {
		*slash++ = '\0';
		len = strtoul(slash, &end, 10);
		if (end == slash || *end != '\0' || len == 0 || len > 128)
			return -1;
		p.netmask4 = p.netmask6 = (unsigned)len;
		/* An IPv4 prefix over 32 is a typo, not a host route. */
		if (strchr(ip, ':') == NULL && len > 32)
			return -1;
	}
	return greylist_identity(&p, ip, NULL, dst, size);
}

/* The key of IDENTITY SENDER RCPT as listed. */
static int
triplet_key(const char *identity, const char *sender, const char *rcpt,
    char *key, size_t size)
{
	char id[300], s[CLI_FIELD_MAX], r[CLI_FIELD_MAX];
	int n;

	if (identity_parse(identity, id, sizeof(id)) != 0) {
		cli_err("bad identity '%s' (expected ADDR/LEN or spf:DOMAIN)",
		    identity);
		return -1;
	}
	/* A hashed key is listed as "#" + 64 hex digits and "-". */
	if (sender[0] == '#' && strlen(sender) == 65 &&
	    (rcpt[0] == '\0' || strcmp(rcpt, "-") == 0)) {
		n = snprintf(key, size, "%s%s%c%s", GREY_TRIPLET_PREFIX, id,
		    GREY_SEP, sender);
		return n < 0 || (size_t)n >= size ? -1 : n;
	}
	if (unescape(sender, s, sizeof(s)) != 0 ||
	    unescape(rcpt, r, sizeof(r)) != 0) {
		cli_err("bad %%XX escape in sender or recipient");
		return -1;
	}
	if ((n = grey_key_triplet(id, s, r, key, size)) < 0)
		cli_err("identity too long");
	return n;
}

static void
iso8601(uint64_t t, char *dst, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(dst, size, "-");
}

static int
list_cb(const struct grey_entry *e, void *arg)
{
	char first[32], last[32], state[32];

	(void)arg;
	iso8601(e->rec.first_seen, first, sizeof(first));
	iso8601(e->rec.last_seen, last, sizeof(last));
	if (e->sender == NULL) {
		if (e->rec.manual)
			snprintf(state, sizeof(state), "allowed");
		else
			snprintf(state, sizeof(state), "passes=%u",
			    (unsigned)e->rec.count);
	} else
		snprintf(state, sizeof(state), "%s",
		    e->rec.passed ? "passed" : "pending");
	if (printf("%s %s %s %s %s %s\n", e->identity,
	    e->sender != NULL ? e->sender : "*",
	    e->sender == NULL ? "*" : e->rcpt[0] != '\0' ? e->rcpt : "-",
	    state, first, last) < 0)
		return -1;
	return 0;
}

int
greylist_cli_main(int argc, char **argv)
{
	return greylist_cli_main_at(argc, argv, (uint64_t)time(NULL));
}

int
greylist_cli_main_at(int argc, char **argv, uint64_t now)
{
	const char *conf = NULL, *spec = NULL, *cmd;
	struct config *cfg = NULL;
	struct greylist *g = NULL;
	const struct grey_store_ops *ops;
	uint64_t expire = POL_GREY_EXPIRE_DEFAULT;
	char err[512], key[GREY_KEY_MAX + 1];
	void *h;
	int i, n, rc = 1;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '-'; i++) {
		if (strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		}
		if (argv[i][1] == '\0' || argv[i][2] != '\0' ||
		    strchr("cse", argv[i][1]) == NULL || i + 1 >= argc) {
			usage();
			return 1;
		}
		if (argv[i][1] == 'c')
			conf = argv[++i];
		else if (argv[i][1] == 's')
			spec = argv[++i];
		else {
			uint64_t ms;

			if (duration_parse_ms(argv[++i], &ms) != 0 ||
			    ms < 1000) {
				cli_err("bad expire '%s' (e.g. 35d)", argv[i]);
				return 1;
			}
			expire = ms / 1000;
		}
	}
	if (i >= argc) {
		usage();
		return 1;
	}
	cmd = argv[i++];
	if (spec == NULL) {
		struct diag d = { 0 };

		if (conf == NULL && access(config_default_path(), F_OK) == 0)
			conf = config_default_path();
		cfg = config_load(conf, &d);
		for (size_t j = 0; j < d.n; j++)
			cli_err("%s", d.msgs[j]);
		diag_free(&d);
		if (cfg == NULL)
			return 1;
		spec = cfg->greylist_store;
	}
	if ((g = greylist_open(spec, err, sizeof(err))) == NULL) {
		cli_err("%s", err);
		goto out;
	}
	ops = greylist_ops(g, &h);

	if (strcmp(cmd, "list") == 0 && i == argc) {
		rc = ops->list(h, list_cb, NULL) == 0 && fflush(stdout) == 0 ?
		    0 : 1;
	} else if (strcmp(cmd, "stats") == 0 && i == argc) {
		struct grey_stats s;

		if (ops->stats(h, &s) == 0) {
			printf("store %s\npending %llu\npassed %llu\n"
			    "identities %llu\nmanual %llu\nbytes %llu\n", spec,
			    (unsigned long long)s.pending,
			    (unsigned long long)s.passed,
			    (unsigned long long)s.identities,
			    (unsigned long long)s.manual,
			    (unsigned long long)s.bytes);
			if (s.capacity > 0)
				printf("mapsize %llu\n",
				    (unsigned long long)s.capacity);
			rc = fflush(stdout) == 0 ? 0 : 1;
		}
	} else if (strcmp(cmd, "sweep") == 0 && i == argc) {
		size_t swept;

		if (ops->sweep(h, now, 0, &swept) == 0) {
			printf("swept %zu\n", swept);
			rc = 0;
		}
	} else if ((strcmp(cmd, "allow") == 0 || strcmp(cmd, "delete") == 0)
	    && ((i + 2 == argc && strcmp(argv[i], "--network") == 0) ||
	    (i + 3 == argc && argv[i][0] != '-'))) {
		bool network = i + 2 == argc;
		struct grey_rec r = { 0 };

		if (network) {
			char id[300];

			if (identity_parse(argv[i + 1], id, sizeof(id)) != 0) {
				cli_err("bad network '%s' (expected ADDR/LEN "
				    "or spf:DOMAIN)", argv[i + 1]);
				goto out;
			}
			n = grey_key_identity(id, key, sizeof(key));
		} else
			n = triplet_key(argv[i], argv[i + 1], argv[i + 2], key,
			    sizeof(key));
		if (n < 0)
			goto out;
		if (cmd[0] == 'a') {
			r.present = true;
			r.first_seen = r.last_seen = now;
			r.expires_at = now + expire;
			if (network)
				r.manual = true;
			else {
				r.passed = true;
				r.last_pass = now;
			}
			rc = ops->put(h, key, (size_t)n, &r, now) == 0 ? 0 : 1;
		} else {
			int d = ops->del(h, key, (size_t)n);

			if (d == 0)
				cli_err("no such entry");
			rc = d == 1 ? 0 : 1;
		}
	} else {
		usage();
	}
out:
	greylist_close(g);
	config_free(cfg);
	return rc;
}
