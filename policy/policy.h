/*
 * policy.h - the portcullis policy language: load, check, compile, evaluate.
 * Owns: nothing global.  A compiled struct policy is immutable after
 * pol_load() returns and may be shared read-only by any number of threads.
 * Limits: POL_* constants below.  Errors: pol_load() returns NULL and fills
 * a struct pol_diag with every error ("FILE:LINE:COL: message").
 * No libmilter and no network here; the only I/O is reading the policy file
 * and the list files it names.
 */
#ifndef PORTCULLIS_POLICY_H
#define PORTCULLIS_POLICY_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POL_FILE_MAX		(16u * 1024 * 1024)	/* policy file bytes */
#define POL_NAME_MAX		64			/* rule / list name */
#define POL_TEXT_MAX		400			/* reply or tag text */
#define POL_EXPR_DEPTH_MAX	64			/* nesting of conditions */
#define POL_EXPAND_MAX		480			/* expanded reply text */
#define POL_FACT_VALUE_MAX	200			/* one %{fact} in a text */
#define POL_REGEX_REPEAT_MAX	255	/* {n,m} bound, nested repetition */
#define POL_REGEX_DEPTH_MAX	16	/* groups in one regular expression */
#define POL_TOKEN_MAX		4096			/* word, string, regex */
#define POL_LIST_FILE_MAX	(256u * 1024 * 1024)	/* one list file */
#define POL_LIST_LINE_MAX	1024			/* one list file line */
#define POL_LIST_ENTRIES_MAX	10000000u		/* entries of one list */
#define POL_MONITOR_RULES_MAX	256			/* monitor rules */
#define POL_DIAG_MAX		1000			/* diagnostics per load */
#define POL_DIAG_FILE_MAX	20			/* errors per list file */
#define POL_DNSBL_CODES_MAX	32			/* codes or masks per zone */
#define POL_EXTS_MAX		1024			/* blocked extensions */

/* The SMTP stages at which the policy is evaluated, in order. */
enum pol_stage {
	POL_STAGE_CONNECT = 0,
	POL_STAGE_HELO,
	POL_STAGE_MAIL,
	POL_STAGE_RCPT,
	POL_STAGE_EOH,
	POL_STAGE_EOM,
	POL_STAGE_COUNT
};

enum pol_action {
	POL_ACT_NONE = 0,	/* no decision (yet) */
	POL_ACT_ACCEPT,
	POL_ACT_REJECT,
	POL_ACT_TEMPFAIL,
	POL_ACT_QUARANTINE,
	POL_ACT_STRIP
};

/* Kleene three-valued truth. */
enum pol_tri {
	POL_FALSE = 0,
	POL_TRUE = 1,
	POL_UNKNOWN = 2
};

/*
 * Facts (DESIGN.md section 4).  The numbering is internal; names are the
 * contract.  POL_FACT_HEADER is the family "header.NAME".
 */
enum pol_fact {
	POL_FACT_CLIENT_IP = 0,
	POL_FACT_CLIENT_PTR,
	POL_FACT_CLIENT_COUNTRY,
	POL_FACT_CLIENT_ASN,
	POL_FACT_HELO,
	POL_FACT_AUTHENTICATED,
	POL_FACT_TRUSTED,
	POL_FACT_EXTERNAL,
	POL_FACT_MAIL_FROM,
	POL_FACT_MAIL_FROM_DOMAIN,
	POL_FACT_RCPT,
	POL_FACT_RCPT_DOMAIN,
	POL_FACT_FROM,
	POL_FACT_FROM_DOMAIN,
	POL_FACT_FROM_INTERNAL,
	POL_FACT_SUBJECT,
	POL_FACT_SIZE,
	POL_FACT_HEADER,
	POL_FACT_SPF,
	POL_FACT_SPF_HELO,
	POL_FACT_SPF_EXPLANATION,
	POL_FACT_DKIM,
	POL_FACT_DKIM_DOMAINS,
	POL_FACT_DMARC,
	POL_FACT_DMARC_POLICY,
	POL_FACT_DNSBL_LISTED,
	POL_FACT_DNSBL_ZONE,
	POL_FACT_DNSBL_ZONES,
	POL_FACT_DNSBL_REASON,
	POL_FACT_URIBL_LISTED,
	POL_FACT_URIBL_DOMAINS,
	POL_FACT_URL_DOMAINS,
	POL_FACT_ATTACHMENT_BLOCKED,
	POL_FACT_ATTACHMENT_NAME,
	POL_FACT_ATTACHMENT_NAMES,
	POL_FACT_ATTACHMENT_ENCRYPTED,
	POL_FACT_ATTACHMENT_LIMITS,
	POL_FACT_GREYLIST,
	POL_FACT_SCORE,
	POL_FACT_COUNT
};

