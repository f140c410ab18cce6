/*
 * load.c - loading a policy (read the file, parse, read the list files
 * it names, check, sort the diagnostics) and the read-only accessors of
 * a loaded policy used by the pipeline.
 * Owns: the struct policy it returns, with everything in it.
 * Limits: POL_FILE_MAX bytes of policy; list limits in lists.c.
 * Files: the policy and its list files are refused when other users can
 * write them (pol_file_untrusted(): every user; in the daemon's strict
 * mode also the group, and owners other than root and the daemon's user).
 * Errors: pol_load() returns NULL with at least one error in the
 * caller's struct pol_diag; accessors return NULL/0/false.
 * Thread safety: loading is reentrant; a loaded policy is immutable and
 * may be read by any number of threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pol_int.h"

struct policy *
pol_new(const char *file)
{
	struct policy *pol = pol_xcalloc(1, sizeof(*pol));
	struct pol_pos none = { 0, 0 };
	const char *slash;

	pol->file = pol_xstrdup(file);
	if ((slash = strrchr(file, '/')) != NULL)
		pol->basedir = pol_xstrndup(file, slash == file ? 1 :
		    (size_t)(slash - file));
	pol->internal = pol_list_new("internal domains", none);
	pol->trusted = pol_list_new("trusted networks", none);
	pol->def_action = POL_ACT_ACCEPT;
	pol->grey.delay = POL_GREY_DELAY_DEFAULT;
	pol->grey.window = POL_GREY_WINDOW_DEFAULT;
	pol->grey.expire = POL_GREY_EXPIRE_DEFAULT;
	pol->grey.netmask4 = POL_GREY_NETMASK4_DEFAULT;
	pol->grey.netmask6 = POL_GREY_NETMASK6_DEFAULT;
	pol->grey.autoallow = POL_GREY_AUTOALLOW_DEFAULT;
	return pol;
}

static void
bl_free_all(struct pol_dnsbl *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free((void *)d[i].zone);
		free((void *)d[i].codes);
		free((void *)d[i].masks);
	}
	free(d);
}

void
pol_free(struct policy *pol)
{
	size_t i;

	if (pol == NULL)
		return;
	for (i = 0; i < pol->nrules; i++) {
		free(pol->rules[i].name);
		free(pol->rules[i].text);
		pol_node_free(pol->rules[i].cond);
	}
	free(pol->rules);
	for (i = 0; i < pol->nscores; i++) {
		free(pol->scores[i].name);
		pol_node_free(pol->scores[i].cond);
	}
	free(pol->scores);
	for (i = 0; i < pol->nlists; i++)
		pol_list_free(pol->lists[i]);
	free(pol->lists);
	pol_list_free(pol->internal);
	pol_list_free(pol->trusted);
	bl_free_all(pol->dnsbl, pol->ndnsbl);
	bl_free_all(pol->uribl, pol->nuribl);
	for (i = 0; i < pol->nexts; i++)
		free(pol->exts[i]);
	free(pol->exts);
	free(pol->tag);
	pol_node_free(pol->tag_cond);
	free(pol->def_text);
	for (i = 0; i < pol->nheaders; i++)
		free(pol->headers[i]);
	free(pol->headers);
	free(pol->basedir);
	free(pol->file);
	free(pol);
}

bool
pol_file_untrusted(const struct stat *st, const struct pol_file_owner *owner,
    char *why, size_t whylen)
{
	mode_t w = owner != NULL && owner->strict ? S_IWGRP | S_IWOTH :
	    S_IWOTH;

	if (st->st_mode & w) {
		snprintf(why, whylen, "writable by other users (mode %04o)",
		    (unsigned)(st->st_mode & 07777));
		return true;
	}
	if (owner == NULL || !owner->strict || st->st_uid == 0 ||
	    st->st_uid == owner->uid)
		return false;
	if (owner->uid == 0)
		snprintf(why, whylen, "owned by uid %lu, not by root",
		    (unsigned long)st->st_uid);
	else
		snprintf(why, whylen, "owned by uid %lu, not by root or uid "
		    "%lu (the user portcullis runs as)",
		    (unsigned long)st->st_uid, (unsigned long)owner->uid);
	return true;
}

static void
load_lists(struct policy *pol, struct pol_ctx *ctx,
    const struct pol_file_owner *owner)
{
	struct pol_list *l;
	char *path, why[160];
	size_t i, n;
	int r;

	for (i = 0; i < pol->nlists; i++) {
		l = pol->lists[i];
		if (l->path == NULL || l->path[0] == '\0')
			continue;
		if (l->path[0] == '/' || pol->basedir == NULL)
			path = pol_xstrdup(l->path);
		else {
			n = strlen(pol->basedir) + strlen(l->path) + 2;
			path = pol_xmalloc(n);
			snprintf(path, n, "%s/%s", pol->basedir, l->path);
		}
		ctx->sub = true;
		ctx->subpos = l->path_pos;
		ctx->subcount = 0;
		r = pol_list_load_file(l, ctx, path, owner, why,
		    sizeof(why));
		ctx->sub = false;
		if (r == -2)
			pol_report(ctx, true, pol->file, l->path_pos.line,
			    l->path_pos.col, "list file '%s' is not a regular "
			    "file", path);
		else if (r == -3)
			pol_report(ctx, true, pol->file, l->path_pos.line,
			    l->path_pos.col, "list file '%s' is larger than "
			    "%u bytes", path, POL_LIST_FILE_MAX);
		else if (r == -4)
			pol_report(ctx, true, pol->file, l->path_pos.line,
			    l->path_pos.col, "list file '%s' refused: %s",
			    path, why);
		else if (r != 0)
			pol_report(ctx, true, pol->file, l->path_pos.line,
			    l->path_pos.col, "cannot read list file '%s': %s",
			    path, strerror(errno));
		free(path);
	}
}

static struct policy *
load_text(const char *name, const char *text, size_t len,
    const struct pol_file_owner *owner, struct pol_diag *diag)
{
	struct pol_ctx ctx;
	struct policy *pol;

	pol_ctx_init(&ctx, diag);
	pol = pol_new(name);
	if (len > POL_FILE_MAX)
		pol_report(&ctx, true, name, 1, 1, "policy larger than %u "
		    "bytes", POL_FILE_MAX);
	else {
		pol_parse(pol, &ctx, name, text, len);
		load_lists(pol, &ctx, owner);
		pol_check(pol, &ctx);
	}
	pol_ctx_finish(&ctx);
	if (ctx.failed) {
		pol_free(pol);
		return NULL;
	}
	return pol;
}

struct policy *
pol_load_buffer(const char *name, const char *text, size_t len,
    struct pol_diag *diag)
{
	if (name == NULL || diag == NULL || (text == NULL && len > 0))
		return NULL;
	return load_text(name, text != NULL ? text : "", len, NULL, diag);
}

struct policy *
pol_load(const char *path, struct pol_diag *diag)
{
	return pol_load_owned(path, NULL, diag);
}

struct policy *
pol_load_owned(const char *path, const struct pol_file_owner *owner,
    struct pol_diag *diag)
{
	struct pol_ctx ctx;
	struct policy *pol;
	struct stat st;
	const char *why = NULL;
	char *buf = NULL, untrusted[160];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (path == NULL || diag == NULL)
		return NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0 || fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((uint64_t)st.st_size > POL_FILE_MAX)
		why = "file too large";
	else if (pol_file_untrusted(&st, owner, untrusted,
	    sizeof(untrusted)))
		why = untrusted;
	else {
		buf = pol_xmalloc((size_t)st.st_size + 1);
		while (len <= (size_t)st.st_size) {
			n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				why = strerror(errno);
				break;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
		if (why == NULL && len > (size_t)st.st_size)
			why = "file changed while it was read";
	}
	if (fd >= 0)
		close(fd);
	if (why != NULL) {
		pol_ctx_init(&ctx, diag);
		pol_report(&ctx, true, path, 1, 1, "cannot load the policy: %s",
		    why);
		pol_ctx_finish(&ctx);
		free(buf);
		return NULL;
	}
	pol = load_text(path, buf, len, owner, diag);
	free(buf);
	return pol;
}

/* ---- accessors ---- */

