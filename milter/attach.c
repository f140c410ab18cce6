/*
 * attach.c - attachment names (MIME parts and archive members) checked
 * against the block list, and the "strip" action.  See attach.h.
 * Owns: per call a GMime message (content left in the file, GMime's
 * persistent stream), a work stack of parts, and at most
 * ATTACH_ARCHIVE_DEPTH_MAX libarchive readers, each streaming from the
 * previous one; process-wide, GMime's initialisation (pthread_once).
 * Limits: GMime's parser recurses per MIME level, so an iterative
 * pre-scan bounds depth and part count first and hands GMime only the
 * bytes before the first entity past a limit.  Archive work is bounded by
 * depth, entries and decompressed bytes per message; archives are never
 * copied into memory: readers pull from the decoded part or from the
 * outer archive's entry data (a 7z member, which must be seeked, from an
 * anonymous temporary file of at most archive_bytes).
 * Broken multiparts (GMime splits them one way, mail clients may another)
 * are found by the pre-scan (missing end boundary) and the walk (boundary
 * parameter, no part, header fields in preamble or epilogue, whose names
 * are read too): they set the limits flag.
 * Errors: 0 / -1 with errno (I/O); allocation failure aborts (util.h,
 * GLib); hostile input only ever sets the limits flag.
 */
#include "autoconfig.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "attach.h"
#include "util.h"

#define READ_BUF	16384	/* archive reader input chunk */
#define HEAD_KEEP	1024	/* first bytes of an archive stream kept, for
				 * the original name in a gzip header */
#define SCAN_CHUNK	65536	/* pre-scan read size */
#define UNNAMED		"(unnamed)"

static pthread_once_t attach_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;	/* process lifetime, or (locale_t)0 */

static void
attach_start(void)
{
	/* GMime counts its initialisations: addr_init() may have run. */
	g_mime_init();
	/* libarchive converts member names to the current locale's
	 * charset; in the daemon's "C" locale every non-ASCII name would
	 * be lost, so readers run under a UTF-8 LC_CTYPE (per thread,
	 * uselocale(), only for the duration of a call). */
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8_locale == (locale_t)0)
		utf8_locale = newlocale(LC_CTYPE_MASK, "en_US.UTF-8",
		    (locale_t)0);
}

void
attach_init(void)
{
	pthread_once(&attach_once, attach_start);
}

/* ---------------------------------------------------------------- */
/* Name normalisation                                                */

/* Decodes one UTF-8 sequence at s (n bytes left): its length, or 0 when
 * invalid (overlong, surrogate, past U+10FFFF, truncated). */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Characters that change how a name looks without being visible: bidi
 * controls (the U+202E "invoice\u202Efdp.exe" trick), zero-width
 * characters and the soft hyphen, controls. */
static bool
cp_dropped(uint32_t c)
{
	if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
		return true;
	if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	    c == 0x200e || c == 0x200f || c == 0x061c)
		return true;
	if ((c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff ||
	    c == 0x00ad)
		return true;
	return false;
}

void
attach_name_normalise(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, o = 0, len;
	uint32_t c;

	if (outlen == 0)
		return;
	while (i < n) {
		len = utf8_decode(s + i, n - i, &c);
		if (len == 0) {
			if (o + 1 >= outlen)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (!cp_dropped(c)) {
			/* cut at a character boundary, never inside one */
			if (o + len >= outlen)
				break;
			memcpy(out + o, s + i, len);
			o += len;
		}
		i += len;
	}
	/* Windows drops trailing dots and spaces: "x.exe. ." runs x.exe */
	while (o > 0 && (out[o - 1] == '.' || out[o - 1] == ' '))
		o--;
	out[o] = '\0';
}

/*
 * Normalises one name component into out (ATTACH_NAME_MAX + 1 bytes).  An
 * overlong input keeps its tail: the end carries the file type, so a cut
 * must never drop it.
 */
static void
name_component(const char *in, char *out)
{
	size_t n = strlen(in);

	if (n > ATTACH_NAME_MAX) {
		in += n - ATTACH_NAME_MAX;
		while ((*(const unsigned char *)in & 0xc0) == 0x80)
			in++;
	}
	attach_name_normalise(in, out, ATTACH_NAME_MAX + 1);
}

static bool
ext_is(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);

	return n > e && name[n - e - 1] == '.' &&
	    mem_ieq(name + n - e, e, ext, e);
}

/* Names that claim to be archives: a reader failing on them is
 * reported ("corrupt zip in x.zip"), and members with them are opened. */
static const char *archive_exts[] = {
	"zip", "zipx", "jar", "7z", "rar", "tar", "gz", "tgz", "bz2", "tbz",
	"tbz2", "xz", "txz", "lzma", "zst", "tzst", "iso", "cab", "cpio",
	"lha", "lzh", "xar", "z",
};

static const char *
archive_claim(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof archive_exts / sizeof archive_exts[0]; i++)
		if (ext_is(name, archive_exts[i]))
			return archive_exts[i];
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Results                                                           */

struct scan {
	struct attach_limits lim;
	attach_blocked_fn fn;
	void	*ctx;			/* borrows: fn's argument */
	struct attach_result *res;	/* borrows: the caller's */
	unsigned parts;
	uint64_t entries, bytes;
	bool	 archive_stop;		/* entries or bytes used up */
	bool	 part_blocked;		/* this MIME part holds a blocked
					 * name (strip) */
	char	*part_first;		/* owns: its first blocked name */
	bool	 failed;		/* internal failure (errno set) */
	GMimeParserOptions *opts;	/* owns: for parsing part fields */
	char	 path[ATTACH_PATH_MAX];	/* name of the archive being read */
	char	 comp[ATTACH_NAME_MAX + 1];
};

static void
limit_set(struct scan *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static GMimeParserOptions *parser_options(void);

static void
limit_set(struct scan *sc, const char *fmt, ...)
{
	va_list ap;

	/* the first limit names the cause; later ones add nothing */
	if (sc->res->limits)
		return;
	sc->res->limits = true;
	va_start(ap, fmt);
	(void)vsnprintf(sc->res->limit_what, sizeof sc->res->limit_what, fmt,
	    ap);
	va_end(ap);
}

static void
list_push(char ***v, size_t *n, const char *s)
{
	/* grows by powers of two; capped by ATTACH_NAMES_MAX */
	if ((*n & (*n - 1)) == 0)
		*v = xreallocarray(*v, *n == 0 ? 1 : *n * 2, sizeof **v);
	(*v)[(*n)++] = xstrdup(s);
}

static void
name_add(struct scan *sc, const char *full)
{
	struct attach_result *r = sc->res;
	bool blocked;

	blocked = sc->fn != NULL && sc->fn(sc->ctx, full);
	if (r->nnames < ATTACH_NAMES_MAX)
		list_push(&r->names, &r->nnames, full);
	if (!blocked)
		return;
	if (r->nblocked < ATTACH_NAMES_MAX)
		list_push(&r->blocked, &r->nblocked, full);
	sc->part_blocked = true;
	if (sc->part_first == NULL)
		sc->part_first = xstrdup(full);
}

void
attach_result_free(struct attach_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nnames; i++)
		free(r->names[i]);
	for (i = 0; i < r->nblocked; i++)
		free(r->blocked[i]);
	free(r->names);
	free(r->blocked);
	memset(r, 0, sizeof *r);
}

