/*
 * core.h - the message pipeline, independent of any MTA.
 * The glue (libmilter) and "portcullis check" feed it the events of one
 * SMTP connection: connect, helo, mail, rcpt, header, eoh, body, eom,
 * abort, close.  Each stage may decide; a decision comes back as a
 * struct verdict (action, SMTP reply, header edits) for the caller to apply.
 * Owns: per connection a struct core_conn (its snapshot reference, its
 * current message and that message's facts).  Not thread safe per
 * connection (libmilter serialises the callbacks of one connection).
 * Errors: an internal failure gives a verdict with on_error set and the
 * action of the config's on_error; never a silent accept.
 */
#ifndef PORTCULLIS_CORE_H
#define PORTCULLIS_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

#define CORE_ADDR_MAX		512	/* envelope address bytes */
#define CORE_RCPT_MAX		10000	/* recipients tracked per message */
#define CORE_HDR_KEEP_MAX	(1024 * 1024)	/* header bytes kept */
#define CORE_HDR_VALUE_MAX	(64 * 1024)	/* one kept header value */

struct snapshot;
struct core_conn;

struct hdr_edit {
	char *name;		/* owns */
	char *value;		/* owns; NULL for a removal */
	unsigned index;		/* 1-based among headers of that name
				 * (change, remove); 0 for an addition at
				 * the top of the header */
};

struct verdict {
	bool decided;			/* false: go on */
	enum pol_action action;
	enum pol_stage stage;
	char rule[POL_NAME_MAX + 1];	/* deciding rule ("default") */
	bool on_error;			/* an internal failure decided */
	int code;			/* reject / tempfail: 550, 451 */
	char dsn[16];			/* "5.7.1" */
	char text[POL_EXPAND_MAX + 1];	/* reply text after the codes */
	char quarantine[POL_EXPAND_MAX + 1];
	struct hdr_edit *added;		/* owns */
	size_t nadded;
	struct hdr_edit *changed;	/* owns; value set */
	size_t nchanged;
	struct hdr_edit *removed;	/* owns; in the order to apply
					 * (descending index) */
	size_t nremoved;
	double score;
	bool score_known;
	char *new_body;			/* owns; NULL: body unchanged
					 * ("strip": the body without the
					 * blocked attachments) */
	size_t new_body_len;
};
void verdict_clear(struct verdict *);

/* Information about the SMTP client at connect. */
struct core_client {
	const char *ip;		/* textual address, NULL when unknown */
	const char *name;	/* name the MTA found, may be NULL */
	/* optional: every rule evaluated on this connection, for
	 * "portcullis check --trace" (NULL in the milter) */
	void (*trace)(void *ctx, const struct pol_trace_step *);
	void *trace_ctx;
};

/* Starts a connection with a reference to the current snapshot s (taken
 * over).  Evaluates the connect stage into *v. */
struct core_conn *core_connect(struct snapshot *s,
    const struct core_client *, struct verdict *v);
void core_close(struct core_conn *);

/* Queue id as the MTA reports it (any stage; the latest wins). */
void core_set_queue_id(struct core_conn *, const char *qid);

void core_helo(struct core_conn *, const char *helo, struct verdict *v);
/* Starts a message.  auth_user: SMTP AUTH identity or NULL. */
void core_mail(struct core_conn *, const char *from, const char *auth_user,
    struct verdict *v);
/* A decision here concerns this recipient only. */
void core_rcpt(struct core_conn *, const char *rcpt, struct verdict *v);
/* value: as the MTA passes it (leading white space removed, folds as
 * "\n" or "\r\n" plus white space). */
void core_header(struct core_conn *, const char *name, const char *value);
void core_eoh(struct core_conn *, struct verdict *v);
void core_body(struct core_conn *, const unsigned char *, size_t);
/* The final verdict of the message, with its header edits.  Ends the
 * message and writes its log line. */
void core_eom(struct core_conn *, struct verdict *v);
/* The MTA dropped the message (RSET, error, lost connection). */
void core_abort(struct core_conn *);

/* Whether the loaded policy of the connection needs the body. */
bool core_needs_body(const struct core_conn *);

/* Facts computed for the current message, as JSON members
 * ("\"name\": value, ...") for "portcullis check". malloc'ed. */
char *core_facts_json(struct core_conn *);
/* Monitor rules that fired in the current message, as a JSON array. */
char *core_monitored_json(struct core_conn *);

#endif
