/*
 * addr.c - envelope and header addresses.  See addr.h.
 * Owns: nothing; GMime is initialised once at start-up.
 */
#include "autoconfig.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <string.h>

#include "addr.h"
#include "util.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

void
addr_init(void)
{
	pthread_once(&gmime_once, gmime_start);
}

void
addr_domain_normalise(char *d)
{
	size_t n = strlen(d), i;

	for (i = 0; i < n; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] + 32);
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
}

/* Splits "local@domain" at the last '@' into the two outputs. */
static int
addr_split(const char *a, size_t n, char **addr, char **domain)
{
	const char *at = NULL;
	size_t i;
	char *dom;

	for (i = 0; i < n; i++)
		if (a[i] == '@')
			at = a + i;
	*addr = xstrndup(a, n);
	if (at == NULL) {
		/* RFC 5321 allows "<postmaster>" without a domain */
		*domain = xstrdup("");
		return 0;
	}
	dom = xstrndup(at + 1, n - (size_t)(at + 1 - a));
	addr_domain_normalise(dom);
	memcpy(*addr + (at + 1 - a), dom, strlen(dom));
	(*addr)[(at + 1 - a) + strlen(dom)] = '\0';
	*domain = dom;
	return 0;
}

int
addr_envelope(const char *in, char **addr, char **domain)
{
	const char *p = in, *end;
	size_t n;

	*addr = *domain = NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end > p && *p == '<') {
		if (end[-1] != '>')
			return -1;
		p++;
		end--;
	}
	/* RFC 5321 4.1.2 source route "@a,@b:user@dom": ignored */
	if (p < end && *p == '@') {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (colon == NULL)
			return -1;
		p = colon + 1;
	}
	n = (size_t)(end - p);
	if (n > ADDR_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 && p[i] != ' ')
			return -1;
	if (n == 0) {
		*addr = xstrdup("");
		*domain = xstrdup("");
		return 0;
	}
	return addr_split(p, n, addr, domain);
}

/*
 * A copy of a header value for GMime's address parser, at most len bytes,
 * with an unterminated comment closed.  GMime 3.2 leaks a string when an
 * addr-spec with a domain literal is followed by a comment that never
 * ends ("a@[192.0.2.1](" : found by tests/fuzz/address_fuzz.c), and an
 * attacker controls From.  The comment runs to the end of the value
 * anyway, so closing it changes no address.  Quoted strings and domain
 * literals are skipped as RFC 5322 3.2 reads them; a trailing lone
 * backslash gets a space to escape, so the closing parentheses count.
 */
static char *
gmime_copy(const char *value, size_t len)
{
	size_t i, depth = 0, extra;
	bool quoted = false, literal = false, escape = false;
	char *copy;

	for (i = 0; i < len && value[i] != '\0'; i++) {
		char c = value[i];

		if (escape) {
			escape = false;
			continue;
		}
		if (c == '\\') {
			escape = true;
		} else if (depth > 0) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (quoted) {
			quoted = c != '"';
		} else if (literal) {
			literal = c != ']';
		} else if (c == '"') {
			quoted = true;
		} else if (c == '[') {
			literal = true;
		} else if (c == '(') {
			depth = 1;
		}
	}
	len = i;
	extra = depth + (escape ? 1 : 0);
	copy = xmalloc(len + extra + 1);
	memcpy(copy, value, len);
	if (escape)
		copy[len++] = ' ';
	memset(copy + len, ')', depth);
	copy[len + depth] = '\0';
	return copy;
}

int
addr_header_from(const char *value, size_t len, char **addr, char **domain)
{
	InternetAddressList *list;
	char *copy;
	int i, n, found = 0;

	*addr = *domain = NULL;
	if (len > 64 * 1024)
		len = 64 * 1024;	/* nobody's From is longer */
	copy = gmime_copy(value, len);
	list = internet_address_list_parse(NULL, copy);
	free(copy);
	if (list == NULL)
		return 0;
	n = internet_address_list_length(list);
	for (i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list,
		    i);

		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;	/* groups carry no author */
		found++;
		if (*addr == NULL) {
			const char *a = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));

			if (a != NULL && strlen(a) <= ADDR_MAX)
				addr_split(a, strlen(a), addr, domain);
		}
	}
	g_object_unref(list);
	if (*addr == NULL)
		return 0;
	return found;
}

size_t
addr_header_domains(const char *value, size_t len, char ***domains,
    size_t *n, size_t max)
{
	InternetAddressList *list;
	char *copy;
	int i, cnt;
	size_t added = 0, k;

	if (len > 64 * 1024)
		len = 64 * 1024;
	copy = gmime_copy(value, len);
	list = internet_address_list_parse(NULL, copy);
	free(copy);
	if (list == NULL)
		return 0;
	cnt = internet_address_list_length(list);
	for (i = 0; i < cnt && *n < max; i++) {
		InternetAddress *ia = internet_address_list_get_address(list,
		    i);
		const char *a, *at;
		char *dom;
		bool dup = false;

		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		a = internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia));
		at = a != NULL ? strrchr(a, '@') : NULL;
		dom = xstrdup(at != NULL && strlen(at + 1) <= 253 ? at + 1 :
		    "");
		addr_domain_normalise(dom);
		for (k = 0; k < *n && !dup; k++)
			dup = strcmp((*domains)[k], dom) == 0;
		if (dup) {
			free(dom);
			continue;
		}
		*domains = xreallocarray(*domains, *n + 1, sizeof(char *));
		(*domains)[(*n)++] = dom;
		added++;
	}
	g_object_unref(list);
	return added;
}