static void
limits_get(const struct attach_limits *in, struct attach_limits *l)
{
	static const struct attach_limits zero;

	if (in == NULL)
		in = &zero;
#define LIM(f, def, max) \
	l->f = in->f == 0 ? (def) : in->f > (max) ? (max) : in->f
	LIM(mime_depth, ATTACH_MIME_DEPTH_DEFAULT, ATTACH_MIME_DEPTH_MAX);
	LIM(mime_parts, ATTACH_MIME_PARTS_DEFAULT, ATTACH_MIME_PARTS_MAX);
	LIM(archive_depth, ATTACH_ARCHIVE_DEPTH_DEFAULT,
	    ATTACH_ARCHIVE_DEPTH_MAX);
	LIM(archive_entries, ATTACH_ARCHIVE_ENTRIES_DEFAULT,
	    ATTACH_ARCHIVE_ENTRIES_MAX);
#undef LIM
	l->archive_bytes = in->archive_bytes == 0 ?
	    ATTACH_ARCHIVE_BYTES_DEFAULT : in->archive_bytes >
	    ATTACH_ARCHIVE_BYTES_MAX ? ATTACH_ARCHIVE_BYTES_MAX :
	    in->archive_bytes;
}

/* ---------------------------------------------------------------- */
/* Archives                                                          */

/* Where an archive reader's input comes from. */
struct asrc {
	struct scan *sc;		/* borrows */
	GMimeStream *stream;		/* owns: decoded MIME part (level 1) */
	struct archive *outer;		/* borrows: entry data (nested) */
	unsigned char *buf;		/* owns: READ_BUF */
	int64_t	 pos, size;		/* in stream; size -1: unknown */
	unsigned rewinds;
	bool	 opened;		/* past archive_read_open1() */
	bool	 over;			/* stopped by archive_bytes */
	int64_t	 fb_seen;		/* filter output already counted */
	unsigned char head[HEAD_KEEP];	/* first bytes of the input */
	size_t	 headlen;
};

/* Counts n decompressed bytes; true once past archive_bytes. */
static bool
bytes_count(struct scan *sc, uint64_t n)
{
	sc->bytes += n;
	if (sc->bytes <= sc->lim.archive_bytes)
		return false;
	limit_set(sc, "archive_bytes %" PRIu64, sc->lim.archive_bytes);
	sc->archive_stop = true;
	return true;
}

/*
 * Counts what the reader's own decompression filters (gzip, bzip2, xz
 * ...) produced since the last call.  Checked on every input read, so a
 * compressed bomb stops within one READ_BUF of input past the limit.
 */
static bool
filter_count(struct archive *a, struct asrc *s)
{
	int64_t fb;

	if (!s->opened || archive_filter_count(a) < 2)
		return s->over;
	fb = archive_filter_bytes(a, 0);
	if (fb > s->fb_seen) {
		if (bytes_count(s->sc, (uint64_t)(fb - s->fb_seen)))
			s->over = true;
		s->fb_seen = fb;
	}
	return s->over;
}

static la_ssize_t
src_read(struct archive *a, void *d, const void **out)
{
	struct asrc *s = d;
	la_ssize_t n;

	*out = s->buf;
	if (filter_count(a, s))
		return ARCHIVE_FATAL;
	if (s->stream != NULL) {
		n = g_mime_stream_read(s->stream, (char *)s->buf, READ_BUF);
		if (n < 0)
			return ARCHIVE_FATAL;
	} else {
		n = archive_read_data(s->outer, s->buf, READ_BUF);
		if (n < 0)
			return ARCHIVE_FATAL;
		/* the outer entry's data is decompressed output */
		if (n > 0 && bytes_count(s->sc, (uint64_t)n)) {
			s->over = true;
			return ARCHIVE_FATAL;
		}
	}
	if (n > 0 && s->pos == (int64_t)s->headlen && s->headlen < HEAD_KEEP) {
		size_t k = HEAD_KEEP - s->headlen;

		if ((size_t)n < k)
			k = (size_t)n;
		memcpy(s->head + s->headlen, s->buf, k);
		s->headlen += k;
	}
	if (n == 0 && s->size < 0)
		s->size = s->pos;
	s->pos += n;
	return n;
}

/* Reads and drops decoded bytes up to target (or the end). */
static int
src_skip_to(struct asrc *s, int64_t target)
{
	ssize_t n;
	size_t want;

	while (s->pos < target) {
		want = target - s->pos < READ_BUF ?
		    (size_t)(target - s->pos) : READ_BUF;
		n = g_mime_stream_read(s->stream, (char *)s->buf, want);
		if (n < 0)
			return -1;
		if (n == 0) {
			s->size = s->pos;
			break;
		}
		s->pos += n;
	}
	return 0;
}

/*
 * Seeking in a decoded (base64) part: forward by decoding and dropping,
 * backward by decoding again from the start.  7z, iso9660 and the zip
 * central directory need it; ATTACH_SEEK_MAX rewinds bound the work.
 */
static la_int64_t
src_seek(struct archive *a, void *d, la_int64_t off, int whence)
{
	struct asrc *s = d;
	int64_t target;

	(void)a;
	switch (whence) {
	case SEEK_SET:
		target = off;
		break;
	case SEEK_CUR:
		target = s->pos + off;
		break;
	case SEEK_END:
		if (s->size < 0 && src_skip_to(s, INT64_MAX) == -1)
			return ARCHIVE_FATAL;
		target = s->size + off;
		break;
	default:
		return ARCHIVE_FATAL;
	}
	if (target < 0)
		return ARCHIVE_FATAL;
	if (target < s->pos) {
		if (++s->rewinds > ATTACH_SEEK_MAX ||
		    g_mime_stream_reset(s->stream) == -1)
			return ARCHIVE_FATAL;
		s->pos = 0;
	}
	if (src_skip_to(s, target) == -1)
		return ARCHIVE_FATAL;
	return s->pos;
}