enum pol_vtype {
	POL_V_UNKNOWN = 0,	/* not known yet at this stage */
	POL_V_BOOL,
	POL_V_NUM,
	POL_V_STR,		/* also enumerations (spf: "pass", ...) */
	POL_V_IP,		/* textual address in .s, parsed in .ip */
	POL_V_LIST		/* list of strings; conditions match ANY element */
};

struct pol_ip {
	int family;		/* AF_INET or AF_INET6 (0: none) */
	uint8_t addr[16];	/* network order; IPv4 in the first 4 bytes */
};

/*
 * One fact value, handed from the provider to the evaluator.  Every pointer
 * borrows from the provider and must stay valid until the evaluation call
 * that asked for it returns.
 */
struct pol_value {
	enum pol_vtype type;
	bool b;
	double num;
	const char *s;			/* POL_V_STR, POL_V_IP */
	struct pol_ip ip;		/* POL_V_IP */
	const char *const *list;	/* POL_V_LIST */
	size_t nlist;
};

/*
 * The fact provider: the pipeline answers questions about the message.
 * get() fills *out (type POL_V_UNKNOWN when the fact is not known yet) and
 * returns 0, or -1 on an internal failure (the evaluation then fails and the
 * caller applies on_error).  header_name is non-NULL only for
 * POL_FACT_HEADER.  POL_FACT_SCORE and POL_FACT_TRUSTED/EXTERNAL are also
 * asked of the provider; the evaluator adds its own score on top (see
 * pol_eval below).
 */
struct pol_facts {
	int (*get)(void *ctx, enum pol_fact fact, const char *header_name,
	    struct pol_value *out);
	void *ctx;
};

/* Static description of a fact, for tools and documentation. */
struct pol_fact_info {
	const char *name;		/* "dmarc.policy" */
	enum pol_vtype type;		/* what a known value looks like */
	enum pol_stage known_at;	/* earliest stage it can be known */
};
const struct pol_fact_info *pol_fact_info(enum pol_fact);
/* Looks a fact name up; "header.X" yields POL_FACT_HEADER.  -1: unknown. */
int pol_fact_lookup(const char *name, size_t len);

struct policy;	/* opaque, immutable once loaded */

/* Diagnostics: every error and warning of one load, in file order. */
struct pol_diag_item {
	bool is_error;
	char *file;	/* owns */
	unsigned line, col;
	char *msg;	/* owns; e.g. "unknown fact 'dmarc.polcy' (did you mean 'dmarc.policy'?)" */
};
struct pol_diag {
	struct pol_diag_item *items;	/* owns */
	size_t n, cap;
	size_t nerrors;
};
void pol_diag_free(struct pol_diag *);
/* Formats item i as "FILE:LINE:COL: message" (warnings: "FILE:LINE:COL: warning: message"). */
int pol_diag_format(const struct pol_diag_item *, char *buf, size_t len);

/*
 * Loads, checks and compiles the policy at path.  Relative list file paths
 * are resolved against the directory of the policy file.  Returns the
 * policy, or NULL with at least one error in *diag.  Warnings may be present
 * either way.  Thread safety: reentrant.
 */
struct policy *pol_load(const char *path, struct pol_diag *diag);

/*
 * Who may own and write the files a load reads (STYLE.md section 6:
 * refuse policy files that other users can write).  pol_load() and a NULL
 * owner refuse only files every user can write; the daemon loads with
 * strict set and also refuses a file its group can write and a file
 * owned by anyone but root and uid (the user the daemon runs as): such a
 * user could rewrite what mail is let through.
 */
