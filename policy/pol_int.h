/*
 * pol_int.h - private interfaces of the policy module (lexer, parser,
 * checker, lists, evaluator).  Not installed, not for the daemon.
 * Owns: nothing; declares the compiled policy (struct policy), the
 * condition tree and the load context that collects diagnostics.
 * Limits: those of policy.h.  Errors: reported through struct pol_ctx.
 */
#ifndef PORTCULLIS_POL_INT_H
#define PORTCULLIS_POL_INT_H

#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>

#include "policy.h"

/* Allocators: never return NULL (abort on exhaustion); common.c. */
void	*pol_xmalloc(size_t);
void	*pol_xcalloc(size_t, size_t);
void	*pol_xreallocarray(void *, size_t, size_t);
char	*pol_xstrdup(const char *);
char	*pol_xstrndup(const char *, size_t);
/* Grows *arr (element size sz) so that it holds at least need elements. */
void	 pol_grow(void *arrp, size_t *cap, size_t need, size_t sz);

static inline int
pol_lc(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}
/* Copies s for a message: controls become '?', long text is cut "...". */
const char *pol_quote(char *buf, size_t len, const char *s, size_t slen);
bool	 pol_strcaseeq(const char *, size_t, const char *, size_t);
void	 pol_lower(char *);

/* Position in the policy file. */
struct pol_pos {
	unsigned line, col;
};

/*
 * Load context: every diagnostic of one load goes through it.  Items are
 * appended to the caller's struct pol_diag and sorted into file order when
 * the load ends.  A list file's diagnostics sort at the position of the
 * statement that names the file.
 */
struct pol_diag_key {
	unsigned line, col, sub;
	size_t seq;
};
struct pol_ctx {
	struct pol_diag *diag;		/* borrows (the caller's) */
	size_t first;			/* first item of this load */
	struct pol_diag_key *keys;	/* owns; keys[i] for items[first+i] */
	size_t capkeys;
	size_t seq;
	bool failed;			/* some error, reported or not */
	bool sub;			/* reporting inside a list file */
	struct pol_pos subpos;		/* ... named at this position */
	unsigned subcount;		/* errors reported for that file */
	bool full;			/* POL_DIAG_MAX reached */
};

void	 pol_ctx_init(struct pol_ctx *, struct pol_diag *);
void	 pol_ctx_finish(struct pol_ctx *);
void	 pol_report(struct pol_ctx *, bool is_error, const char *file,
	    unsigned line, unsigned col, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));

/*
 * Nearest candidate to word by edit distance (optimal string alignment),
 * or NULL when none is close enough to be a plausible typo.
 */
const char *pol_suggest(const char *word, const char *const *cands,
	    size_t ncands);
/* Appends " (did you mean 'X'?)" to buf when there is a suggestion. */
void	 pol_suggest_fmt(char *buf, size_t len, const char *word,
	    const char *const *cands, size_t ncands);

/* Numbers in the policy text (locale independent). */
int	 pol_parse_num(const char *, double *);
int	 pol_parse_uint(const char *, unsigned long max, unsigned long *);
int	 pol_parse_duration(const char *, unsigned *);

/* ---- lexer.c ---- */

enum pol_tok_type {
	POL_T_EOF = 0,
	POL_T_WORD,
	POL_T_STRING,
	POL_T_REGEX,
	POL_T_LBRACE,
	POL_T_RBRACE,
	POL_T_LPAREN,
	POL_T_RPAREN,
	POL_T_COMMA,
	POL_T_COLON,
	POL_T_LT,
	POL_T_LE,
	POL_T_EQ,
	POL_T_NE,
	POL_T_GE,
	POL_T_GT
};

struct pol_token {
	enum pol_tok_type type;
	char *val;		/* owns: word, unescaped string or regex */
	size_t len;
	bool icase;		/* regex flag i */
	bool bol;		/* first token on its line */
	unsigned line, col;
};

struct pol_lexer {
	struct pol_ctx *ctx;	/* borrows */
	const char *file;	/* borrows */
	const char *buf;	/* borrows */
	size_t len, pos;
	unsigned line, col;	/* of buf[pos] */
	unsigned last_line;	/* line of the previous token, 0: none */
	bool after_matches;	/* previous token was the word "matches" */
};

void	 pol_lex_init(struct pol_lexer *, struct pol_ctx *,
	    const char *file, const char *buf, size_t len);