/* Copies the last outlen - 1 bytes of s[0..n): the end holds the type. */
static void
copy_tail(char *out, size_t outlen, const char *s, size_t n)
{
	if (n >= outlen)
		s += n - (outlen - 1), n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/*
 * The inner name of a single compressed file (libarchive's "raw" format):
 * the original name from the gzip header (RFC 1952 FNAME), else the
 * outer name without its compression suffix.  Written to out (not
 * overlapping outer), returned; normalised by the caller.
 */
static const char *
raw_name(const struct asrc *s, const char *outer, char *out, size_t outlen)
{
	const unsigned char *h = s->head, *nm, *slash;
	size_t n = s->headlen, i = 10, j, len;
	const char *base = outer, *p;

	if (n > 10 && h[0] == 0x1f && h[1] == 0x8b && (h[3] & 0x08)) {
		if (h[3] & 0x04)	/* FEXTRA: 2-byte length, data */
			i = 12 + (h[10] | (size_t)h[11] << 8);
		for (j = i; j < n && h[j] != '\0'; j++)
			;
		if (j < n && j > i) {
			/* the name the sender's gzip stored: no directories */
			nm = h + i;
			while ((slash = memchr(nm, '/', (size_t)(h + j - nm)))
			    != NULL)
				nm = slash + 1;
			if (nm < h + j) {
				copy_tail(out, outlen, (const char *)nm,
				    (size_t)(h + j - nm));
				return out;
			}
		}
	}
	if ((p = strrchr(outer, '/')) != NULL)
		base = p + 1;
	len = strlen(base);
	if (ext_is(base, "tgz") || ext_is(base, "tbz") || ext_is(base, "txz")) {
		copy_tail(out, outlen, base, len - 4);
		if (strlen(out) + 5 <= outlen)
			strcat(out, ".tar");
	} else if (ext_is(base, "tbz2") || ext_is(base, "tzst")) {
		copy_tail(out, outlen, base, len - 5);
		if (strlen(out) + 5 <= outlen)
			strcat(out, ".tar");
	} else if ((p = strrchr(base, '.')) != NULL && p != base)
		copy_tail(out, outlen, base, (size_t)(p - base));
	else
		copy_tail(out, outlen, base, len);
	return out;
}

/* A member name only libarchive's wide form holds, as UTF-8 in out. */
static const char *
wide_name(struct archive_entry *e, char *out, size_t outlen)
{
	const wchar_t *w = archive_entry_pathname_w(e);
	size_t o = 0;
	uint32_t c;

	if (w == NULL)
		return NULL;
	for (; *w != L'\0' && o + 5 < outlen; w++) {
		c = (uint32_t)*w;
		if (c < 0x80)
			out[o++] = (char)c;
		else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c <= 0x10ffff) {
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else
			out[o++] = '?';
	}
	out[o] = '\0';
	return out;
}

static bool
err_encrypted(struct archive *a)
{
	const char *e = archive_error_string(a);

	/* libarchive reports an encrypted 7z header or an encrypted rar
	 * only as an error text */
	return e != NULL && (strstr(e, "ncrypt") != NULL ||
	    strstr(e, "assphrase") != NULL);
}

static int archive_list(struct scan *, struct asrc *, size_t plen,
    const char *claim, unsigned level);

/*
 * 7z keeps its directory at the end, so a reader needs to seek, which the
 * stream of an outer archive's entry cannot do.  Such a member is copied
 * to an anonymous temporary file (in $TMPDIR, else /tmp; never memory),
 * its bytes counted as decompressed output so that archive_bytes bounds
 * the file, and read from there.  in->buf must be allocated.  0 with
 * in->stream set; 1 when the member was not copied (archive_bytes used up,
 * or its data unreadable: then reported as corrupt); -1 with errno on an
 * internal failure.
 */
static int
member_spool(struct scan *sc, struct archive *outer, const char *claim,
    struct asrc *in)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	la_ssize_t n;
	ssize_t w;
	int64_t total = 0;
	int fd, e;

	path = xasprintf("%s/portcullis-arc-XXXXXX", dir != NULL &&
	    dir[0] == '/' ? dir : "/tmp");
	if ((fd = mkstemp(path)) >= 0)
		unlink(path);
	free(path);
	if (fd < 0)
		return -1;
	for (;;) {
		n = archive_read_data(outer, in->buf, READ_BUF);
		if (n == 0)
			break;
		if (n < 0) {
			limit_set(sc, "corrupt %s in %s", claim, sc->path);
			close(fd);
			return 1;
		}
		if (bytes_count(sc, (uint64_t)n)) {
			close(fd);
			return 1;
		}
		for (la_ssize_t o = 0; o < n; o += w)
			if ((w = write(fd, in->buf + o, (size_t)(n - o))) < 0) {
				e = errno;
				close(fd);
				errno = e;
				return -1;
			}
		total += n;
	}
	if (lseek(fd, 0, SEEK_SET) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	in->stream = g_mime_stream_fs_new(fd);	/* owns fd */
	in->size = total;
	return 0;
}

/*
 * Member names of the archive whose input is src; the archive's own name
 * is sc->path[0..plen).  claim: the archive extension its name carries,
 * or NULL (then an input that is no archive is silently not one).  level:
 * 1 for an attached archive.  Recursion is bounded by archive_depth + 1
 * (<= ATTACH_ARCHIVE_DEPTH_MAX).  0, or -1 on an internal failure.
 */
static int
archive_list(struct scan *sc, struct asrc *src, size_t plen,
    const char *claim, unsigned level)
{
	struct archive *a;
	struct archive_entry *e;
	struct asrc inner;
	const char *p, *iclaim;
	size_t nent = 0, clen;
	int r, fmt;
	bool raw, picked = false;

	if ((a = archive_read_new()) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	/* a single compressed file (x.exe.gz) is "raw" behind a filter */
	archive_read_support_format_raw(a);
	archive_read_set_callback_data(a, src);
	archive_read_set_read_callback(a, src_read);
	if (src->stream != NULL)
		archive_read_set_seek_callback(a, src_seek);
	r = archive_read_open1(a);
	src->opened = true;
	for (;;) {
		if (r < ARCHIVE_WARN)
			break;
		if (sc->archive_stop)
			break;
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF || r < ARCHIVE_WARN)
			break;
		picked = true;
		(void)filter_count(a, src);
		fmt = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
		raw = fmt == ARCHIVE_FORMAT_RAW;
		if (nent == 0 && ((raw && archive_filter_count(a) < 2) ||
		    fmt == ARCHIVE_FORMAT_MTREE)) {
			/* Raw data without a compression filter is no
			 * archive; an mtree manifest names files it does
			 * not contain. */
			if (claim != NULL)
				limit_set(sc, "corrupt %s in %s", claim,
				    sc->path);
			goto done;
		}
		if (nent == 0 && level > sc->lim.archive_depth) {
			/* an unclaimed member past the depth limit, opened
			 * only to tell whether it is an archive: it is */
			limit_set(sc, "archive_depth %u",
			    sc->lim.archive_depth);
			goto done;
		}
		nent++;
		if (++sc->entries > sc->lim.archive_entries) {
			limit_set(sc, "archive_entries %u",
			    sc->lim.archive_entries);
			sc->archive_stop = true;
			break;
		}
		if (archive_entry_is_encrypted(e))
			sc->res->encrypted = true;
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		/* scratch space for a name: after the prefix in path */
		if (raw)
			p = raw_name(src, sc->path, sc->path + plen + 1,
			    sizeof sc->path - plen - 1);
		else if ((p = archive_entry_pathname_utf8(e)) == NULL &&
		    (p = wide_name(e, sc->path + plen + 1,
		    sizeof sc->path - plen - 1)) == NULL &&
		    (p = archive_entry_pathname(e)) == NULL)
			p = UNNAMED;
		while (*p == '/' || (p[0] == '.' && p[1] == '/'))
			p += *p == '/' ? 1 : 2;
		name_component(*p != '\0' ? p : UNNAMED, sc->comp);
		clen = strlen(sc->comp);
		if (plen + 1 + clen >= sizeof sc->path)
			continue;	/* cannot happen: depth x name max */
		sc->path[plen] = '/';
		memcpy(sc->path + plen + 1, sc->comp, clen + 1);
		name_add(sc, sc->path);
		/* A member whose name claims no archive is opened too, and
		 * is one if its content says so (data.bin holding a zip):
		 * a renamed archive hides nothing.  At the depth limit only
		 * to tell (archive_list() sets the limit if it is one). */
		iclaim = archive_claim(sc->comp);
		if (iclaim != NULL && level >= sc->lim.archive_depth) {
			limit_set(sc, "archive_depth %u",
			    sc->lim.archive_depth);
			continue;
		}
		if (sc->archive_stop || archive_entry_is_encrypted(e))
			continue;	/* an encrypted member cannot be read */
		if (archive_entry_size_is_set(e) &&
		    archive_entry_size(e) == 0)
			continue;	/* nothing to look into */
		/* Open the member as an archive, streaming from this
		 * reader: no copy, every byte counted (a 7z: from a
		 * temporary copy, see member_spool()). */
		memset(&inner, 0, sizeof inner);
		inner.sc = sc;
		inner.size = -1;
		inner.buf = xmalloc(READ_BUF);
		if (iclaim == NULL || strcmp(iclaim, "7z") != 0) {
			inner.outer = a;
			r = 0;
		} else
			r = member_spool(sc, a, iclaim, &inner);
		if (r == 0)
			r = archive_list(sc, &inner, plen + 1 + clen, iclaim,
			    level + 1);
		if (inner.stream != NULL)
			g_object_unref(inner.stream);
		free(inner.buf);
		if (r == -1)
			goto fail;
		r = ARCHIVE_OK;
		/* the member's data was read through: a later read of this
		 * reader's header simply carries on */
	}
	if (r < ARCHIVE_WARN && !src->over && !sc->archive_stop) {
		sc->path[plen] = '\0';
		if (err_encrypted(a))
			sc->res->encrypted = true;
		else if (claim != NULL || nent > 0)
			limit_set(sc, "corrupt %s in %s", claim != NULL ?
			    claim : archive_format_name(a) != NULL ?
			    archive_format_name(a) : "archive", sc->path);
	}
	/* Only once a format was chosen: libarchive 3.6 leaves its format
	 * pointer past its table when none was, and this call then reads
	 * outside the reader (found by fuzzing, under valgrind). */
	if (picked && archive_read_has_encrypted_entries(a) > 0)
		sc->res->encrypted = true;
done:
	sc->path[plen] = '\0';
	archive_read_free(a);
	return 0;
fail:
	sc->path[plen] = '\0';
	archive_read_free(a);
	return -1;
}

/* ---------------------------------------------------------------- */
/* MIME parts                                                        */

/* The decoded content of a part, as a stream; NULL when it has none. */
static GMimeStream *
part_stream(GMimePart *part)
{
	GMimeDataWrapper *dw;
	GMimeStream *raw, *f;
	GMimeFilter *flt;
	GMimeContentEncoding enc;

	if ((dw = g_mime_part_get_content(part)) == NULL ||
	    (raw = g_mime_data_wrapper_get_stream(dw)) == NULL)
		return NULL;
	if (g_mime_stream_reset(raw) == -1)
		return NULL;
	f = g_mime_stream_filter_new(raw);
	enc = g_mime_data_wrapper_get_encoding(dw);
	switch (enc) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		flt = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add((GMimeStreamFilter *)f, flt);
		g_object_unref(flt);
		break;
	default:
		break;
	}
	return f;
}