struct pol_file_owner {
	bool strict;
	uid_t uid;	/* may own the files besides root (when strict) */
};
/* pol_load() checking the policy and each list file against *owner. */
struct policy *pol_load_owned(const char *path,
    const struct pol_file_owner *owner, struct pol_diag *diag);
/*
 * Whether a file with status st must be refused under owner (NULL: the
 * lenient rule); when it must, returns true with the reason in why
 * (e.g. "writable by other users (mode 0664)").  For the config file too.
 */
struct stat;
bool pol_file_untrusted(const struct stat *st,
    const struct pol_file_owner *owner, char *why, size_t whylen);
/* The same from a buffer; name is used in diagnostics and as base dir. */
struct policy *pol_load_buffer(const char *name, const char *text, size_t len,
    struct pol_diag *diag);
void pol_free(struct policy *);

/* Whether any rule, score, tag condition or text references the fact
 * (lazy facts: the pipeline computes nothing else). */
bool pol_references(const struct policy *, enum pol_fact);

/* Where the policy first names the fact (1-based line and column); false
 * when it does not, or uses it only through a derived fact (e.g. spf
 * through dmarc). */
bool pol_reference_pos(const struct policy *, enum pol_fact, unsigned *line,
    unsigned *col);

/* Where the "attachments" or "greylist" statement is (the first one);
 * false when the policy has none. */
bool pol_statement_pos(const struct policy *, const char *stmt,
    unsigned *line, unsigned *col);

/* Header names referenced as header.NAME, for the pipeline to keep. */
size_t pol_header_names(const struct policy *, const char *const **names);

/* Internal domains and trusted networks of the policy. */
bool pol_domain_is_internal(const struct policy *, const char *domain);
bool pol_ip_is_trusted(const struct policy *, const struct pol_ip *);

/* Settings of the policy file the pipeline needs (NULL/0 when absent). */
const char *pol_tag_text(const struct policy *);

/*
 * Per-message evaluation state.  Zero-initialise with pol_eval_init() before
 * the first stage and keep it for the whole message; it remembers which
 * monitor rules already fired.  Not shared between threads.
 */
#define POL_MONITORED_MAX 32
#define POL_TRACE_FACTS_MAX 16
/* One evaluated rule, for tracing. */
struct pol_trace_step {
	enum pol_stage stage;
	const char *kind;		/* "rule", "monitor" or "score" */
	const char *name;		/* borrows from the policy */
	enum pol_tri value;
	/* facts the condition read, in order: fact names, "header.NAME"
	 * for header facts (borrow, valid during the call) */
	const char *facts[POL_TRACE_FACTS_MAX];
	size_t nfacts;
};
struct pol_monitored {
	const char *rule;		/* borrows from the policy */
	enum pol_action action;
	enum pol_stage stage;
};
struct pol_eval {
	/* results of the last pol_evaluate() */
	enum pol_tri state;		/* TRUE: decided; UNKNOWN: wait for
					 * more facts; FALSE: cannot happen
					 * (default applies at the end) */
	enum pol_action action;		/* when state == POL_TRUE */
	const char *rule;		/* deciding rule name, "default" for
					 * the default; borrows */
	const char *text;		/* raw text of the rule (may be NULL);
					 * expand with pol_expand(); borrows */
	bool is_default;
	double score;			/* score so far (all known parts) */
	bool score_known;
	struct pol_monitored monitored[POL_MONITORED_MAX];
	size_t nmonitored;
	/* optional trace hook ("portcullis check --trace"), set after
	 * pol_eval_init(); called for every rule and score rule evaluated */
	void (*trace)(void *ctx, const struct pol_trace_step *);
	void *trace_ctx;
	/* private */
	uint64_t monitor_done[4];
};
void pol_eval_init(struct pol_eval *);

