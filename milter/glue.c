/*
 * glue.c - libmilter callbacks mapped onto the pipeline core (core.h).
 * The only file that includes libmilter.  A callback fetches its
 * connection, copies the arguments it keeps, calls the core, applies the
 * verdict, and decides nothing itself.
 * Owns: the registration, the active-connection counter (atomic).
 * Errors: a core failure arrives as an on_error verdict; a libmilter call
 * that fails at end of message turns into a tempfail, never an accept of
 * a message whose edits were lost.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core.h"
#include "glue.h"
#include "netopt.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

static atomic_int active_conns;
static atomic_int messages_in_flight;
static atomic_bool draining;

int
glue_active(void)
{
	return atomic_load(&active_conns);
}

int
glue_in_flight(void)
{
	return atomic_load(&messages_in_flight);
}

void
glue_drain(void)
{
	atomic_store(&draining, true);
}

/*
 * A message is in flight from MAIL FROM until its end (eom, abort, close,
 * or a refusal at MAIL).  The flag lives in the libmilter context so each
 * message is counted exactly once.
 *
 * Replies the MTA does not wait for.  Every stage the MTA waits for costs
 * a round trip and, in libmilter, a trip of the session through its worker
 * pool: most of a milter's cost.  So connect, HELO, MAIL and end of header
 * are negotiated without a reply (SMFIP_NR_*) where the MTA offers it; the
 * MTA then sends them with the next stage it waits for.  A decision made at
 * such a stage is kept here and given at the next stage that is answered:
 * RCPT (always answered: a refusal of one recipient, such as the 452 of
 * RFC 5321 4.5.3.1.10, exists only there) or end of message.  Nothing
 * changes for the SMTP client: refusals before RCPT were already given at
 * RCPT (as Postfix's smtpd_delay_reject does), a refusal at end of header
 * reaches the client after the final dot either way, and an accept still
 * lets the message through untouched.  Only an internal failure (on_error)
 * or a drain refusal at connect, HELO or MAIL now reaches the client at
 * RCPT instead: the same temporary refusal, one step later.
 */
struct glue_conn {
	struct core_conn *core;		/* owns */
	bool in_flight;
	unsigned long noreply;		/* SMFIP_NR_* agreed with the MTA */
	struct verdict *conn_pending;	/* owns; decided at connect or HELO,
					 * for every message of the
					 * connection */
	struct verdict *msg_pending;	/* owns; decided at MAIL or end of
					 * header, for this message */
};

static void
flight_begin(struct glue_conn *g)
{
	if (!g->in_flight) {
		g->in_flight = true;
		atomic_fetch_add(&messages_in_flight, 1);
	}
}

static void
flight_end(struct glue_conn *g)
{
	if (g->in_flight) {
		g->in_flight = false;
		atomic_fetch_sub(&messages_in_flight, 1);
	}
}

/* A temporary refusal decided by the glue itself. */
static void
glue_tempfail(struct verdict *v, int code, const char *dsn, const char *text)
{
	memset(v, 0, sizeof(*v));
	v->decided = true;
	v->action = POL_ACT_TEMPFAIL;
	v->code = code;
	snprintf(v->dsn, sizeof(v->dsn), "%s", dsn);
	snprintf(v->text, sizeof(v->text), "%s", text);
}

/* While draining, work that has not started is refused for later. */
static void
drain_refusal(struct verdict *v)
{
	glue_tempfail(v, 421, "4.3.2", "mail filter restarting, please try "
	    "again later");
	snprintf(v->rule, sizeof(v->rule), "drain");
}

/* A failure of the glue itself: on_error's reply, as the core gives for
 * its own failures. */
static void
glue_failure(struct verdict *v)
{
	glue_tempfail(v, 451, "4.3.0", "temporary failure in the mail "
	    "filter, please try again later");
	v->on_error = true;
}

static void
pending_drop(struct verdict **slot)
{
	if (*slot != NULL) {
		verdict_clear(*slot);
		free(*slot);
		*slot = NULL;
	}
}