/* The names one part gives itself, normalised, each once. */
struct pnames {
	char	*v[ATTACH_PART_NAMES_MAX];	/* owns */
	size_t	 n;
};

static void
pnames_push(struct scan *sc, struct pnames *pn, const char *raw)
{
	char *n = xmalloc(ATTACH_NAME_MAX + 1);
	size_t i;

	name_component(raw, n);
	for (i = 0; i < pn->n && n[0] != '\0'; i++)
		if (strcmp(pn->v[i], n) == 0)
			break;
	if (n[0] == '\0' || i < pn->n) {
		free(n);
		return;
	}
	if (pn->n == ATTACH_PART_NAMES_MAX) {
		/* more names than any mail client writes: what the others
		 * say is not looked at, so it is a limit */
		limit_set(sc, "part_names %u", ATTACH_PART_NAMES_MAX);
		free(n);
		return;
	}
	pn->v[pn->n++] = n;
}

static void
pnames_free(struct pnames *pn)
{
	while (pn->n > 0)
		free(pn->v[--pn->n]);
}

/* Every "name" and "filename" parameter of l, whatever its case, all
 * duplicates included (GMime keeps them, RFC 2231 already decoded). */
static void
params_names(struct scan *sc, struct pnames *pn, GMimeParamList *l)
{
	GMimeParam *p;
	const char *k, *v;
	int i, n;

	if (l == NULL)
		return;
	n = g_mime_param_list_length(l);
	for (i = 0; i < n; i++) {
		p = g_mime_param_list_get_parameter_at(l, i);
		k = g_mime_param_get_name(p);
		v = g_mime_param_get_value(p);
		if (k != NULL && v != NULL && (str_ieq(k, "filename") ||
		    str_ieq(k, "name")))
			pnames_push(sc, pn, v);
	}
}

/*
 * Splits a raw field value at the ';' outside quoted strings: the offsets
 * of up to ATTACH_PARAMS_MAX + 1 pieces (the first is the type).  The
 * number of pieces, or 0 when there are more.
 */
struct pieces {
	size_t	 st[ATTACH_PARAMS_MAX + 1], en[ATTACH_PARAMS_MAX + 1];
	size_t	 ks[ATTACH_PARAMS_MAX + 1], kl[ATTACH_PARAMS_MAX + 1];
	bool	 keep[ATTACH_PARAMS_MAX + 1];
};

static size_t
params_split(const char *raw, struct pieces *pc)
{
	size_t i, n = 0;
	bool q = false;

	pc->st[0] = 0;
	for (i = 0; raw[i] != '\0'; i++) {
		if (q && raw[i] == '\\' && raw[i + 1] != '\0')
			i++;
		else if (raw[i] == '"')
			q = !q;
		else if (!q && raw[i] == ';') {
			pc->en[n++] = i;
			if (n > ATTACH_PARAMS_MAX)
				return 0;
			pc->st[n] = i + 1;
		}
	}
	pc->en[n++] = i;
	return n;
}

/* The parameter name of the piece raw[s..e) ("filename*1*"), trimmed. */
static void
piece_key(const char *raw, size_t s, size_t e, size_t *ks, size_t *kl)
{
	while (s < e && strchr(" \t\r\n", raw[s]) != NULL)
		s++;
	*ks = s;
	while (s < e && raw[s] != '=' && strchr(" \t\r\n", raw[s]) == NULL)
		s++;
	*kl = s - *ks;
}

/*
 * The raw value with each repeated parameter (same name, any case, the
 * RFC 2231 section "*N" included) kept only once: its first occurrence,
 * or keep_last its last.  NULL when nothing repeats.  Mail clients differ
 * in which one they believe (and GMime glues repeated sections together:
 * "a." "exe" "pdf" -> "a.exepdf"), so both readings are checked.  More
 * than ATTACH_PARAMS_MAX parameters is a limit.
 */
static char *
params_variant(struct scan *sc, const char *raw, bool keep_last)
{
	struct pieces *pc = xmalloc(sizeof *pc);
	size_t n, i, j;
	bool dup = false;
	struct buf b;
	char *out = NULL;

	if ((n = params_split(raw, pc)) == 0) {
		limit_set(sc, "part_params %u", ATTACH_PARAMS_MAX);
		goto done;
	}
	for (i = 1; i < n; i++) {
		piece_key(raw, pc->st[i], pc->en[i], &pc->ks[i], &pc->kl[i]);
		pc->keep[i] = true;
	}
	for (i = 1; i < n; i++)
		for (j = i + 1; j < n; j++) {
			if (pc->kl[i] == 0 || !mem_ieq(raw + pc->ks[i],
			    pc->kl[i], raw + pc->ks[j], pc->kl[j]))
				continue;
			dup = true;
			pc->keep[keep_last ? i : j] = false;
		}
	if (!dup)
		goto done;
	buf_init(&b, strlen(raw) + 1);
	(void)buf_append(&b, raw, pc->en[0]);
	for (i = 1; i < n; i++)
		if (pc->keep[i]) {
			(void)buf_append(&b, ";", 1);
			(void)buf_append(&b, raw + pc->st[i],
			    pc->en[i] - pc->st[i]);
		}
	out = xstrdup(b.p);
	buf_free(&b);
done:
	free(pc);
	return out;
}

/* The names in one Content-Type (is_type) or Content-Disposition
 * value, read as is and with repeated parameters reduced both ways. */