/*
 * Evaluates the rules at stage.  Facts not known yet are UNKNOWN; the first
 * rule that is UNKNOWN stops evaluation (state UNKNOWN).  At POL_STAGE_EOM
 * every fact is known and the default decides when no rule does.  At RCPT
 * stage a decision concerns the current recipient only; the caller calls
 * again for each recipient.  Returns 0, or -1 when the provider failed.
 */
int pol_evaluate(const struct policy *, enum pol_stage,
    const struct pol_facts *, struct pol_eval *);

/*
 * Whether the external tag applies: "external" is true and the "unless"
 * condition is false.  Evaluated at EOM.  -1 on provider failure.
 */
int pol_tag_applies(const struct policy *, const struct pol_facts *,
    bool *applies);

/*
 * Expands %{fact} in text into buf (NUL-terminated, at most len-1 bytes,
 * never more than POL_EXPAND_MAX).  Each fact value is stripped of CR, LF
 * and other control characters and cut at POL_FACT_VALUE_MAX bytes, so a
 * fact can never inject SMTP protocol.  An unknown value expands empty; a
 * list joins with ", ".  Returns 0 or -1 on provider failure.
 */
int pol_expand(const char *text, const struct pol_facts *, char *buf,
    size_t len);

/* Text names of enums ("reject", "eom"). */
const char *pol_action_name(enum pol_action);
const char *pol_stage_name(enum pol_stage);

/* Parses "inet text" into *ip.  0 or -1. */
int pol_ip_parse(const char *s, struct pol_ip *ip);

/*
 * Additions below this line (everything above is the original contract).
 */

/*
 * Scores.  The evaluator computes the fact "score" itself: the sum of the
 * "add" of every score rule whose condition is true, plus the part of the
 * pipeline.  The pipeline's part is the sum of the weights of the dnsbl and
 * uribl zones that listed the message (pol_dnsbl_get()/pol_uribl_get()
 * give the weights); the evaluator asks the provider for it as
 * POL_FACT_SCORE, and only when the policy gives some zone a non-zero
 * weight.  The provider answers POL_V_NUM (0 when nothing listed) once all
 * weighted lookups are done, POL_V_UNKNOWN before.  A score rule whose
 * condition is unknown makes "score" unknown.
 *
 * Staging.  pol_evaluate() and pol_tag_applies() fail (-1) at
 * POL_STAGE_EOM when a fact they need is still unknown: that is an
 * internal failure of the pipeline and the caller applies on_error.  Facts
 * are asked in rule order with Kleene short-circuit (an "and" stops at the
 * first false operand, an "or" at the first true one, an unknown operand
 * does not stop it), and each fact but header.NAME is asked at most once
 * per call.  Monitor rules that become true are appended once per message
 * to pol_eval.monitored (the first POL_MONITORED_MAX of them); an unknown
 * monitor rule does not stop evaluation.  Before EOM, state POL_FALSE
 * means every rule is known false: only the default can apply, and it is
 * applied by the call at POL_STAGE_EOM.
 *
 * Matching.  "is", "in" and "contains" ignore ASCII case.  "in" on an
 * address fact (mail_from, rcpt, from) matches the address or its domain
 * or a parent domain; on a domain fact the domain or a parent; on
 * client.ip (and on IP elements of uribl.domains) a network of the list;
 * on other facts the exact value.  A list-valued fact matches when any
 * element does; "is not"/"not in" are the negation of that.
 *
 * pol_references(): derived facts also mark what they are computed from
 * (external: trusted, authenticated; from.internal: from, from.domain;
 * score: the dnsbl/uribl facts when a zone has a weight; dmarc: spf,
 * dkim, from.domain).  An "external tag" line references external.
 *
 * Details of the functions above: pol_header_names() gives lower-case
 * names; pol_domain_is_internal() is true for subdomains of an internal
 * domain too; pol_diag_format() returns what snprintf() returns;
 * pol_tag_text() is literal (no %{fact}).  pol_expand() output may hold
 * '%': libmilter's smfi_setreply() needs it doubled ("%%").
 */

/*
 * pol_expand() with the score of an evaluation: %{score} expands to
 * ev->score (empty when not known) instead of asking the provider, which
 * knows only its own part.  ev may be NULL (then it is pol_expand()).
 */
