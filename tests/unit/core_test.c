/*
 * core_test.c - the pipeline core driven like an MTA would: staged
 * decisions, per-recipient refusals, the external tag and the
 * Authentication-Results edits, load-time refusal of facts not computed.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "addr.h"
#include "core.h"
#include "snapshot.h"
#include "tag.h"

static char dir[] = "/tmp/portcullis-core-XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static const char policy_text[] =
    "internal domains corp.test\n"
    "trusted networks 10.0.0.0/8, 2001:db8::/32\n"
    "external tag \"[EXTERNAL]\"\n"
    "rule trusted: when trusted or authenticated then accept\n"
    "rule blocked: when mail_from is \"spam@bad.test\" then reject "
    "\"5.7.1 sender %{mail_from} blocked\"\n"
    "rule later: when rcpt is \"later@corp.test\" then tempfail "
    "\"4.7.1 try later\"\n"
    "rule nobody: when rcpt.domain is \"nowhere.test\" then reject\n"
    "rule spoof: when from.internal and external then quarantine "
    "\"spoofed %{from.domain}\"\n"
    "attachments block exe\n"
    "rule attach: when attachment.blocked then reject "
    "\"5.7.1 attachment %{attachment.name} is not allowed\"\n"
    "default accept\n";

static int
setup(void **state)
{
	char conf[512];
	struct diag d = { 0 };
	struct snapshot *s;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file("policy.rules", policy_text);
	/* a resolver nobody answers: the checks report temperror */
	snprintf(conf, sizeof(conf), "authserv_id = mx.corp.test\n"
	    "resolver = 127.0.0.1:9\ndns_timeout = 300ms\n");
	write_file("portcullis.conf", conf);
	snprintf(conf, sizeof(conf), "%s/portcullis.conf", dir);
	addr_init();
	tag_init();
	s = snapshot_load(conf, &d);
	if (s == NULL)
		fail_msg("load: %s", d.n ? d.msgs[0] : "?");
	assert_int_equal(snapshot_start(s, &d), 0);
	snapshot_publish(s);
	diag_free(&d);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snapshot_clear();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct core_conn *
connect_from(const char *ip, struct verdict *v)
{
	struct core_client cl = { ip, NULL, NULL, NULL };

	return core_connect(snapshot_acquire(), &cl, v);
}

static const struct hdr_edit *
find_edit(const struct hdr_edit *e, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			return &e[i];
	return NULL;
}

/* One message with a blocked attachment after `pad` bytes of text: the
 * attachment check reads the spool, whether it stayed in memory (small)
 * or moved to a temporary file (past 512 KB). */
static void
attach_after(size_t pad)
{
	static const char head[] =
	    "--b\r\nContent-Type: text/plain\r\n\r\n";
	static const char tail[] =
	    "\r\n--b\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=\"run.exe\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAA=\r\n"
	    "--b--\r\n";
	char line[80];
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);
	size_t done = 0;

	memset(line, 'x', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	core_helo(c, "mail.sender.test", &v);
	core_mail(c, "<alice@sender.test>", NULL, &v);
	core_rcpt(c, "<bob@corp.test>", &v);
	core_header(c, "From", "Alice <alice@sender.test>");
	core_header(c, "MIME-Version", "1.0");
	core_header(c, "Content-Type", "multipart/mixed;\n\tboundary=\"b\"");
	core_eoh(c, &v);
	assert_false(v.decided);
	core_body(c, (const unsigned char *)head, sizeof(head) - 1);
	for (; done < pad; done += sizeof(line))
		core_body(c, (const unsigned char *)line, sizeof(line));
	core_body(c, (const unsigned char *)tail, sizeof(tail) - 1);
	core_eom(c, &v);
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_REJECT);
	assert_string_equal(v.rule, "attach");
	assert_string_equal(v.text, "attachment run.exe is not allowed");
	verdict_clear(&v);
	core_close(c);
}

static void
test_attach_spool_small(void **state)
{
	(void)state;
	attach_after(1000);
}

static void
test_attach_spool_large(void **state)
{
	(void)state;
	attach_after(2 * 1024 * 1024);	/* past the in-memory spool */
}