static struct glue_conn *
glue_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static void
note_qid(SMFICTX *ctx, struct core_conn *c)
{
	const char *qid = smfi_getsymval(ctx, "i");

	if (qid != NULL)
		core_set_queue_id(c, qid);
}

/* smfi_setreply treats '%' specially: double it; 980 bytes at most. */
static void
set_reply(SMFICTX *ctx, const struct verdict *v)
{
	char code[8], text[2 * (POL_EXPAND_MAX + 1)];
	size_t i, o = 0;

	snprintf(code, sizeof(code), "%d", v->code);
	for (i = 0; v->text[i] != '\0' && o + 2 < sizeof(text) &&
	    o < 900; i++) {
		if (v->text[i] == '%')
			text[o++] = '%';
		text[o++] = v->text[i];
	}
	text[o] = '\0';
	if (smfi_setreply(ctx, code, (char *)v->dsn, text) != MI_SUCCESS)
		log_warn("smfi_setreply(%s %s) failed", code, v->dsn);
}

/* Maps a decided verdict of a stage before end of message. */
static sfsistat
answer(SMFICTX *ctx, struct verdict *v)
{
	sfsistat st = SMFIS_CONTINUE;

	if (!v->decided)
		return SMFIS_CONTINUE;
	switch (v->action) {
	case POL_ACT_ACCEPT:
		st = SMFIS_ACCEPT;
		break;
	case POL_ACT_REJECT:
		set_reply(ctx, v);
		st = SMFIS_REJECT;
		break;
	case POL_ACT_TEMPFAIL:
		set_reply(ctx, v);
		st = SMFIS_TEMPFAIL;
		break;
	default:
		st = SMFIS_CONTINUE;	/* quarantine waits for eom */
	}
	verdict_clear(v);
	return st;
}

/*
 * The reply of a stage the MTA may not wait for (nr_bit): when it does
 * not, a decision (accept, reject, tempfail) is kept in *slot for the next
 * answered stage and libmilter is told there is no reply.
 */
static sfsistat
reply_or_keep(SMFICTX *ctx, struct glue_conn *g, unsigned long nr_bit,
    struct verdict **slot, struct verdict *v)
{
	bool final = v->decided && (v->action == POL_ACT_ACCEPT ||
	    v->action == POL_ACT_REJECT || v->action == POL_ACT_TEMPFAIL);

	if (g == NULL || (g->noreply & nr_bit) == 0)
		return answer(ctx, v);
	if (final && *slot == NULL) {
		/* the reply only: edits exist at end of message alone */
		*slot = xcalloc(1, sizeof(**slot));
		**slot = *v;
		(*slot)->added = (*slot)->changed = (*slot)->removed = NULL;
		(*slot)->nadded = (*slot)->nchanged = (*slot)->nremoved = 0;
		(*slot)->new_body = NULL;
		(*slot)->new_body_len = 0;
	}
	verdict_clear(v);
	return SMFIS_NOREPLY;
}

/* The decision kept for this stage, if any. */
static struct verdict *
pending_of(const struct glue_conn *g)
{
	if (g == NULL)
		return NULL;
	return g->conn_pending != NULL ? g->conn_pending : g->msg_pending;
}

/* Gives a kept decision at an answered stage (the decision stays kept:
 * a refusal answers every recipient, an accept every message). */
