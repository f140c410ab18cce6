/*
 * nullmilter.c - a do-nothing libmilter filter that answers every step
 * (no steps or no-reply flags declined): the framework's own cost, the
 * reference line of tests/bench/compare.
 *
 * usage: nullmilter SOCKET   (libmilter syntax: unix:/path, inet:PORT@HOST)
 */
#include <stdio.h>
#include <stdlib.h>
#include <libmilter/mfapi.h>

static sfsistat
ok_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx; (void)host; (void)sa;
	return SMFIS_CONTINUE;
}

static sfsistat
ok_argv(SMFICTX *ctx, char **argv)
{
	(void)ctx; (void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
ok_str(SMFICTX *ctx, char *s)
{
	(void)ctx; (void)s;
	return SMFIS_CONTINUE;
}

static sfsistat
ok_header(SMFICTX *ctx, char *n, char *v)
{
	(void)ctx; (void)n; (void)v;
	return SMFIS_CONTINUE;
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
	return SMFIS_CONTINUE;
}

static sfsistat
ok_unknown(SMFICTX *ctx, const char *s)
{
	(void)ctx; (void)s;
	return SMFIS_CONTINUE;
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
	.xxfi_eoh = ok_ctx,
	.xxfi_body = ok_body,
	.xxfi_eom = ok_ctx,
	.xxfi_abort = ok_ctx,
	.xxfi_close = ok_ctx,
	.xxfi_unknown = ok_unknown,
	.xxfi_data = ok_ctx,
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nullmilter SOCKET\n");
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
