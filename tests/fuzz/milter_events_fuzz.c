/*
 * milter_events_fuzz.c - libFuzzer target for the message pipeline
 * (milter/session.c, core.h) driven the way milter/glue.c drives it, but
 * without an MTA: any sequence of milter events, out of order, repeated,
 * aborted, on two interleaved connections.
 * Setup (once): a config and a policy (every stage, scores, Subject tag,
 * attachments, DNSBL, URIBL, SPF, DKIM, DMARC, greylist, header rules)
 * in a fresh directory under TMPDIR; the resolver serves the records of
 * fz_dns from memory and never asks a server (unknown names: NXDOMAIN),
 * as "portcullis test" does; the greylist store is forced to "passed".
 * Input: a list of events, each one opcode byte then its arguments:
 *   op & 15: 0 connect (ip selector byte, name), 1 helo (str),
 *   2 mail (str, auth str), 3 rcpt (str), 4 header (name, value),
 *   5 eoh, 6 body (chunk), 7 eom, 8 abort, 9 close, 10 queue id (str),
 *   11 the "check" accessors (needs_body, facts and monitored JSON),
 *   12 a message (header and body lines copied from the argument),
 *   13-15 connect, mail, rcpt with fixed well-formed arguments;
 *   op & 16: the second connection.
 * A str is a length byte then that many bytes (a C string: cut at a NUL
 * as an MTA passes it); header values and body chunks a 2-byte length.
 * Events on a connection that is not open are ignored (the glue has no
 * context then); everything else goes to the core whatever the order.
 * At the end every open connection is closed.
 * Owns: per input, the connections and verdicts, freed before returning,
 * so LeakSanitizer sees every leak; the snapshot lives for the process.
 * Errors: a broken contract of core.h aborts (a reported crash): a reject
 * without a 5xx code and a 5 DSN, a tempfail without 4xx and a 4 DSN, a
 * reply text with CR or LF, a header edit with no name, an added or
 * changed value holding CR or a LF not followed by WSP, a removal with
 * index 0, an Authentication-Results added without our authserv-id.
 *
 * Build: see tests/fuzz/README.md (run.sh links it with libfz.a, every
 * object of milter/ but main.c and glue.c, and policy/)
 *   ./milter_events_fuzz -max_len=16384 -dict=tests/fuzz/milter_events.dict \
 *       tests/fuzz/corpus/milter_events
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "core.h"
#include "dns.h"
#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "tag.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "milter_events_fuzz: broken: %s (line %d)\n", \
		    #c, __LINE__); \
		abort(); \
	} \
} while (0)

#define FZ_EVENTS_MAX	512

static const char fz_policy[] =
    "internal domains  example.org\n"
    "trusted networks  127.0.0.0/8, ::1\n"
    "dnsbl zen.example.net  codes 127.0.0.2-127.0.0.11\n"
    "uribl dbl.example.net  codes 127.0.1.2-127.0.1.6  weight 5\n"
    "attachments block exe scr js iso bat\n"
    "greylist delay 5m window 4h expire 35d netmask 24/64 autoallow 5\n"
    "external tag \"[EXTERNAL]\"\n"
    "score spf_fail:     when spf is fail                add 4\n"
    "score spf_softfail: when spf is softfail            add 1\n"
    "score no_ptr:       when client.ptr is \"\"           add 1\n"
    "score dkim_fail:    when dkim is fail               add 1\n"
    "rule helo_ip: when helo is \"localhost\" then reject "
    "\"5.7.1 bad helo %{helo}\"\n"
    "rule trusted:   when trusted or authenticated then accept\n"
    "rule dnsbl:     when dnsbl.listed then reject \"5.7.1 %{client.ip} "
    "is listed by %{dnsbl.zone}\"\n"
    "rule greylist:  when greylist is new or greylist is early then "
    "tempfail \"4.7.1 greylisted, please retry later\"\n"
    "rule authfail:  when spf is temperror or dmarc is temperror then "
    "tempfail \"4.7.0 temporary failure, please retry later\"\n"
    "rule dmarc:     when dmarc is fail and dmarc.policy is reject then "
    "reject \"5.7.1 rejected by the DMARC policy of %{from.domain}\"\n"
    "rule attach:    when attachment.blocked then reject \"5.7.1 "
    "attachment %{attachment.name} is not allowed\"\n"
    "rule limits:    when attachment.limits or attachment.encrypted then "
    "quarantine \"attachment could not be inspected\"\n"
    "rule spoof:     when from.internal and not trusted and not "
    "authenticated and dmarc is not pass then quarantine \"internal "
    "domain from outside\"\n"
    "rule spam:      when score >= 6 then reject \"5.7.1 message looks "
    "like spam (score %{score})\"\n"
    "rule quar:      when dmarc is fail and dmarc.policy is quarantine "
    "then quarantine \"DMARC quarantine\"\n"
    "default accept\n";

/* The only DNS there is. */
static const char *const fz_dns[] = {
	"example.com. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 "
	    "include:_spf.example.com -all\"",
	"_spf.example.com. 300 IN TXT \"v=spf1 a:mx.example.com ~all\"",
	"mx.example.com. 300 IN A 192.0.2.25",
	"_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject; "
	    "rua=mailto:d@example.com\"",
	"_dmarc.example.net. 300 IN TXT \"v=DMARC1; p=quarantine; sp=none\"",
	"example.net. 300 IN TXT \"v=spf1 redirect=example.com\"",
	"2.0.0.127.zen.example.net. 300 IN A 127.0.0.2",
	"99.2.0.192.zen.example.net. 300 IN A 127.0.0.4",
	"bad.example.dbl.example.net. 300 IN A 127.0.1.2",
	"1.2.0.192.in-addr.arpa. 300 IN PTR mail.example.com.",
	"mail.example.com. 300 IN A 192.0.2.1",
	NULL
};

