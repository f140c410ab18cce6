/*
 * report_cli.c - `portcullis report dmarc [-c conf] [-s store]
 *   --since TIME --until TIME [--org-name NAME] [--email ADDR]
 *   [--receiver DOMAIN] [--extra-contact TEXT] [--outdir DIR] [--gzip]
 *   [--mail] [--expire]`
 * Reads the rows of [since, until) from the report store, writes one RFC
 * 9990 aggregate report per Policy Domain into DIR (file names of RFC
 * 9990 2.5.2), judges each report's rua= destinations (RFC 9990 section
 * 4, through dns.c with the config's resolver) and prints one manifest:
 *   report DOMAIN FILE records=N messages=N
 *   keep DOMAIN ADDRESS WHY...
 *   drop DOMAIN URI WHY...
 * --mail also writes FILE.eml, an RFC 5322 message with the report
 * attached, addressed to the kept destinations, for `sendmail -t`;
 * nothing is sent from here.  --expire deletes the period's rows once
 * every report is written.
 * Owns: the config, store, resolver and grouping of one call.
 * Errors: "portcullis report: message" on stderr, exit status 1 (2 for a
 * usage error); a row that does not decode is skipped and counted.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "report.h"
#include "report_agg.h"
#include "report_cli.h"
#include "util.h"

#define CLI_EML_LINE	76	/* base64 line length (RFC 2045) */

static void
usage(FILE *fp)
{
	fputs("usage: portcullis report dmarc [-c conf] [-s store] "
	    "--since TIME --until TIME\n"
	    "           [--org-name NAME] [--email ADDR] [--receiver DOMAIN] "
	    "[--extra-contact TEXT]\n"
	    "           [--outdir DIR] [--gzip] [--mail] [--expire]\n"
	    "       TIME: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ "
	    "(UTC), or now\n", fp);
}

static void
cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("portcullis report: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "1700000000", "2025-04-01", "2025-04-01T10:00:00Z", "now". */
static int
parse_time(const char *s, uint64_t *out)
{
	struct tm tm;
	const char *end;
	char *e;

	if (strcmp(s, "now") == 0) {
		*out = (uint64_t)time(NULL);
		return 0;
	}
	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") ==
	    strlen(s)) {
		errno = 0;
		*out = strtoull(s, &e, 10);
		return errno == 0 && *e == '\0' && *out <= 9999999999ULL ?
		    0 : -1;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL)
		return -1;
	if (*end == 'T') {
		end = strptime(end + 1, "%H:%M:%S", &tm);
		if (end == NULL)
			return -1;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0' || tm.tm_year < 70)
		return -1;
	*out = (uint64_t)timegm(&tm);
	return 0;
}

struct scan_ctx {
	struct agg *agg;
	uint64_t rows, bad;
	char err[256];
};

static int
scan_cb(uint64_t t, const char *val, size_t vlen, void *arg)
{
	struct scan_ctx *sc = arg;
	struct report_row *r = xmalloc(sizeof(*r));
	int rc = 0;

	(void)t;
	if (rrow_decode(val, vlen, r) != 0)
		sc->bad++;	/* another writer's garbage: skipped, said */
	else if (agg_add(sc->agg, r, sc->err, sizeof(sc->err)) != 0)
		rc = 1;
	else
		sc->rows++;
	free(r);
	return rc;
}

/* gzip (RFC 1952) of in through libarchive's raw writer.  0 or -1. */
static int
gzip_mem(const char *in, size_t len, char **out, size_t *outlen)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	size_t cap = len + len / 8 + 4096, used = 0;
	char *buf = xmalloc(cap);
	int ok;

	ok = archive_write_add_filter_gzip(a) == ARCHIVE_OK &&
	    archive_write_set_format_raw(a) == ARCHIVE_OK &&
	    archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK &&
	    archive_write_open_memory(a, buf, cap, &used) == ARCHIVE_OK;
	if (ok) {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_pathname(e, "report.xml");
		archive_entry_set_size(e, (la_int64_t)len);
		ok = archive_write_header(a, e) == ARCHIVE_OK &&
		    archive_write_data(a, in, len) == (la_ssize_t)len &&
		    archive_write_close(a) == ARCHIVE_OK;
	}
	if (!ok)
		cli_err("gzip: %s", archive_error_string(a) ?
		    archive_error_string(a) : "failed");
	archive_entry_free(e);
	archive_write_free(a);
	if (!ok) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = used;
	return 0;
}

/* Writes data to dir/name through a temporary file and rename(2), so a
 * reader never sees half a report.  0 or -1. */