void	 pol_lex_next(struct pol_lexer *, struct pol_token *);
void	 pol_tok_clear(struct pol_token *);

/* ---- lists.c ---- */

struct pol_strset {
	uint64_t *slot;		/* owns; 0: empty; hash32<<32 | off+1 */
	size_t cap, n;		/* cap: power of two or 0 */
	char *arena;		/* owns; NUL-terminated strings */
	size_t alen, acap;
};

struct pol_cidr6 {
	uint64_t hi, lo;
	unsigned plen1;		/* prefix length + 1; 0: empty slot */
};

struct pol_cidrset {
	uint64_t *v4;		/* owns; 0: empty; addr << 8 | plen+1 */
	size_t cap4, n4;
	struct pol_cidr6 *v6;	/* owns */
	size_t cap6, n6;
	uint64_t lens4;		/* bit p: some v4 entry has prefix p */
	uint64_t lens6[3];	/* bits 0..128 */
};

/* What a list entry may be. */
#define POL_ENT_DOMAIN	0x01
#define POL_ENT_ADDR	0x02
#define POL_ENT_NET	0x04
#define POL_ENT_TEXT	0x08	/* any text (quoted strings in {...}) */
#define POL_ENT_ANY	(POL_ENT_DOMAIN | POL_ENT_ADDR | POL_ENT_NET)

struct pol_list {
	char *name;		/* owns; NULL for an inline {...} list */
	struct pol_pos pos;	/* of the name (or the '{') */
	char *path;		/* owns; "file" lists: path as written */
	struct pol_pos path_pos;
	bool used;
	size_t count;		/* distinct entries */
	struct pol_strset names;	/* domains, addresses, texts */
	struct pol_cidrset nets;
};

struct pol_list *pol_list_new(const char *name, struct pol_pos);
void	 pol_list_free(struct pol_list *);
/*
 * Adds one entry (s, len) of a kind allowed by mask.  0, or -1 with a
 * message in err.  quoted: the entry was a quoted string.
 */
int	 pol_list_add(struct pol_list *, const char *s, size_t len,
	    unsigned mask, bool quoted, char *err, size_t errlen);
/*
 * Reads a list file, one entry a line; errors in its lines go to ctx
 * under path.  0; -1 (errno); -2 not a regular file; -3 too large; -4
 * refused under owner (pol_file_untrusted()), the reason in why.
 */
int	 pol_list_load_file(struct pol_list *, struct pol_ctx *,
	    const char *path, const struct pol_file_owner *owner,
	    char *why, size_t whylen);

/* How "in" compares a value with a list. */
enum pol_match {
	POL_M_TEXT = 0,		/* exact (ASCII case ignored) */
	POL_M_DOMAIN,		/* domain or parent domain */
	POL_M_ADDR,		/* address, its domain or a parent */
	POL_M_IP,		/* networks */
	POL_M_HOST		/* IP literal: networks; else as a domain */
};
bool	 pol_list_match(const struct pol_list *, enum pol_match,
	    const char *s);
bool	 pol_list_match_ip(const struct pol_list *, const struct pol_ip *);
/* Parses "addr" or "addr/len" (host bits must be clear: -1 and *hostbits). */
int	 pol_cidr_parse(const char *s, struct pol_ip *, unsigned *plen,
	    bool *hostbits);
bool	 pol_ip_equal(const struct pol_ip *, const struct pol_ip *);
bool	 pol_domain_valid(const char *s, size_t len);

/* ---- facts.c ---- */

enum pol_fkind {
	POL_FK_BOOL,
	POL_FK_NUM,
	POL_FK_ENUM,
	POL_FK_IP,
	POL_FK_ADDR,
	POL_FK_DOMAIN,
	POL_FK_HOST,		/* domains or IP literals */
	POL_FK_TEXT
};
struct pol_fact_def {
	struct pol_fact_info info;
	enum pol_fkind kind;
	const char *const *values;	/* POL_FK_ENUM */
	size_t nvalues;
};
const struct pol_fact_def *pol_fact_def(enum pol_fact);
enum pol_match pol_fact_match(enum pol_fact);
/* Every fact name, for suggestions ("header.NAME" excluded). */
const char *const *pol_fact_names(size_t *n);

/* ---- the condition tree (parser.c builds, check.c resolves) ---- */