static void
test_external_tagged(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);
	const struct hdr_edit *e;

	(void)state;
	assert_false(v.decided);
	core_helo(c, "mail.sender.test", &v);
	assert_false(v.decided);
	core_mail(c, "<alice@sender.test>", NULL, &v);
	assert_false(v.decided);
	core_rcpt(c, "<bob@corp.test>", &v);
	assert_false(v.decided);
	core_header(c, "From", "Alice <alice@sender.test>");
	core_header(c, "Subject", "hello");
	core_header(c, "Authentication-Results", "mx.corp.test; spf=pass");
	core_header(c, "Authentication-Results", "other.test; spf=fail");
	core_header(c, "Authentication-Results",
	    "(forged) MX.corp.test; dkim=pass");
	core_eoh(c, &v);
	assert_false(v.decided);
	core_body(c, (const unsigned char *)"hi\r\n", 4);
	core_eom(c, &v);
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_ACCEPT);
	assert_string_equal(v.rule, "default");
	assert_int_equal(v.stage, POL_STAGE_EOM);
	e = find_edit(v.changed, v.nchanged, "Subject");
	assert_non_null(e);
	assert_int_equal(e->index, 1);
	assert_string_equal(e->value, "[EXTERNAL] hello");
	e = find_edit(v.added, v.nadded, "Authentication-Results");
	assert_non_null(e);
	assert_int_equal(strncmp(e->value, "mx.corp.test;", 13), 0);
	assert_non_null(strstr(e->value, "spf=temperror "
	    "smtp.mailfrom=alice@sender.test smtp.helo=mail.sender.test"));
	assert_non_null(strstr(e->value, "dkim=none"));
	assert_non_null(strstr(e->value, "dmarc=temperror"));
	/* ours (1 and 3) removed, highest first; other.test kept */
	assert_int_equal(v.nremoved, 2);
	assert_int_equal(v.removed[0].index, 3);
	assert_int_equal(v.removed[1].index, 1);
	verdict_clear(&v);
	core_close(c);
}

static void
test_missing_subject_added(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);
	const struct hdr_edit *e;

	(void)state;
	core_helo(c, "x.test", &v);
	core_mail(c, "<>", NULL, &v);
	core_rcpt(c, "<bob@corp.test>", &v);
	core_header(c, "From", "<mailer-daemon@sender.test>");
	core_eoh(c, &v);
	core_eom(c, &v);
	assert_int_equal(v.action, POL_ACT_ACCEPT);
	assert_null(find_edit(v.changed, v.nchanged, "Subject"));
	e = find_edit(v.added, v.nadded, "Subject");
	assert_non_null(e);
	assert_string_equal(e->value, "[EXTERNAL]");
	/* null sender: postmaster@HELO (DESIGN.md section 6) */
	e = find_edit(v.added, v.nadded, "Authentication-Results");
	assert_non_null(strstr(e->value, "smtp.mailfrom=postmaster@x.test"));
	verdict_clear(&v);
	core_close(c);
}

static void
test_trusted_untouched(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("10.1.2.3", &v);

	(void)state;
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_ACCEPT);
	assert_int_equal(v.stage, POL_STAGE_CONNECT);
	assert_string_equal(v.rule, "trusted");
	assert_int_equal(v.nadded + v.nchanged + v.nremoved, 0);
	core_close(c);
	/* IPv4-mapped IPv6 is the IPv4 client */
	c = connect_from("::ffff:10.9.9.9", &v);
	assert_true(v.decided);
	core_close(c);
	c = connect_from("2001:db8::25", &v);
	assert_true(v.decided);
	core_close(c);
}

static void
test_authenticated_accepted_at_mail(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);

	(void)state;
	assert_false(v.decided);
	core_helo(c, "laptop", &v);
	core_mail(c, "<alice@corp.test>", "alice", &v);
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_ACCEPT);
	assert_int_equal(v.stage, POL_STAGE_MAIL);
	core_close(c);
}