static int
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	int fd, rc = -1;
	size_t off = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		cli_err("%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cli_err("%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		cli_err("%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(path);
	return rc;
}

/* The RFC 5322 message carrying one report (RFC 9990 2.5.2): Subject of
 * the dmarc-subject ABNF, the report as a base64 attachment of type
 * application/gzip or text/xml named as the file.  Lines end in LF, as
 * sendmail(8) reads a local file. */
static int
mail_build(struct buf *b, const char *from, const char *const *to,
    size_t nto, const char *domain, const char *receiver, const char *id,
    const char *fname, bool gz, const char *data, size_t len)
{
	char date[64], *enc;
	struct tm tm;
	time_t now = time(NULL);
	size_t i, elen;
	int rc = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	rc |= buf_appendf(b, "From: %s\nTo: ", from);
	for (i = 0; i < nto; i++)
		rc |= buf_appendf(b, "%s%s", i ? ",\n " : "", to[i]);
	rc |= buf_appendf(b, "\nSubject: Report Domain: %s\n"
	    " Submitter: %s\n Report-ID: <%s>\n", domain, receiver, id);
	rc |= buf_appendf(b, "Date: %s\nMessage-ID: <%s@%s>\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"=_dmarc_%s\"\n\n",
	    date, id, receiver, id);
	rc |= buf_appendf(b, "--=_dmarc_%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n"
	    "DMARC aggregate report (RFC 9990) for %s from %s.\n\n",
	    id, domain, receiver);
	rc |= buf_appendf(b, "--=_dmarc_%s\nContent-Type: %s; name=\"%s\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"%s\"\n\n", id,
	    gz ? "application/gzip" : "text/xml", fname, fname);
	if (rc != 0)
		return -1;
	enc = xmalloc(4 * ((len + 2) / 3) + 1);
	elen = (size_t)EVP_EncodeBlock((unsigned char *)enc,
	    (const unsigned char *)data, (int)len);
	for (i = 0; rc == 0 && i < elen; i += CLI_EML_LINE) {
		size_t n = elen - i < CLI_EML_LINE ? elen - i : CLI_EML_LINE;

		rc |= buf_append(b, enc + i, n);
		rc |= buf_append(b, "\n", 1);
	}
	free(enc);
	rc |= buf_appendf(b, "--=_dmarc_%s--\n", id);
	return rc != 0 ? -1 : 0;
}

struct opts {
	const char *conf, *store, *org_name, *email, *receiver, *extra;
	const char *outdir;
	uint64_t since, until;
	bool have_since, have_until, gzip, mail, expire;
};

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "org-name", required_argument, NULL, 'o' },
		{ "email", required_argument, NULL, 'e' },
		{ "receiver", required_argument, NULL, 'r' },
		{ "extra-contact", required_argument, NULL, 'x' },
		{ "outdir", required_argument, NULL, 'd' },
		{ "gzip", no_argument, NULL, 'z' },
		{ "mail", no_argument, NULL, 'm' },
		{ "expire", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->outdir = ".";
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:s:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 's':
			o->store = optarg;
			break;
		case 'S':
		case 'U':
			if (parse_time(optarg, ch == 'S' ? &o->since :
			    &o->until) != 0) {
				cli_err("bad time '%s' (Unix seconds, "
				    "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or now)",
				    optarg);
				return 2;
			}
			if (ch == 'S')
				o->have_since = true;
			else
				o->have_until = true;
			break;
		case 'o':
			o->org_name = optarg;
			break;
		case 'e':
			o->email = optarg;
			break;
		case 'r':
			o->receiver = optarg;
			break;
		case 'x':
			o->extra = optarg;
			break;
		case 'd':
			o->outdir = optarg;
			break;
		case 'z':
			o->gzip = true;
			break;
		case 'm':
			o->mail = true;
			break;
		case 'E':
			o->expire = true;
			break;
		case 'h':
			usage(stdout);
			return 3;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !o->have_since || !o->have_until) {
		usage(stderr);
		return 2;
	}
	if (o->until <= o->since) {
		cli_err("--until must be after --since");
		return 2;
	}
	return 0;
}