static sfsistat
answer_kept(SMFICTX *ctx, const struct verdict *kept)
{
	struct verdict v = *kept;

	return answer(ctx, &v);
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want_act = SMFIF_ADDHDRS | SMFIF_CHGHDRS |
	    SMFIF_QUARANTINE;
	unsigned long proto = 0;
	struct glue_conn *g;

	(void)f2;
	(void)f3;
	if ((f0 & want_act) != want_act) {
		log_err("the MTA does not allow header changes and "
		    "quarantine (milter actions 0x%lx)", f0);
		return SMFIS_REJECT;
	}
	/* only the steps we need, and no reply where we never decide: one
	 * round trip per header is most of a milter's cost.  The body is
	 * always needed: DKIM, which every Authentication-Results header
	 * reports, hashes it. */
	proto |= f1 & (SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_HDR |
	    SMFIP_NR_UNKN | SMFIP_NR_DATA | SMFIP_NR_BODY | SMFIP_NR_CONN |
	    SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_EOH);
	/* body replacement ("strip") when the MTA offers it; without it a
	 * strip decision is refused with tempfail, never delivered whole */
	*pf0 = want_act | (f0 & (SMFIF_SETSYMLIST | SMFIF_CHGBODY));
	/* the connection's state starts here: which replies are skipped.
	 * While draining, none: a new session is refused at connect at
	 * once, not at a RCPT that may come after the daemon is gone. */
	if ((g = glue_of(ctx)) == NULL) {
		g = xcalloc(1, sizeof(*g));
		if (smfi_setpriv(ctx, g) != MI_SUCCESS) {
			free(g);
			return SMFIS_REJECT;
		}
		atomic_fetch_add(&active_conns, 1);
	}
	g->noreply = atomic_load(&draining) ? 0 : proto & (SMFIP_NR_CONN |
	    SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_EOH);
	*pf1 = (proto & ~(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
	    SMFIP_NR_EOH)) | g->noreply;
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		/* ask for what we read even when the MTA config does not
		 * (macro names as both Postfix and Sendmail spell them),
		 * and only that: every macro is sent with every message */
		smfi_setsymlist(ctx, SMFIM_CONNECT,
		    "{client_addr} {client_name}");
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOH, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	char ip[INET6_ADDRSTRLEN] = "";
	struct core_client cl = { NULL, hostname, NULL, NULL };
	struct snapshot *s;
	struct glue_conn *g = glue_of(ctx);
	struct verdict v;

	if (g == NULL) {
		/* an MTA that did not negotiate: nothing is skipped */
		g = xcalloc(1, sizeof(*g));
		if (smfi_setpriv(ctx, g) != MI_SUCCESS) {
			free(g);
			return SMFIS_TEMPFAIL;
		}
		atomic_fetch_add(&active_conns, 1);
	}
	if (atomic_load(&draining)) {
		drain_refusal(&v);
		return reply_or_keep(ctx, g, SMFIP_NR_CONN, &g->conn_pending,
		    &v);
	}
	if ((s = snapshot_acquire()) == NULL) {
		glue_failure(&v);
		return reply_or_keep(ctx, g, SMFIP_NR_CONN, &g->conn_pending,
		    &v);
	}
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip,
		    sizeof(ip));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    ip, sizeof(ip));
	else {
		/* no socket address (e.g. local submission): the macro */
		const char *m = smfi_getsymval(ctx, "{client_addr}");

		if (m != NULL)
			snprintf(ip, sizeof(ip), "%s", m);
	}
	if (ip[0] != '\0')
		cl.ip = ip;
	if (cl.name == NULL)
		cl.name = smfi_getsymval(ctx, "{client_name}");
	g->core = core_connect(s, &cl, &v);
	return reply_or_keep(ctx, g, SMFIP_NR_CONN, &g->conn_pending, &v);
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	struct glue_conn *g = glue_of(ctx);
	struct verdict *kept = pending_of(g);
	struct verdict v;

	if (kept != NULL)
		return (g->noreply & SMFIP_NR_HELO) != 0 ? SMFIS_NOREPLY :
		    answer_kept(ctx, kept);
	if (g == NULL || g->core == NULL)
		return SMFIS_TEMPFAIL;
	core_helo(g->core, helo, &v);
	return reply_or_keep(ctx, g, SMFIP_NR_HELO, &g->conn_pending, &v);
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct glue_conn *g = glue_of(ctx);
	struct verdict v;
	sfsistat st;

	if (g == NULL)
		return SMFIS_TEMPFAIL;
	flight_end(g);		/* a previous message ended without eom */
	pending_drop(&g->msg_pending);
	/* in flight from here, also when its answer waits for RCPT: a
	 * drain then waits until that answer is given */
	flight_begin(g);
	if (g->conn_pending != NULL) {
		st = (g->noreply & SMFIP_NR_MAIL) != 0 ? SMFIS_NOREPLY :
		    answer_kept(ctx, g->conn_pending);
		if (st != SMFIS_NOREPLY && st != SMFIS_CONTINUE)
			flight_end(g);
		return st;
	}
	if (g->core == NULL) {
		flight_end(g);
		return SMFIS_TEMPFAIL;
	}
	if (atomic_load(&draining)) {
		drain_refusal(&v);
		st = reply_or_keep(ctx, g, SMFIP_NR_MAIL, &g->msg_pending,
		    &v);
		if (st != SMFIS_NOREPLY)
			flight_end(g);
		return st;
	}
	note_qid(ctx, g->core);
	core_mail(g->core, argv[0], smfi_getsymval(ctx, "{auth_authen}"),
	    &v);
	st = reply_or_keep(ctx, g, SMFIP_NR_MAIL, &g->msg_pending, &v);
	if (st != SMFIS_CONTINUE && st != SMFIS_NOREPLY)
		flight_end(g);	/* accepted or refused: nothing more comes */
	return st;
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct glue_conn *g = glue_of(ctx);
	struct verdict *kept = pending_of(g);
	struct verdict v;
	sfsistat st;

	if (kept != NULL)
		st = answer_kept(ctx, kept);
	else if (g == NULL || g->core == NULL)
		return SMFIS_TEMPFAIL;
	else {
		note_qid(ctx, g->core);
		core_rcpt(g->core, argv[0], &v);
		st = answer(ctx, &v);
	}
	if (st == SMFIS_ACCEPT)
		flight_end(g);	/* the MTA sends nothing more of it */
	return st;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct glue_conn *g = glue_of(ctx);

	if (g != NULL && g->core != NULL && pending_of(g) == NULL)
		core_header(g->core, name, value);
	/* SMFIP_NR_HDR negotiated: the MTA waits for no reply */
	return SMFIS_NOREPLY;
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct glue_conn *g = glue_of(ctx);
	struct verdict *kept = pending_of(g);
	struct verdict v;

	if (kept != NULL)
		return (g->noreply & SMFIP_NR_EOH) != 0 ? SMFIS_NOREPLY :
		    answer_kept(ctx, kept);
	if (g == NULL || g->core == NULL)
		return SMFIS_TEMPFAIL;
	note_qid(ctx, g->core);
	core_eoh(g->core, &v);
	return reply_or_keep(ctx, g, SMFIP_NR_EOH, &g->msg_pending, &v);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
	struct glue_conn *g = glue_of(ctx);

	/* a message decided already is not read any further */
	if (g != NULL && g->core != NULL && pending_of(g) == NULL)
		core_body(g->core, p, n);
	return SMFIS_NOREPLY;
}