static void
field_names(struct scan *sc, struct pnames *pn, const char *raw,
    bool is_type)
{
	GMimeContentType *ct;
	GMimeContentDisposition *cd;
	char *var[2] = { NULL, NULL }, *conv = NULL;
	const char *v;
	int k;

	/* raw 8-bit text: UTF-8 if valid, else the fallback charsets, as
	 * GMime does for the fields it parses itself */
	if (!g_utf8_validate(raw, -1, NULL))
		raw = conv = g_mime_utils_decode_8bit(sc->opts, raw,
		    strlen(raw));
	var[0] = params_variant(sc, raw, false);
	var[1] = var[0] != NULL ? params_variant(sc, raw, true) : NULL;
	for (k = -1; k < 2; k++) {
		v = k < 0 ? raw : var[k];
		if (v == NULL)
			continue;
		if (is_type) {
			ct = g_mime_content_type_parse(sc->opts, v);
			params_names(sc, pn,
			    g_mime_content_type_get_parameters(ct));
			g_object_unref(ct);
		} else {
			cd = g_mime_content_disposition_parse(sc->opts, v);
			params_names(sc, pn,
			    g_mime_content_disposition_get_parameters(cd));
			g_object_unref(cd);
		}
	}
	free(var[0]);
	free(var[1]);
	g_free(conv);
}

/*
 * Every name a part gives itself: each Content-Disposition field first
 * (filename, filename*, continuations), then each Content-Type field
 * (name, name*), every occurrence of a repeated field or parameter.  An
 * attacker writes a harmless name in one place and "x.exe" in another;
 * mail clients differ in which they show and save, so all of them count.
 */
static void
part_names(struct scan *sc, GMimeObject *obj, struct pnames *pn)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	GMimeHeader *h;
	const char *nm, *raw;
	int i, n, pass;

	if (hl == NULL)
		return;
	n = g_mime_header_list_get_count(hl);
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			h = g_mime_header_list_get_header_at(hl, i);
			nm = g_mime_header_get_name(h);
			if (nm == NULL || !str_ieq(nm, pass == 0 ?
			    "Content-Disposition" : "Content-Type"))
				continue;
			if ((raw = g_mime_header_get_raw_value(h)) == NULL &&
			    (raw = g_mime_header_get_value(h)) == NULL)
				continue;
			field_names(sc, pn, raw, pass == 1);
		}
}

/*
 * Names of one part (part_names()), then, for a part that is not a plain
 * text body, its archive members.  0, or -1.
 */
static int
part_scan(struct scan *sc, GMimeObject *obj)
{
	const char *claim = NULL;
	GMimeContentType *ct;
	struct pnames pn;
	struct asrc src;
	size_t i;
	int rv = 0;

	pn.n = 0;
	part_names(sc, obj, &pn);
	for (i = 0; i < pn.n; i++)
		name_add(sc, pn.v[i]);
	if (!GMIME_IS_PART(obj) || sc->archive_stop)
		goto out;
	ct = g_mime_object_get_content_type(obj);
	/* a body text is no archive: spare the readers' detection */
	if (pn.n == 0 && ct != NULL &&
	    g_mime_content_type_is_type(ct, "text", "*"))
		goto out;
	for (i = 0; i < pn.n && claim == NULL; i++)
		claim = archive_claim(pn.v[i]);
	(void)snprintf(sc->path, sizeof sc->path, "%s",
	    pn.n > 0 ? pn.v[0] : UNNAMED);
	memset(&src, 0, sizeof src);
	src.sc = sc;
	src.size = -1;
	if ((src.stream = part_stream((GMimePart *)obj)) == NULL)
		goto out;
	src.buf = xmalloc(READ_BUF);
	rv = archive_list(sc, &src, strlen(sc->path), claim, 1);
	free(src.buf);
	g_object_unref(src.stream);
out:
	pnames_free(&pn);
	return rv;
}

/*
 * Header fields written in the preamble or epilogue of a multipart (the
 * text GMime keeps outside its parts): a part there is one some mail
 * clients show (when they guess a broken boundary) and we did not look
 * into.  Its names count, and it sets the limit: not silently skipped.
 */
static void
loose_text_names(struct scan *sc, const char *text, const char *where)
{
	struct pnames pn;
	struct buf f;
	const char *l, *e, *c;
	size_t len, i;
	bool is_type = false, in = false, seen = false;

	if (text == NULL)
		return;
	pn.n = 0;
	buf_init(&f, ATTACH_FIELD_MAX);
	for (l = text; ; l = e + 1) {
		e = strchr(l, '\n');
		len = e != NULL ? (size_t)(e - l) : strlen(l);
		while (len > 0 && l[len - 1] == '\r')
			len--;
		if (in && len > 0 && (l[0] == ' ' || l[0] == '\t')) {
			(void)buf_append(&f, l, len);	/* a fold */
			goto next;
		}
		if (in && f.p != NULL) {
			field_names(sc, &pn, f.p, is_type);
			seen = true;
		}
		in = false;
		f.len = 0;
		if (f.p != NULL)
			f.p[0] = '\0';
		c = memchr(l, ':', len);
		if (c != NULL && (mem_ieq(l, (size_t)(c - l), "Content-Type",
		    12) || mem_ieq(l, (size_t)(c - l), "Content-Disposition",
		    19))) {
			is_type = c - l == 12;
			in = true;
			(void)buf_append(&f, c + 1, len - (size_t)(c - l) - 1);
		}
next:
		if (e == NULL)
			break;
	}
	if (in && f.p != NULL) {
		field_names(sc, &pn, f.p, is_type);
		seen = true;
	}
	if (seen)
		limit_set(sc, "broken multipart: part header in the %s",
		    where);
	for (i = 0; i < pn.n; i++)
		name_add(sc, pn.v[i]);
	pnames_free(&pn);
	buf_free(&f);
}

/*
 * A multipart GMime could not split cleanly: no usable boundary (none,
 * empty, or ending in white space, which RFC 2046 section 5.1.1 forbids
 * and clients trim or not), or no part at all (the boundary never
 * appears).  What lies there was not inspected as a part: limits.
 */
static void
multipart_check(struct scan *sc, GMimeMultipart *mp, int cnt)
{
	/* the parameter as received: g_mime_multipart_get_boundary()
	 * would make one up */
	const char *b = g_mime_object_get_content_type_parameter(
	    (GMimeObject *)mp, "boundary");
	size_t n = b != NULL ? strlen(b) : 0;

	if (n == 0)
		limit_set(sc, "broken multipart: no boundary");
	else if (b[n - 1] == ' ' || b[n - 1] == '\t')
		limit_set(sc, "broken multipart: boundary ends in white "
		    "space");
	else if (cnt == 0)
		limit_set(sc, "broken multipart: the boundary never appears");
	loose_text_names(sc, g_mime_multipart_get_prologue(mp), "preamble");
	loose_text_names(sc, g_mime_multipart_get_epilogue(mp), "epilogue");
}

/* ---------------------------------------------------------------- */
/* Depth pre-scan                                                    */

/*
 * GMime's parser recurses once or twice per MIME level (it stops itself
 * only at 1024).  This scan follows the structure the way GMime does
 * (first Content-Type decides multipart or not, the boundary is taken
 * from the last, message/rfc822|rfc2822|global|news unless base64,
 * quoted-printable or uuencoded, digest children default to
 * message/rfc822; boundary lines "--B" or "--B--" plus white space,
 * checked innermost first) with an explicit stack, and finds the offset
 * of the first entity past mime_depth or mime_parts (or of the header
 * field past ATTACH_HEADER_FIELDS_MAX): GMime gets only the
 * bytes before it.  Any disagreement can only make it cut earlier, never
 * let GMime deeper than its own 1024 (which ATTACH_MIME_DEPTH_MAX keeps
 * far from).
 */
struct pframe {
	char	*boundary;	/* owns: "--B", or NULL (message/rfc822, or
				 * multipart without a usable boundary) */
	size_t	 blen;
	bool	 digest;
};