bool
pol_references(const struct policy *pol, enum pol_fact f)
{
	if (pol == NULL || (int)f < 0 || f >= POL_FACT_COUNT)
		return false;
	return (pol->refs >> f) & 1;
}

bool
pol_reference_pos(const struct policy *pol, enum pol_fact f, unsigned *line,
    unsigned *col)
{
	if (!pol_references(pol, f) || pol->refpos[f].line == 0)
		return false;
	*line = pol->refpos[f].line;
	*col = pol->refpos[f].col;
	return true;
}

bool
pol_statement_pos(const struct policy *pol, const char *stmt, unsigned *line,
    unsigned *col)
{
	const struct pol_pos *p = NULL;

	if (pol == NULL || stmt == NULL)
		return false;
	if (strcmp(stmt, "attachments") == 0 && pol->nexts > 0)
		p = &pol->exts_pos;
	else if (strcmp(stmt, "greylist") == 0 && pol->grey.configured)
		p = &pol->grey_pos;
	if (p == NULL || p->line == 0)
		return false;
	*line = p->line;
	*col = p->col;
	return true;
}

size_t
pol_header_names(const struct policy *pol, const char *const **names)
{
	if (pol == NULL) {
		if (names != NULL)
			*names = NULL;
		return 0;
	}
	if (names != NULL)
		*names = (const char *const *)pol->headers;
	return pol->nheaders;
}