static const char *const fz_ips[] = {
	"192.0.2.1", "192.0.2.99", "127.0.0.1", "203.0.113.7",
	"2001:db8::1", "::ffff:192.0.2.1", "::1", "not an ip"
};

static struct snapshot *fz_snap;

static void
fz_write(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	FZ_CHECK(fp != NULL);
	FZ_CHECK(fputs(text, fp) >= 0);
	FZ_CHECK(fclose(fp) == 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct dns_options o = { 0 };
	struct diag d = { 0 };
	char dir[4000], path[4096], conf[8192];
	size_t i;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/portcullis-events-fuzz.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	FZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/fuzz.policy", dir);
	fz_write(path, fz_policy);
	snprintf(conf, sizeof(conf),
	    "socket = inet:8895@127.0.0.1\n"
	    "policy = fuzz.policy\n"
	    "authserv_id = mx.example.org\n"
	    "greylist_store = lmdb:%s/grey\n"
	    "on_error = tempfail\n", dir);
	snprintf(path, sizeof(path), "%s/portcullis.conf", dir);
	fz_write(path, conf);

	log_open("portcullis-fuzz", LOG_TO_STDERR);
	log_set_info(false);
	addr_init();
	tag_init();
	metrics_init();
	fz_snap = snapshot_load(path, &d);
	for (i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	FZ_CHECK(fz_snap != NULL);
	diag_free(&d);
	fz_snap->grey_forced = true;
	fz_snap->grey_state = GREY_PASSED;
	o.local_data = fz_dns;
	o.no_network = 1;
	FZ_CHECK(snapshot_start_with(fz_snap, &o, &d) == 0);
	diag_free(&d);
	snapshot_publish(fz_snap);
	return 0;
}

/* The input being decoded. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static unsigned
fz_byte(struct fz_in *in)
{
	unsigned b;

	if (in->n == 0)
		return 0;
	b = *in->p;
	in->p++;
	in->n--;
	return b;
}

/* len bytes (bounded by what is left) as a C string: cut at a NUL. */
static char *
fz_take(struct fz_in *in, size_t len)
{
	char *s;

	if (len > in->n)
		len = in->n;
	s = malloc(len + 1);
	FZ_CHECK(s != NULL);
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	return s;
}

static char *
fz_str(struct fz_in *in)
{
	return fz_take(in, fz_byte(in));
}

static char *
fz_long(struct fz_in *in, size_t *len)
{
	size_t l = fz_byte(in);
	char *s;

	l = l << 8 | fz_byte(in);
	if (l > in->n)
		l = in->n;
	s = malloc(l + 1);
	FZ_CHECK(s != NULL);
	memcpy(s, in->p, l);
	s[l] = '\0';
	in->p += l;
	in->n -= l;
	*len = l;
	return s;
}

/* A value as libmilter passes it: folds "\n" or "\r\n" plus WSP. */
static void
fz_check_value(const char *v)
{
	size_t i;

	FZ_CHECK(v != NULL);
	for (i = 0; v[i] != '\0'; i++) {
		FZ_CHECK(v[i] != '\r');
		if (v[i] == '\n')
			FZ_CHECK(v[i + 1] == ' ' || v[i + 1] == '\t');
	}
}

static void
fz_verdict(struct verdict *v)
{
	size_t i;

	if (v->decided) {
		if (v->action == POL_ACT_REJECT) {
			FZ_CHECK(v->code >= 500 && v->code <= 599);
			FZ_CHECK(v->dsn[0] == '5');
		} else if (v->action == POL_ACT_TEMPFAIL) {
			FZ_CHECK(v->code >= 400 && v->code <= 499);
			FZ_CHECK(v->dsn[0] == '4');
		}
		FZ_CHECK(strpbrk(v->text, "\r\n") == NULL);
	}
	for (i = 0; i < v->nadded; i++) {
		FZ_CHECK(v->added[i].name != NULL &&
		    v->added[i].name[0] != '\0');
		fz_check_value(v->added[i].value);
		if (strcasecmp(v->added[i].name,
		    "Authentication-Results") == 0)
			FZ_CHECK(strncmp(v->added[i].value, "mx.example.org;",
			    15) == 0);
	}
	for (i = 0; i < v->nchanged; i++) {
		FZ_CHECK(v->changed[i].name != NULL);
		FZ_CHECK(v->changed[i].index >= 1);
		fz_check_value(v->changed[i].value);
	}
	for (i = 0; i < v->nremoved; i++) {
		FZ_CHECK(v->removed[i].name != NULL);
		FZ_CHECK(v->removed[i].value == NULL);
		FZ_CHECK(v->removed[i].index >= 1);
	}
	if (v->new_body == NULL)
		FZ_CHECK(v->new_body_len == 0);
	verdict_clear(v);
}

static void
fz_connect(struct core_conn **c, const char *ip, const char *name)
{
	struct core_client cl = { ip, name, NULL, NULL };
	struct verdict v;

	if (*c != NULL)
		core_close(*c);
	*c = core_connect(snapshot_ref(fz_snap), &cl, &v);
	FZ_CHECK(*c != NULL);
	fz_verdict(&v);
}

/* op 12: the argument's lines as header fields until an empty line,
 * then the rest as the body, the way the MTA splits a message. */
static void
fz_message(struct core_conn *c, const char *m, size_t n)
{
	size_t i = 0, ls;
	struct verdict v;

	while (i < n) {
		const char *colon;
		char *name, *value;

		ls = i;
		while (i < n && m[i] != '\n')
			i++;
		if (i == ls || (i == ls + 1 && m[ls] == '\r')) {
			i++;
			break;
		}
		colon = memchr(m + ls, ':', i - ls);
		if (colon != NULL) {
			name = strndup(m + ls, (size_t)(colon - (m + ls)));
			colon++;
			while (colon < m + i && (*colon == ' ' ||
			    *colon == '\t'))
				colon++;
			value = strndup(colon, (size_t)(m + i - colon));
			FZ_CHECK(name != NULL && value != NULL);
			core_header(c, name, value);
			free(name);
			free(value);
		}
		if (i < n)
			i++;
	}
	core_eoh(c, &v);
	fz_verdict(&v);
	if (i < n)
		core_body(c, (const unsigned char *)m + i, n - i);
	core_eom(c, &v);
	fz_verdict(&v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct core_conn *conn[2] = { NULL, NULL };
	struct fz_in in = { data, size };
	struct verdict v;
	unsigned events = 0;
	size_t len;

	while (in.n > 0 && events++ < FZ_EVENTS_MAX) {
		unsigned op = fz_byte(&in);
		struct core_conn **c = &conn[(op >> 4) & 1];
		char *a, *b;

		switch (op & 15) {
		case 0:
			a = (char *)fz_ips[fz_byte(&in) & 7];
			b = fz_str(&in);
			fz_connect(c, a, *b != '\0' ? b : NULL);
			free(b);
			continue;
		case 13:
			fz_connect(c, fz_ips[fz_byte(&in) & 7],
			    "mail.example.com");
			continue;
		default:
			break;
		}
		if (*c == NULL) {
			/* the glue has no context: nothing reaches the core;
			 * the arguments are still consumed */
			switch (op & 15) {
			case 2: free(fz_str(&in)); /* FALLTHROUGH */
			case 1: case 3: case 10: free(fz_str(&in)); break;
			case 4: free(fz_str(&in)); /* FALLTHROUGH */
			case 6: case 12: free(fz_long(&in, &len)); break;
			default: break;
			}
			continue;
		}
		switch (op & 15) {
		case 1:
			a = fz_str(&in);
			core_helo(*c, a, &v);
			fz_verdict(&v);
			free(a);
			break;
		case 2:
			a = fz_str(&in);
			b = fz_str(&in);
			core_mail(*c, a, *b != '\0' ? b : NULL, &v);
			fz_verdict(&v);
			free(a);
			free(b);
			break;
		case 3:
			a = fz_str(&in);
			core_rcpt(*c, a, &v);
			fz_verdict(&v);
			free(a);
			break;
		case 4:
			a = fz_str(&in);
			b = fz_long(&in, &len);
			core_header(*c, a, b);
			free(a);
			free(b);
			break;
		case 5:
			core_eoh(*c, &v);
			fz_verdict(&v);
			break;
		case 6:
			a = fz_long(&in, &len);
			core_body(*c, (const unsigned char *)a, len);
			free(a);
			break;
		case 7:
			core_eom(*c, &v);
			fz_verdict(&v);
			break;
		case 8:
			core_abort(*c);
			break;
		case 9:
			core_close(*c);
			*c = NULL;
			break;
		case 10:
			a = fz_str(&in);
			core_set_queue_id(*c, a);
			free(a);
			break;
		case 11:
			(void)core_needs_body(*c);
			free(core_facts_json(*c));
			free(core_monitored_json(*c));
			break;
		case 12:
			a = fz_long(&in, &len);
			fz_message(*c, a, len);
			free(a);
			break;
		case 14:
			core_mail(*c, (fz_byte(&in) & 1) ? "<a@example.com>" :
			    "<>", NULL, &v);
			fz_verdict(&v);
			break;
		case 15:
			core_rcpt(*c, "<user@example.org>", &v);
			fz_verdict(&v);
			break;
		default:
			break;
		}
	}
	if (conn[0] != NULL)
		core_close(conn[0]);
	if (conn[1] != NULL)
		core_close(conn[1]);
	return 0;
}