struct prescan {
	const struct attach_limits *lim;	/* borrows */
	struct pframe *fr;	/* owns: at most mime_depth + 1 */
	size_t	 nfr;
	bool	 head;		/* in a header block */
	int64_t	 entity;	/* offset of the current entity */
	unsigned parts;
	unsigned fields;	/* header fields so far, all parts */
	struct buf field;	/* the header field being read */
	char	*ct_first;	/* owns */
	char	*ct_last;	/* owns */
	char	*cte;		/* owns */
	int64_t	 cut;		/* -1: none */
	char	 what[96];
	bool	 unclosed;	/* a multipart with a boundary ended without
				 * its close delimiter "--B--" */
};

/* Frames above keep end with their parent's boundary or the input. */
static void
pre_note_unclosed(struct prescan *ps, size_t keep)
{
	size_t i;

	for (i = keep; i < ps->nfr; i++)
		if (ps->fr[i].boundary != NULL)
			ps->unclosed = true;
}

static void
pre_pop(struct prescan *ps, size_t keep)
{
	while (ps->nfr > keep)
		free(ps->fr[--ps->nfr].boundary);
}

static bool
pre_limit_parts(struct prescan *ps)
{
	if (++ps->parts <= ps->lim->mime_parts)
		return false;
	ps->cut = ps->entity;
	(void)snprintf(ps->what, sizeof ps->what, "mime_parts %u",
	    ps->lim->mime_parts);
	return true;
}

static void
pre_field_end(struct prescan *ps)
{
	const char *v;
	char **slot = NULL;
	size_t nlen;

	if (ps->field.len == 0)
		return;
	v = memchr(ps->field.p, ':', ps->field.len);
	if (v == NULL)
		goto out;
	nlen = (size_t)(v - ps->field.p);
	while (nlen > 0 && (ps->field.p[nlen - 1] == ' ' ||
	    ps->field.p[nlen - 1] == '\t'))
		nlen--;
	if (mem_ieq(ps->field.p, nlen, "Content-Type", 12)) {
		if (ps->ct_first == NULL)
			ps->ct_first = xstrdup(v + 1);
		slot = &ps->ct_last;
	} else if (mem_ieq(ps->field.p, nlen, "Content-Transfer-Encoding", 25))
		slot = &ps->cte;
	if (slot != NULL) {
		free(*slot);
		*slot = xstrdup(v + 1);
	}
out:
	ps->field.len = 0;
	ps->field.p[0] = '\0';
}

static bool
pre_is_message(const GMimeContentType *ct)
{
	const char *st = g_mime_content_type_get_media_subtype(
	    (GMimeContentType *)ct);

	return g_mime_content_type_is_type((GMimeContentType *)ct, "message",
	    "*") && st != NULL && (str_ieq(st, "rfc822") ||
	    str_ieq(st, "rfc2822") || str_ieq(st, "global") ||
	    str_ieq(st, "news"));
}

/* End of a header block; next: offset after the blank line. */
static void
pre_head_end(struct prescan *ps, int64_t next)
{
	GMimeContentType *ct = NULL, *last = NULL;
	const char *b;
	bool multi = false, message = false, digest = false;
	GMimeContentEncoding enc;

	pre_field_end(ps);
	ps->head = false;
	if (ps->ct_first != NULL) {
		ct = g_mime_content_type_parse(NULL, ps->ct_first);
		message = pre_is_message(ct);
		/* a looser test than GMime's: more depth, never less */
		multi = !message &&
		    (g_mime_content_type_is_type(ct, "multipart", "*") ||
		    strstr(ps->ct_first, "ultipart") != NULL);
		digest = g_mime_content_type_is_type(ct, "multipart",
		    "digest");
	} else if (ps->nfr > 0 && ps->fr[ps->nfr - 1].digest)
		message = true;
	if (message && ps->cte != NULL) {
		enc = g_mime_content_encoding_from_string(ps->cte);
		if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
		    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
		    enc == GMIME_CONTENT_ENCODING_UUENCODE)
			message = false;
	}
	if (multi || message) {
		if (ps->nfr + 1 > ps->lim->mime_depth) {
			ps->cut = ps->entity;
			(void)snprintf(ps->what, sizeof ps->what,
			    "mime_depth %u", ps->lim->mime_depth);
			goto out;
		}
		/* nfr <= mime_depth <= ATTACH_MIME_DEPTH_MAX: bounded */
		ps->fr = xreallocarray(ps->fr, ps->nfr + 1, sizeof *ps->fr);
		memset(&ps->fr[ps->nfr], 0, sizeof ps->fr[0]);
		ps->fr[ps->nfr].digest = digest;
		if (multi && ps->ct_last != NULL) {
			last = g_mime_content_type_parse(NULL, ps->ct_last);
			b = g_mime_content_type_get_parameter(last, "boundary");
			if (b != NULL && *b != '\0' &&
			    strlen(b) <= ATTACH_BOUNDARY_MAX) {
				ps->fr[ps->nfr].boundary = xasprintf("--%s",
				    b);
				ps->fr[ps->nfr].blen = strlen(b) + 2;
			}
		}
		ps->nfr++;
		if (message) {
			/* the embedded message's header follows */
			ps->head = true;
			ps->entity = next;
			(void)pre_limit_parts(ps);
		}
	}
out:
	if (ct != NULL)
		g_object_unref(ct);
	if (last != NULL)
		g_object_unref(last);
	free(ps->ct_first);
	free(ps->ct_last);
	free(ps->cte);
	ps->ct_first = ps->ct_last = ps->cte = NULL;
}