/* One report: file, destinations, manifest lines, message. */
static int
one_report(struct agg *agg, size_t i, const struct opts *o,
    const char *receiver, const char *email, struct dns **dns,
    const struct config *cfg, struct buf *xml)
{
	const char *domain = agg_domain(agg, i), *rua;
	char id[32], fname[600];
	struct agg_meta m;
	struct agg_dest *dests = NULL;
	const char **to = NULL;
	char *gz = NULL;
	const char *data;
	size_t len, records, nd = 0, nto = 0, j;
	uint64_t messages;
	int rc = -1;

	if (agg_report_id(receiver, domain, o->since, o->until - 1, id,
	    sizeof(id)) != 0 || agg_filename(receiver, domain, o->since,
	    o->until - 1, id, o->gzip, fname, sizeof(fname)) != 0) {
		cli_err("%s: cannot name its report", domain);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.org_name = o->org_name != NULL ? o->org_name : receiver;
	m.email = email;
	m.extra_contact_info = o->extra;
	m.report_id = id;
	m.begin = o->since;
	m.end = o->until - 1;
	m.generator = "portcullis " PACKAGE_VERSION;
	if (agg_xml(agg, i, &m, xml) != 0) {
		cli_err("%s: the report is larger than %u bytes", domain,
		    AGG_XML_MAX);
		return -1;
	}
	data = xml->p;
	len = xml->len;
	if (o->gzip) {
		if (gzip_mem(xml->p, xml->len, &gz, &len) != 0)
			return -1;
		data = gz;
	}
	if (write_file(o->outdir, fname, data, len) != 0)
		goto out;
	agg_domain_counts(agg, i, &records, &messages);
	printf("report %s %s records=%zu messages=%llu\n", domain, fname,
	    records, (unsigned long long)messages);

	rua = agg_domain_rua(agg, i);
	if (rua[0] != '\0') {
		if (*dns == NULL) {
			struct dns_options dopt = { 0 };
			const char *err;

			dopt.forwarder = cfg != NULL ? cfg->resolver : NULL;
			if ((*dns = dns_new(&dopt, &err)) == NULL) {
				cli_err("resolver: %s", err);
				goto out;
			}
		}
		dests = xcalloc(AGG_DEST_MAX, sizeof(*dests));
		nd = agg_rua_verify(*dns, cfg != NULL ? cfg->dns_timeout_ms :
		    5000, domain, rua, len, dests, AGG_DEST_MAX);
	}
	to = xcalloc(nd + 1, sizeof(*to));
	for (j = 0; j < nd; j++) {
		if (dests[j].kept) {
			printf("keep %s %s %s\n", domain, dests[j].addr,
			    dests[j].why);
			to[nto++] = dests[j].addr;
		} else
			printf("drop %s %s %s\n", domain, dests[j].uri,
			    dests[j].why);
	}
	if (o->mail && nto > 0) {
		struct buf eml;
		char *ename = xasprintf("%s.eml", fname);

		buf_init(&eml, AGG_XML_MAX);
		if (mail_build(&eml, email, to, nto, domain, receiver, id,
		    fname, o->gzip, data, len) != 0 ||
		    write_file(o->outdir, ename, eml.p, eml.len) != 0) {
			cli_err("%s: cannot write the message", domain);
			buf_free(&eml);
			free(ename);
			goto out;
		}
		printf("mail %s %s\n", domain, ename);
		buf_free(&eml);
		free(ename);
	}
	rc = 0;
out:
	free(to);
	free(dests);
	free(gz);
	return rc;
}

int
report_cli_main(int argc, char **argv)
{
	struct opts o;
	struct config *cfg = NULL;
	struct report_store *st = NULL;
	const struct rep_store_ops *ops;
	struct scan_ctx sc;
	struct dns *dns = NULL;
	struct buf xml;
	const char *spec, *receiver;
	char err[512], *email = NULL;
	void *h;
	size_t i;
	int rc;

	if (argc < 2 || strcmp(argv[1], "dmarc") != 0) {
		usage(stderr);
		return 2;
	}
	if ((rc = parse_args(argc - 1, argv + 1, &o)) != 0)
		return rc == 3 ? 0 : rc;
	log_set_info(false);
	memset(&sc, 0, sizeof(sc));
	{
		struct diag d = { 0 };
		const char *conf = o.conf;

		if (conf == NULL && access(config_default_path(), F_OK) == 0)
			conf = config_default_path();
		cfg = config_load(conf, &d);
		for (i = 0; i < d.n; i++)
			cli_err("%s", d.msgs[i]);
		diag_free(&d);
		if (cfg == NULL)
			return 1;
	}
	rc = 1;
	spec = o.store != NULL ? o.store : cfg->report_store;
	if (spec == NULL) {
		cli_err("no report store: set report_store in %s or give -s",
		    cfg->path != NULL ? cfg->path : "the config");
		goto out;
	}
	receiver = o.receiver != NULL ? o.receiver : cfg->authserv_id;
	if (!rrow_domain_ok(receiver)) {
		cli_err("receiver '%s' is not a lower-case domain name (it "
		    "names the report files): give --receiver", receiver);
		goto out;
	}
	email = o.email != NULL ? xstrdup(o.email) :
	    xasprintf("postmaster@%s", receiver);
	if ((st = report_store_acquire(spec, false, err, sizeof(err))) ==
	    NULL) {
		cli_err("%s", err);
		goto out;
	}
	ops = report_store_ops(st, &h);
	sc.agg = agg_new();
	if (ops->scan(h, o.since, o.until, scan_cb, &sc) != 0) {
		cli_err("%s", sc.err[0] != '\0' ? sc.err :
		    "cannot read the report store");
		goto out;
	}
	if (sc.bad > 0)
		cli_err("warning: %llu stored rows could not be read and are "
		    "not reported", (unsigned long long)sc.bad);
	buf_init(&xml, AGG_XML_MAX);
	for (i = 0; i < agg_ndomains(sc.agg); i++)
		if (one_report(sc.agg, i, &o, receiver, email, &dns, cfg,
		    &xml) != 0)
			break;
	buf_free(&xml);
	if (i < agg_ndomains(sc.agg))
		goto out;
	if (o.expire) {
		uint64_t n = 0;

		if (ops->expire(h, o.since, o.until, &n) != 0) {
			cli_err("cannot delete the reported rows");
			goto out;
		}
		printf("expired %llu\n", (unsigned long long)n);
	}
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	dns_free(dns);
	agg_free(sc.agg);
	report_store_release(st);
	free(email);
	config_free(cfg);
	return rc;
}