static void
test_reject_at_mail(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);

	(void)state;
	core_helo(c, "bad.test", &v);
	core_mail(c, "<spam@bad.test>", NULL, &v);
	/* decided at MAIL, answered at each RCPT (smtpd_delay_reject) */
	assert_false(v.decided);
	core_rcpt(c, "<bob@corp.test>", &v);
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_REJECT);
	assert_int_equal(v.code, 550);
	assert_string_equal(v.dsn, "5.7.1");
	assert_string_equal(v.text, "sender spam@bad.test blocked");
	assert_string_equal(v.rule, "blocked");
	assert_int_equal(v.stage, POL_STAGE_MAIL);
	verdict_clear(&v);
	/* every recipient of the message gets the same refusal */
	core_rcpt(c, "<alice@corp.test>", &v);
	assert_true(v.decided);
	assert_int_equal(v.code, 550);
	assert_string_equal(v.rule, "blocked");
	core_close(c);
}

static void
test_tempfail_one_recipient(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);

	(void)state;
	core_helo(c, "a.test", &v);
	core_mail(c, "<a@a.test>", NULL, &v);
	assert_false(v.decided);
	core_rcpt(c, "<later@corp.test>", &v);
	assert_true(v.decided);
	assert_int_equal(v.action, POL_ACT_TEMPFAIL);
	assert_int_equal(v.code, 451);
	assert_string_equal(v.dsn, "4.7.1");
	assert_string_equal(v.text, "try later");
	core_rcpt(c, "<x@nowhere.test>", &v);
	assert_true(v.decided);
	assert_int_equal(v.code, 550);
	assert_string_equal(v.dsn, "5.7.1");
	assert_string_equal(v.text, "message rejected by policy");
	core_rcpt(c, "<bob@corp.test>", &v);
	assert_false(v.decided);
	core_header(c, "Subject", "=?UTF-8?B?R3LDvMOfZQ==?=");
	core_eoh(c, &v);
	core_eom(c, &v);
	assert_int_equal(v.action, POL_ACT_ACCEPT);
	assert_non_null(find_edit(v.changed, v.nchanged, "Subject"));
	verdict_clear(&v);
	core_close(c);
}

static void
test_quarantine_spoof(void **state)
{
	struct verdict v;
	struct core_conn *c = connect_from("192.0.2.7", &v);

	(void)state;
	core_helo(c, "a.test", &v);
	core_mail(c, "<ceo@corp.test>", NULL, &v);
	core_rcpt(c, "<bob@corp.test>", &v);
	core_header(c, "From", "CEO <ceo@CORP.test>");
	core_header(c, "Subject", "[EXTERNAL] Re: wire transfer");
	core_eoh(c, &v);
	assert_false(v.decided);	/* quarantine waits for eom */
	core_eom(c, &v);
	assert_int_equal(v.action, POL_ACT_QUARANTINE);
	assert_string_equal(v.rule, "spoof");
	assert_int_equal(v.stage, POL_STAGE_EOH);
	assert_string_equal(v.quarantine, "spoofed corp.test");
	/* already tagged: not again */
	assert_null(find_edit(v.changed, v.nchanged, "Subject"));
	assert_non_null(find_edit(v.added, v.nadded,
	    "Authentication-Results"));
	verdict_clear(&v);
	core_close(c);
}

static void
test_unsupported_fact_refused(void **state)
{
	struct diag d = { 0 };
	char conf[300];

	(void)state;
	/* every fact is computed now; a fact whose data source is not
	 * configured is still refused rather than always empty */
	write_file("geo.rules", "default accept\n"
	    "rule g: when client.country is \"KP\" then reject\n");
	write_file("geo.conf", "policy = geo.rules\n");
	snprintf(conf, sizeof(conf), "%s/geo.conf", dir);
	assert_null(snapshot_load(conf, &d));
	assert_true(d.nerrors >= 1);
	assert_non_null(strstr(d.msgs[0], "geo.rules:2:14: fact "
	    "'client.country' needs a country database (geoip_db"));
	diag_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_external_tagged),
		cmocka_unit_test(test_attach_spool_small),
		cmocka_unit_test(test_attach_spool_large),
		cmocka_unit_test(test_missing_subject_added),
		cmocka_unit_test(test_trusted_untouched),
		cmocka_unit_test(test_authenticated_accepted_at_mail),
		cmocka_unit_test(test_reject_at_mail),
		cmocka_unit_test(test_tempfail_one_recipient),
		cmocka_unit_test(test_quarantine_spoof),
		cmocka_unit_test(test_unsupported_fact_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