static bool
lwsp_only(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* A boundary line: index of the frame, *final for "--B--"; -1 if none. */
static long
pre_boundary(const struct prescan *ps, const char *l, size_t n, bool *final)
{
	size_t i, bl;
	const struct pframe *f;

	if (n < 2 || l[0] != '-' || l[1] != '-')
		return -1;
	for (i = ps->nfr; i-- > 0;) {
		f = &ps->fr[i];
		if (f->boundary == NULL || n < f->blen)
			continue;
		bl = f->blen;
		if (memcmp(l, f->boundary, bl) != 0)
			continue;
		if (n >= bl + 2 && l[bl] == '-' && l[bl + 1] == '-' &&
		    lwsp_only(l + bl + 2, n - bl - 2)) {
			*final = true;
			return (long)i;
		}
		if (lwsp_only(l + bl, n - bl)) {
			*final = false;
			return (long)i;
		}
	}
	return -1;
}

/* One line (without its LF; truncated lines are cut at the buffer). */
static void
pre_line(struct prescan *ps, const char *l, size_t n, int64_t off,
    int64_t next)
{
	size_t hn = n;
	long i;
	bool final;

	if (ps->head) {
		while (hn > 0 && l[hn - 1] == '\r')
			hn--;
		if (hn == 0) {
			pre_head_end(ps, next);
			return;
		}
		if (l[0] == ' ' || l[0] == '\t') {
			/* a fold: unfolded into the field, bounded */
			(void)buf_append(&ps->field, l, hn);
			return;
		}
		if (pre_boundary(ps, l, n, &final) < 0 &&
		    memchr(l, ':', hn) != NULL) {
			pre_field_end(ps);
			if (++ps->fields > ATTACH_HEADER_FIELDS_MAX) {
				/* GMime's memory grows with each field */
				ps->cut = off;
				(void)snprintf(ps->what, sizeof ps->what,
				    "header_fields %u",
				    ATTACH_HEADER_FIELDS_MAX);
				return;
			}
			(void)buf_append(&ps->field, l, hn);
			return;
		}
		/* a boundary or a line that is no header field ends the
		 * header block (GMime: part without headers) */
		pre_head_end(ps, off);
		if (ps->cut >= 0 || ps->head)
			return;
	}
	if ((i = pre_boundary(ps, l, n, &final)) < 0)
		return;
	pre_note_unclosed(ps, (size_t)i + 1);
	if (final) {
		pre_pop(ps, (size_t)i);
		return;
	}
	pre_pop(ps, (size_t)i + 1);
	ps->head = true;
	ps->entity = off;
	(void)pre_limit_parts(ps);
}

/* Sets *cut to the offset GMime may read up to (-1: all).  0, or -1. */
static int
prescan(int fd, const struct attach_limits *lim, int64_t *cut, char *what,
    size_t whatlen, bool *unclosed)
{
	struct prescan ps;
	char *chunk, *line;
	size_t llen = 0, i, start, k;
	int64_t off = 0, loff = 0;
	ssize_t n;
	int rv = 0;

	memset(&ps, 0, sizeof ps);
	ps.lim = lim;
	ps.head = true;
	ps.cut = -1;
	ps.parts = 1;
	buf_init(&ps.field, ATTACH_FIELD_MAX);
	(void)buf_append(&ps.field, "", 0);
	chunk = xmalloc(SCAN_CHUNK);
	line = xmalloc(ATTACH_FIELD_MAX);
	while (ps.cut < 0) {
		n = pread(fd, chunk, SCAN_CHUNK, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rv = -1;
			break;
		}
		if (n == 0) {
			if (llen > 0)
				pre_line(&ps, line, llen, loff, off);
			break;
		}
		for (start = i = 0; i < (size_t)n && ps.cut < 0; i++) {
			if (chunk[i] != '\n')
				continue;
			/* only the first ATTACH_FIELD_MAX bytes of a line
			 * matter: boundaries and kept fields are shorter */
			k = i - start;
			if (k > ATTACH_FIELD_MAX - llen)
				k = ATTACH_FIELD_MAX - llen;
			memcpy(line + llen, chunk + start, k);
			llen += k;
			pre_line(&ps, line, llen, loff, off + (int64_t)i + 1);
			llen = 0;
			start = i + 1;
			loff = off + (int64_t)i + 1;
		}
		if (ps.cut < 0 && start < (size_t)n) {
			k = (size_t)n - start;
			if (k > ATTACH_FIELD_MAX - llen)
				k = ATTACH_FIELD_MAX - llen;
			memcpy(line + llen, chunk + start, k);
			llen += k;
		}
		off += n;
	}
	*cut = ps.cut;
	if (ps.cut >= 0)
		(void)snprintf(what, whatlen, "%s", ps.what);
	else if (rv == 0)
		pre_note_unclosed(&ps, 0);
	*unclosed = ps.unclosed;
	pre_pop(&ps, 0);
	free(ps.fr);
	free(ps.ct_first);
	free(ps.ct_last);
	free(ps.cte);
	buf_free(&ps.field);
	free(chunk);
	free(line);
	return rv;
}

/* ---------------------------------------------------------------- */
/* Walk                                                              */

struct node {
	GMimeObject *obj;	/* borrows (the message owns it) */
	GMimeObject *parent;	/* multipart, message part or NULL (top) */
	int	 index;		/* in a multipart parent */
};

struct hit {
	struct node n;
	char	*name;		/* owns: the first blocked name */
};

struct walk {
	struct hit *hits;	/* owns (strip only) */
	size_t	 nhits;
	bool	 crlf;
};

static void
node_push(struct node **st, size_t *n, size_t *cap, GMimeObject *obj,
    GMimeObject *parent, int index)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*st = xreallocarray(*st, *cap, sizeof **st);
	}
	(*st)[*n].obj = obj;
	(*st)[*n].parent = parent;
	(*st)[*n].index = index;
	(*n)++;
}

/*
 * Walks every part of msg depth first in message order with an explicit
 * stack.  w: non-NULL to record the blocked parts (strip).  0, or -1.
 */
static int
walk(struct scan *sc, GMimeMessage *msg, struct walk *w)
{
	struct node *st = NULL, cur;
	size_t n = 0, cap = 0;
	GMimeObject *top;
	GMimeMessage *inner;
	int i, cnt, rv = 0;

	if ((top = g_mime_message_get_mime_part(msg)) == NULL)
		return 0;
	node_push(&st, &n, &cap, top, NULL, 0);
	while (n > 0) {
		cur = st[--n];
		if (++sc->parts > sc->lim.mime_parts) {
			limit_set(sc, "mime_parts %u", sc->lim.mime_parts);
			break;
		}
		if (GMIME_IS_MULTIPART(cur.obj)) {
			cnt = g_mime_multipart_get_count(
			    (GMimeMultipart *)cur.obj);
			multipart_check(sc, (GMimeMultipart *)cur.obj, cnt);
			/* reversed, so they pop in message order */
			for (i = cnt; i-- > 0;)
				node_push(&st, &n, &cap,
				    g_mime_multipart_get_part(
				    (GMimeMultipart *)cur.obj, i), cur.obj, i);
			continue;
		}
		sc->part_blocked = false;
		free(sc->part_first);
		sc->part_first = NULL;
		if (part_scan(sc, cur.obj) == -1) {
			rv = -1;
			break;
		}
		if (w != NULL && sc->part_blocked) {
			w->hits = xreallocarray(w->hits, w->nhits + 1,
			    sizeof *w->hits);
			w->hits[w->nhits].n = cur;
			w->hits[w->nhits].name = sc->part_first;
			sc->part_first = NULL;
			w->nhits++;
			/* removed whole: what it contains does not matter */
			continue;
		}
		if (GMIME_IS_MESSAGE_PART(cur.obj) &&
		    (inner = g_mime_message_part_get_message(
		    (GMimeMessagePart *)cur.obj)) != NULL &&
		    g_mime_message_get_mime_part(inner) != NULL)
			node_push(&st, &n, &cap,
			    g_mime_message_get_mime_part(inner), cur.obj, -1);
	}
	free(st);
	free(sc->part_first);
	sc->part_first = NULL;
	return rv;
}

/* walk() under the UTF-8 LC_CTYPE for libarchive, restoring the
 * thread's own locale after. */
static int
walk_locale(struct scan *sc, GMimeMessage *msg, struct walk *w)
{
	locale_t old = (locale_t)0;
	int rv, e;

	if (utf8_locale != (locale_t)0)
		old = uselocale(utf8_locale);
	rv = walk(sc, msg, w);
	e = errno;
	if (utf8_locale != (locale_t)0)
		(void)uselocale(old);
	errno = e;
	return rv;
}

/* ---------------------------------------------------------------- */
/* Entry points                                                      */

struct parsed {
	GMimeMessage *msg;	/* owns, or NULL */
	bool	 crlf;
};