enum pol_ntype {
	POL_N_TRUE,
	POL_N_FALSE,
	POL_N_AND,
	POL_N_OR,
	POL_N_NOT,
	POL_N_BARE,		/* bare fact: its truth */
	POL_N_IS,
	POL_N_IN,
	POL_N_MATCHES,
	POL_N_CONTAINS,
	POL_N_CMP
};

enum pol_cmp {
	POL_CMP_LT,
	POL_CMP_LE,
	POL_CMP_EQ,
	POL_CMP_NE,
	POL_CMP_GE,
	POL_CMP_GT
};

enum pol_builtin {
	POL_BI_NONE = 0,
	POL_BI_TRUSTED,		/* in trusted networks */
	POL_BI_INTERNAL		/* in internal domains */
};

struct pol_node {
	enum pol_ntype type;
	struct pol_pos pos;	/* of the fact, literal or operator */
	bool neg;		/* is not, not in, not matches, not contains */
	/* the fact */
	char *fname;		/* owns: the name as written */
	int fact;		/* enum pol_fact, -1 until resolved */
	char *hname;		/* owns: lower-case header name */
	/* the right-hand side */
	struct pol_pos vpos;
	char *str;		/* owns: value, text, regex or list name */
	bool quoted;
	double num;		/* numbers; booleans as 0/1 */
	struct pol_ip ip;	/* "is" on client.ip */
	enum pol_cmp cmp;
	regex_t re;
	bool re_ok, icase;
	enum pol_builtin builtin;
	struct pol_list *list;	/* owns when list_owned, else borrows */
	bool list_owned;
	/* operands of and, or, not */
	struct pol_node **kid;	/* owns */
	size_t nkid, capkid;
};

void	 pol_node_free(struct pol_node *);

/* ---- the compiled policy ---- */

struct pol_rule {
	char *name;		/* owns */
	struct pol_pos pos;
	bool monitor;
	unsigned monitor_idx;
	struct pol_node *cond;	/* owns; NULL: unconditional */
	enum pol_action action;
	struct pol_pos apos;
	char *text;		/* owns; may be NULL */
	struct pol_pos tpos;
	enum pol_tri stat;	/* value with every fact unknown */
};

struct pol_score {
	char *name;		/* owns */
	struct pol_pos pos;
	struct pol_node *cond;	/* owns */
	double add;
	enum pol_tri stat;
};

struct policy {
	char *file;			/* owns: name for diagnostics */
	char *basedir;			/* owns: base of list paths */
	struct pol_rule *rules;		/* owns */
	size_t nrules, caprules;
	struct pol_score *scores;	/* owns */
	size_t nscores, capscores;
	struct pol_list **lists;	/* owns: named lists */
	size_t nlists, caplists;
	struct pol_list *internal;	/* owns: internal domains */
	struct pol_list *trusted;	/* owns: trusted networks */
	struct pol_pos internal_pos, trusted_pos;
	struct pol_dnsbl *dnsbl;	/* owns */
	size_t ndnsbl, capdnsbl;
	struct pol_dnsbl *uribl;	/* owns */
	size_t nuribl, capuribl;
	char **exts;			/* owns */
	size_t nexts, capexts;
	struct pol_pos exts_pos;
	struct pol_greylist grey;
	struct pol_pos grey_pos;
	char *tag;			/* owns; NULL: no external tag */
	struct pol_pos tag_pos;
	struct pol_node *tag_cond;	/* owns; NULL: no "unless" */
	bool def_seen;
	enum pol_action def_action;
	char *def_text;			/* owns */
	struct pol_pos def_pos, def_tpos;
	uint64_t refs;			/* bit per enum pol_fact */
	struct pol_pos refpos[POL_FACT_COUNT];	/* first written use;
						 * line 0: derived only */
	char **headers;			/* owns: lower-case names */
	size_t nheaders, capheaders;
	bool has_weights;		/* some dnsbl/uribl weight != 0 */
	unsigned nmonitor;
};

/* parser.c: parses text into pol (which it fills); errors to ctx. */
void	 pol_parse(struct policy *, struct pol_ctx *, const char *file,
	    const char *text, size_t len);
/* check.c: resolves names, checks types, compiles regexes, warns. */
void	 pol_check(struct policy *, struct pol_ctx *);
/* check.c: parses %{fact} in a text; -1 on a malformed reference. */
int	 pol_text_fact(const char *s, size_t len, int *fact, char *hname,
	    size_t hlen);
/* load.c */
struct policy *pol_new(const char *file);

#endif