bool
pol_domain_is_internal(const struct policy *pol, const char *domain)
{
	if (pol == NULL || domain == NULL)
		return false;
	return pol_list_match(pol->internal, POL_M_DOMAIN, domain);
}

bool
pol_ip_is_trusted(const struct policy *pol, const struct pol_ip *ip)
{
	if (pol == NULL || ip == NULL)
		return false;
	return pol_list_match_ip(pol->trusted, ip);
}

const char *
pol_tag_text(const struct policy *pol)
{
	return pol != NULL ? pol->tag : NULL;
}

bool
pol_list_contains(const struct policy *pol, const char *name,
    const char *value)
{
	const struct pol_list *l = NULL;
	enum pol_match m;
	size_t i;

	if (pol == NULL || name == NULL || value == NULL)
		return false;
	if (strcmp(name, "trusted networks") == 0)
		l = pol->trusted;
	else if (strcmp(name, "internal domains") == 0)
		l = pol->internal;
	for (i = 0; l == NULL && i < pol->nlists; i++)
		if (strcmp(pol->lists[i]->name, name) == 0)
			l = pol->lists[i];
	if (l == NULL)
		return false;
	m = strchr(value, '@') != NULL ? POL_M_ADDR : POL_M_HOST;
	return pol_list_match(l, m, value);
}

size_t
pol_rule_count(const struct policy *pol)
{
	return pol != NULL ? pol->nrules : 0;
}

const char *
pol_rule_name(const struct policy *pol, size_t i)
{
	return pol != NULL && i < pol->nrules ? pol->rules[i].name : NULL;
}

bool
pol_rule_is_monitor(const struct policy *pol, size_t i)
{
	return pol != NULL && i < pol->nrules && pol->rules[i].monitor;
}

size_t
pol_dnsbl_count(const struct policy *pol)
{
	return pol != NULL ? pol->ndnsbl : 0;
}

const struct pol_dnsbl *
pol_dnsbl_get(const struct policy *pol, size_t i)
{
	return pol != NULL && i < pol->ndnsbl ? &pol->dnsbl[i] : NULL;
}

size_t
pol_uribl_count(const struct policy *pol)
{
	return pol != NULL ? pol->nuribl : 0;
}

const struct pol_dnsbl *
pol_uribl_get(const struct policy *pol, size_t i)
{
	return pol != NULL && i < pol->nuribl ? &pol->uribl[i] : NULL;
}

bool
pol_dnsbl_match(const struct pol_dnsbl *d, const struct pol_ip *answer)
{
	uint32_t a;
	size_t i;

	if (d == NULL || answer == NULL || answer->family != AF_INET)
		return false;
	a = (uint32_t)answer->addr[0] << 24 | (uint32_t)answer->addr[1] << 16 |
	    (uint32_t)answer->addr[2] << 8 | answer->addr[3];
	if (d->ncodes == 0 && d->nmasks == 0)
		return (a >> 24) == 127 && a != 0x7f000001 &&
		    (a >> 8) != 0x7fffff;
	for (i = 0; i < d->ncodes; i++)
		if (a >= d->codes[i].lo && a <= d->codes[i].hi)
			return true;
	for (i = 0; i < d->nmasks; i++)
		if (a & d->masks[i])
			return true;
	return false;
}

size_t
pol_attachment_exts(const struct policy *pol, const char *const **exts)
{
	if (pol == NULL) {
		if (exts != NULL)
			*exts = NULL;
		return 0;
	}
	if (exts != NULL)
		*exts = (const char *const *)pol->exts;
	return pol->nexts;
}

bool
pol_attachment_blocked(const struct policy *pol, const char *filename)
{
	size_t len, elen, i;
	const char *e;

	if (pol == NULL || filename == NULL)
		return false;
	len = strlen(filename);
	/* Windows ignores trailing dots and spaces: "x.exe. " is x.exe */
	while (len > 0 && (filename[len - 1] == '.' ||
	    filename[len - 1] == ' ' ||
	    (unsigned char)filename[len - 1] < 0x20 ||
	    filename[len - 1] == 0x7f))
		len--;
	for (i = 0; i < pol->nexts; i++) {
		e = pol->exts[i];
		elen = strlen(e);
		if (len > elen && filename[len - elen - 1] == '.' &&
		    pol_strcaseeq(filename + len - elen, elen, e, elen))
			return true;
	}
	return false;
}

const struct pol_greylist *
pol_greylist(const struct policy *pol)
{
	return pol != NULL ? &pol->grey : NULL;
}