static GMimeParserOptions *
parser_options(void)
{
	static const char *charsets[] = { "utf-8", "iso-8859-1", NULL };
	GMimeParserOptions *o = g_mime_parser_options_new();

	/* Outlook and others put RFC 2047 encoded-words inside quoted
	 * parameters (filename="=?utf-8?B?...?="): loose mode decodes
	 * them, and accepts unquoted 8-bit and other broken forms. */
	g_mime_parser_options_set_parameter_compliance_mode(o,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_rfc2047_compliance_mode(o,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	/* raw 8-bit names: UTF-8 if valid, else Latin-1 */
	g_mime_parser_options_set_fallback_charsets(o, charsets);
	return o;
}

/* Pre-scan, then GMime on the bytes before any cut.  0, or -1. */
static int
parse(int fd, struct scan *sc, struct parsed *p)
{
	GMimeStream *fs;
	GMimeParser *parser;
	GMimeParserOptions *o;
	int64_t cut;
	char what[96] = "";
	char first[512];
	ssize_t n;
	int dfd;
	bool unclosed = false;

	memset(p, 0, sizeof *p);
	if (prescan(fd, &sc->lim, &cut, what, sizeof what, &unclosed) == -1)
		return -1;
	if (cut >= 0)
		limit_set(sc, "%s", what);
	/* GMime ends such a multipart at its parent's boundary or at the
	 * end; clients may not: a broken multipart (RFC 2046 5.1.1) */
	if (unclosed)
		limit_set(sc, "broken multipart: missing end boundary");
	n = pread(fd, first, sizeof first - 1, 0);
	if (n > 0) {
		char *lf = memchr(first, '\n', (size_t)n);

		p->crlf = lf != NULL && lf > first && lf[-1] == '\r';
	}
	if ((dfd = dup(fd)) == -1)
		return -1;
	if (lseek(dfd, 0, SEEK_SET) == -1) {
		close(dfd);
		return -1;
	}
	fs = g_mime_stream_fs_new_with_bounds(dfd, 0, cut);
	parser = g_mime_parser_new_with_stream(fs);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	g_mime_parser_set_persist_stream(parser, TRUE);
	o = parser_options();
	p->msg = g_mime_parser_construct_message(parser, o);
	g_mime_parser_options_free(o);
	g_object_unref(parser);
	g_object_unref(fs);
	return 0;
}

static void
scan_init(struct scan *sc, const struct attach_limits *lim,
    attach_blocked_fn fn, void *ctx, struct attach_result *res)
{
	memset(sc, 0, sizeof *sc);
	limits_get(lim, &sc->lim);
	sc->fn = fn;
	sc->ctx = ctx;
	sc->res = res;
	sc->opts = parser_options();
}

static void
scan_free(struct scan *sc)
{
	g_mime_parser_options_free(sc->opts);
	free(sc);
}

int
attach_scan(int fd, const struct attach_limits *lim, attach_blocked_fn fn,
    void *ctx, struct attach_result *res)
{
	struct scan *sc;
	struct parsed p;
	int rv = 0;

	attach_init();
	memset(res, 0, sizeof *res);
	sc = xmalloc(sizeof *sc);
	scan_init(sc, lim, fn, ctx, res);
	if (parse(fd, sc, &p) == -1)
		rv = -1;
	else if (p.msg != NULL) {
		rv = walk_locale(sc, p.msg, NULL);
		g_object_unref(p.msg);
	}
	scan_free(sc);
	return rv;
}

static GMimeObject *
notice_new(const char *name)
{
	GMimeTextPart *tp;
	GMimeContentEncoding enc;
	char *txt;

	tp = g_mime_text_part_new_with_subtype("plain");
	txt = xasprintf("The attachment %s was removed by the mail filter "
	    "portcullis: files of this type are not accepted.\n", name);
	g_mime_text_part_set_text(tp, txt);
	free(txt);
	/* 7-bit safe whatever the name: quoted-printable if needed */
	enc = g_mime_part_get_best_content_encoding((GMimePart *)tp,
	    GMIME_ENCODING_CONSTRAINT_7BIT);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT)
		enc = GMIME_CONTENT_ENCODING_7BIT;
	g_mime_part_set_content_encoding((GMimePart *)tp, enc);
	return (GMimeObject *)tp;
}

/* Writes obj's content (or with_headers: the whole object) to memory. */
static GByteArray *
write_mem(GMimeObject *obj, bool crlf, bool content_only)
{
	GMimeFormatOptions *fo;
	GMimeStream *ms;
	GByteArray *ba;

	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, crlf ?
	    GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
	ms = g_mime_stream_mem_new();
	/* the byte array is ours, not the stream's */
	g_mime_stream_mem_set_owner((GMimeStreamMem *)ms, FALSE);
	if (content_only)
		(void)g_mime_object_write_content_to_stream(obj, fo, ms);
	else
		(void)g_mime_object_write_to_stream(obj, fo, ms);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)ms);
	g_object_unref(ms);
	g_mime_format_options_free(fo);
	return ba;
}

static void
out_set(struct attach_stripped *out, const guint8 *p, size_t len)
{
	out->body = xmalloc(len + 1);
	memcpy(out->body, p, len);
	out->body[len] = '\0';
	out->len = len;
}

int
attach_strip(int fd, const struct attach_limits *lim, attach_blocked_fn fn,
    void *ctx, struct attach_stripped *out)
{
	struct attach_result res;
	struct scan *sc;
	struct parsed p;
	struct walk w;
	struct hit *h;
	GMimeObject *notice;
	GByteArray *ba;
	const char *cs;
	size_t i, hl;
	int rv = -1;

	attach_init();
	memset(out, 0, sizeof *out);
	memset(&res, 0, sizeof res);
	memset(&w, 0, sizeof w);
	sc = xmalloc(sizeof *sc);
	scan_init(sc, lim, fn, ctx, &res);
	if (parse(fd, sc, &p) == -1)
		goto done;
	if (p.msg == NULL) {
		rv = 0;
		goto done;
	}
	w.crlf = p.crlf;
	if (walk_locale(sc, p.msg, &w) == -1)
		goto done;
	if (res.limits) {
		/* past a limit nothing was inspected: no safe output */
		errno = E2BIG;
		goto done;
	}
	for (i = 0; i < w.nhits; i++) {
		h = &w.hits[i];
		notice = notice_new(h->name);
		if (h->n.parent == NULL) {
			/* the message itself is the blocked part: only the
			 * notice remains, with new top-level fields */
			ba = write_mem(notice, p.crlf, true);
			out_set(out, ba->data, ba->len);
			g_byte_array_free(ba, TRUE);
			cs = g_mime_object_get_content_type_parameter(notice,
			    "charset");
			out->content_type = xasprintf("text/plain; charset=%s",
			    cs != NULL ? cs : "us-ascii");
			out->cte = xstrdup(g_mime_content_encoding_to_string(
			    g_mime_part_get_content_encoding(
			    (GMimePart *)notice)));
			out->removed = 1;
			g_object_unref(notice);
			rv = 0;
			goto done;
		}
		if (GMIME_IS_MULTIPART(h->n.parent))
			g_mime_multipart_replace((GMimeMultipart *)h->n.parent,
			    h->n.index, notice);
		else
			g_mime_message_set_mime_part(
			    g_mime_message_part_get_message(
			    (GMimeMessagePart *)h->n.parent), notice);
		g_object_unref(notice);
		out->removed++;
	}
	rv = 0;
	if (out->removed == 0)
		goto done;
	ba = write_mem((GMimeObject *)p.msg, p.crlf, false);
	/* the body is what follows the first empty line GMime wrote */
	for (hl = 0; hl < ba->len; hl++)
		if (ba->data[hl] == '\n' && hl + 1 < ba->len &&
		    (ba->data[hl + 1] == '\n' || (ba->data[hl + 1] == '\r' &&
		    hl + 2 < ba->len && ba->data[hl + 2] == '\n'))) {
			hl += ba->data[hl + 1] == '\n' ? 2 : 3;
			break;
		}
	out_set(out, ba->data + hl, ba->len - hl);
	g_byte_array_free(ba, TRUE);
done:
	if (rv == -1)
		attach_stripped_free(out);
	for (i = 0; i < w.nhits; i++)
		free(w.hits[i].name);
	free(w.hits);
	if (p.msg != NULL)
		g_object_unref(p.msg);
	attach_result_free(&res);
	scan_free(sc);
	return rv;
}

void
attach_stripped_free(struct attach_stripped *out)
{
	if (out == NULL)
		return;
	free(out->body);
	free(out->content_type);
	free(out->cte);
	memset(out, 0, sizeof *out);
}