int pol_expand_eval(const char *text, const struct pol_facts *,
    const struct pol_eval *ev, char *buf, size_t len);

/* Facts with a fixed set of values (spf, dkim, ...): the values, or NULL. */
const char *const *pol_fact_values(enum pol_fact, size_t *n);

/* Whether an address, domain or IP (text) is in the named list.  For
 * tools ("portcullis check"); false when there is no such list. */
bool pol_list_contains(const struct policy *, const char *list,
    const char *value);

/* The rules in policy order (for metrics: the names a decision may
 * carry).  Names borrow from the policy; NULL past the end. */
size_t pol_rule_count(const struct policy *);
const char *pol_rule_name(const struct policy *, size_t i);
bool pol_rule_is_monitor(const struct policy *, size_t i);

/* A dnsbl or uribl line.  Addresses are IPv4 in host byte order. */
struct pol_code_range {
	uint32_t lo, hi;		/* inclusive */
};
struct pol_dnsbl {
	const char *zone;			/* owns (policy) */
	const struct pol_code_range *codes;	/* owns; NULL: none given */
	size_t ncodes;
	const uint32_t *masks;			/* owns; NULL: none */
	size_t nmasks;
	double weight;				/* 0 when not given */
	unsigned labels;			/* uribl: also query hosts cut
						 * to this many labels; 0:
						 * registered domains only */
	unsigned line;				/* in the policy file */
};
#define POL_URIBL_LABELS_MAX	10
size_t pol_dnsbl_count(const struct policy *);
const struct pol_dnsbl *pol_dnsbl_get(const struct policy *, size_t i);
size_t pol_uribl_count(const struct policy *);
const struct pol_dnsbl *pol_uribl_get(const struct policy *, size_t i);
/*
 * Whether an A record answered by the zone means "listed": it is in one of
 * the code ranges, or it has a bit of one of the masks set.  With neither
 * codes nor masks, any answer in 127.0.0.0/8 except 127.0.0.1 and
 * 127.255.255.0/24 (the error answers of several lists) counts.
 */
bool pol_dnsbl_match(const struct pol_dnsbl *, const struct pol_ip *answer);

/* "attachments block": lower-case extensions without the dot. */
size_t pol_attachment_exts(const struct policy *, const char *const **exts);
/* Whether a file name ends in a blocked extension (ASCII case ignored;
 * trailing dots and spaces, which Windows drops, ignored too). */
bool pol_attachment_blocked(const struct policy *, const char *filename);

/* "greylist" settings; the defaults below when there is no such line. */
#define POL_GREY_DELAY_DEFAULT		300u		/* 5m */
#define POL_GREY_WINDOW_DEFAULT		(4u * 3600)	/* 4h */
#define POL_GREY_EXPIRE_DEFAULT		(35u * 86400)	/* 35d */
#define POL_GREY_NETMASK4_DEFAULT	24u
#define POL_GREY_NETMASK6_DEFAULT	64u
#define POL_GREY_AUTOALLOW_DEFAULT	5u
struct pol_greylist {
	bool configured;		/* a greylist line is present */
	unsigned delay, window, expire;	/* seconds */
	unsigned netmask4, netmask6;	/* prefix lengths */
	unsigned autoallow;		/* 0: off */
};
const struct pol_greylist *pol_greylist(const struct policy *);

/*
 * SMTP reply for a reject or tempfail with an (expanded) text: a text that
 * starts with an enhanced status code ("5.7.1 ...") sets it, and the basic
 * code follows from its class (5 -> 550, 4 -> 451); otherwise 550 5.7.1
 * (reject) or 451 4.7.1 (tempfail).  A code whose class does not fit the
 * action is ignored (the loader rejects such texts anyway).  text borrows
 * from the argument (what follows the code and its space); NULL text gives
 * the text "" .
 */
struct pol_reply {
	unsigned code;			/* 550 or 451 */
	char dsn[16];			/* "5.7.1" */
	const char *text;		/* borrows */
};
void pol_reply_make(enum pol_action, const char *text, struct pol_reply *);

#endif