/* Applies the edits of an end-of-message verdict.  -1 when one failed. */
static int
apply_edits(SMFICTX *ctx, const struct verdict *v)
{
	size_t i;

	for (i = 0; i < v->nremoved; i++)
		if (smfi_chgheader(ctx, v->removed[i].name,
		    (int)v->removed[i].index, NULL) != MI_SUCCESS)
			return -1;
	for (i = 0; i < v->nchanged; i++)
		if (smfi_chgheader(ctx, v->changed[i].name,
		    (int)v->changed[i].index, v->changed[i].value) !=
		    MI_SUCCESS)
			return -1;
	for (i = 0; i < v->nadded; i++) {
		int rc;

		/* Authentication-Results goes on top (RFC 8601 5) */
		if (v->added[i].index == 0 &&
		    str_ieq(v->added[i].name, "Authentication-Results"))
			rc = smfi_insheader(ctx, 0, v->added[i].name,
			    v->added[i].value);
		else
			rc = smfi_addheader(ctx, v->added[i].name,
			    v->added[i].value);
		if (rc != MI_SUCCESS)
			return -1;
	}
	if (v->action == POL_ACT_QUARANTINE &&
	    smfi_quarantine(ctx, (char *)v->quarantine) != MI_SUCCESS)
		return -1;
	if (v->new_body != NULL) {
		/* libmilter sends it in chunks of its own size limit */
		size_t off = 0, chunk = 65535;

		do {
			size_t n = v->new_body_len - off < chunk ?
			    v->new_body_len - off : chunk;

			if (smfi_replacebody(ctx,
			    (unsigned char *)v->new_body + off, (int)n) !=
			    MI_SUCCESS)
				return -1;
			off += n;
		} while (off < v->new_body_len);
	}
	return 0;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct glue_conn *g = glue_of(ctx);
	struct verdict *kept = pending_of(g);
	struct verdict v;
	sfsistat st;

	if (kept != NULL) {
		/* decided before: the accept adds nothing, a refusal stands */
		st = answer_kept(ctx, kept);
		pending_drop(&g->msg_pending);
		flight_end(g);
		return st == SMFIS_CONTINUE ? SMFIS_ACCEPT : st;
	}
	if (g == NULL || g->core == NULL)
		return SMFIS_TEMPFAIL;
	note_qid(ctx, g->core);
	core_eom(g->core, &v);
	if ((v.action == POL_ACT_ACCEPT || v.action == POL_ACT_QUARANTINE ||
	    v.action == POL_ACT_STRIP) && apply_edits(ctx, &v) != 0) {
		log_err("cannot apply the header edits; tempfail");
		verdict_clear(&v);
		glue_failure(&v);
	}
	st = answer(ctx, &v);
	flight_end(g);
	/* quarantine and strip are accepted messages */
	return st == SMFIS_CONTINUE ? SMFIS_ACCEPT : st;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct glue_conn *g = glue_of(ctx);

	if (g != NULL) {
		pending_drop(&g->msg_pending);
		if (g->core != NULL)
			core_abort(g->core);
		flight_end(g);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct glue_conn *g = glue_of(ctx);

	/* close may come without negotiation (and so without a context) */
	if (g != NULL) {
		smfi_setpriv(ctx, NULL);
		core_close(g->core);
		flight_end(g);
		pending_drop(&g->msg_pending);
		pending_drop(&g->conn_pending);
		free(g);
		atomic_fetch_sub(&active_conns, 1);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc filter = {
	.xxfi_name = "portcullis",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
	    SMFIF_SETSYMLIST | SMFIF_CHGBODY,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_unknown = NULL,
	.xxfi_data = NULL,
	.xxfi_negotiate = cb_negotiate,
};

/* libmilter keeps the pointer given to smfi_setconn() until it exits */
static char *milter_conn;	/* owns */

int
glue_open(const char *spec)
{
	char *conn = milter_conn = xstrdup(spec);

	if (smfi_setconn(conn) != MI_SUCCESS) {
		log_err("invalid socket '%s'", spec);
		return -1;
	}
	if (smfi_register(filter) != MI_SUCCESS) {
		log_err("smfi_register failed");
		return -1;
	}
	if (smfi_opensocket(true) != MI_SUCCESS) {
		log_err("cannot open the milter socket %s", spec);
		return -1;
	}
	/* replies must not wait for the MTA's delayed ACK (netopt.h) */
	if (strncmp(spec, "inet", 4) == 0 && netopt_nodelay_listeners() == 0)
		log_warn("cannot set TCP_NODELAY on the milter socket");
	return 0;
}

int
glue_run(void)
{
	return smfi_main() == MI_SUCCESS ? 0 : -1;
}

void
glue_stop(void)
{
	smfi_stop();
}

void
glue_close(void)
{
	free(milter_conn);
	milter_conn = NULL;
}
