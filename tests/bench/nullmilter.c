/*
 * nullmilter.c - a do-nothing libmilter filter that answers every step
 * (no steps or no-reply flags declined): the framework's own cost, the
 * reference line of tests/bench/compare.  With -r it negotiates the
 * no-reply flag of every step the MTA offers and answers only the end of
 * the message: the floor of any libmilter filter that reads the whole
 * message (the "null-nr" line).
 *
 * usage: nullmilter [-r] SOCKET   (libmilter syntax: unix:/path,
 *        inet:PORT@HOST)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libmilter/mfapi.h>

static bool noreply;	/* -r */

/* The reply of a step: none where the MTA agreed to wait for none. */
static sfsistat
step_reply(void)
{
	return noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
ok_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx; (void)f0; (void)f2; (void)f3;
	*pf0 = 0;
	*pf1 = noreply ? f1 & (SMFIP_NR_CONN | SMFIP_NR_HELO |
	    SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN |
	    SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY) : 0;
	*pf2 = 0;
	*pf3 = 0;
	if (noreply && (*pf1 & SMFIP_NR_CONN) == 0)
		return SMFIS_REJECT;	/* would not measure what it says */
	return SMFIS_CONTINUE;
}

static sfsistat
ok_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx; (void)host; (void)sa;
	return step_reply();
}

static sfsistat
ok_argv(SMFICTX *ctx, char **argv)
{
	(void)ctx; (void)argv;
	return step_reply();
}

static sfsistat
ok_str(SMFICTX *ctx, char *s)
{
	(void)ctx; (void)s;
	return step_reply();
}

static sfsistat
ok_header(SMFICTX *ctx, char *n, char *v)
{
	(void)ctx; (void)n; (void)v;
	return step_reply();
}

static sfsistat
ok_ctx(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
ok_body(SMFICTX *ctx, unsigned char *b, size_t n)
{
	(void)ctx; (void)b; (void)n;
	return step_reply();
}

static sfsistat
ok_unknown(SMFICTX *ctx, const char *s)
{
	(void)ctx; (void)s;
	return step_reply();
}

/* end of header: answered only without -r */
static sfsistat
ok_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return step_reply();
}

static struct smfiDesc desc = {
	.xxfi_name = "nullmilter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = ok_connect,
	.xxfi_helo = ok_str,
	.xxfi_envfrom = ok_argv,
	.xxfi_envrcpt = ok_argv,
	.xxfi_header = ok_header,
	.xxfi_eoh = ok_eoh,
	.xxfi_body = ok_body,
	.xxfi_eom = ok_ctx,
	.xxfi_abort = ok_ctx,
	.xxfi_close = ok_ctx,
	.xxfi_unknown = ok_unknown,
	.xxfi_data = ok_eoh,
	.xxfi_negotiate = ok_negotiate,
};

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "-r") == 0) {
		noreply = true;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: nullmilter [-r] SOCKET\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot open %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
