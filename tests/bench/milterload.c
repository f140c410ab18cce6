/*
 * milterload.c - a milter load generator that speaks the protocol as
 * Postfix does, for measuring a filter's cost per message.
 *
 * Each message is one connection: OPTNEG (offering every action and
 * protocol flag, honouring the steps and no-reply flags the filter
 * negotiates), macros, CONNECT, HELO, MAIL, RCPT, DATA, the headers, EOH,
 * the body in chunks of at most 65535 bytes, EOM (reading the header
 * changes and the final reply), QUIT.  With several -s sockets the
 * message goes through each filter in turn at every step, as Postfix
 * chains milters.
 *
 * Reported: messages per second, latency (connect to final reply) p50
 * and p99, and the CPU time (user + system, from /proc) of the filter's
 * process tree and of the DNS server per message.
 *
 * Message files (one per argument, or listed one a line with -l) hold the
 * message as it would be received, with an optional first line
 * "X-Bench-Client: IP NAME" giving the client (not sent as a header).
 *
 * Build: make bench-tools (or cc -O2 -pthread milterload.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* protocol flags (libmilter mfapi.h / Postfix milter8.c) */
#define P_NOCONNECT	0x1
#define P_NOHELO	0x2
#define P_NOMAIL	0x4
#define P_NORCPT	0x8
#define P_NOBODY	0x10
#define P_NOHDRS	0x20
#define P_NOEOH		0x40
#define P_NR_HDR	0x80
#define P_NOUNKNOWN	0x100
#define P_NODATA	0x200
#define P_SKIP		0x400
#define P_RCPT_REJ	0x800
#define P_NR_CONN	0x1000
#define P_NR_HELO	0x2000
#define P_NR_MAIL	0x4000
#define P_NR_RCPT	0x8000
#define P_NR_DATA	0x10000
#define P_NR_UNKN	0x20000
#define P_NR_EOH	0x40000
#define P_NR_BODY	0x80000
#define P_HDR_LEADSPC	0x100000
#define P_OFFERED	0x1FFFFF
#define A_OFFERED	0x1FF

#define MAXFILTERS	4
#define MAXMSG		(64u << 20)

struct msg {
	char *path;
	char *client_ip, *client_name;
	char *data;		/* whole file */
	size_t len;
	size_t hdr_end;		/* offset of the body */
};

struct filt {
	int fd;
	uint32_t proto;
	int done;		/* gave a final verdict, takes no more steps */
	char verdict;
};

static const char *sockspec[MAXFILTERS];
static int nsock;
static struct msg *msgs;
static size_t nmsgs;
static size_t total;		/* messages to send */
static atomic_size_t next_msg;
static double *lat;		/* per message, ms */
static atomic_size_t nfail;
static atomic_size_t verdicts[256];
static atomic_size_t hdrs_added;
static const char *rcpt = "<bob@corp.test>";
static int verbose, show_headers;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "milterload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ /proc CPU */

static long clk_tck;

/* utime+stime (+cutime+cstime) of one pid in ticks, -1 when gone */
static long long
pid_ticks(int pid, int *ppid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;
	long long v[17];
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p += 2;			/* state */
	p++;
	for (i = 0; i < 17; i++)
		v[i] = strtoll(p, &p, 10);
	/* after state: ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime */
	if (ppid != NULL)
		*ppid = (int)v[0];
	return v[10] + v[11] + v[12] + v[13];
}

struct tree {
	int pid[512];
	long long t[512];
	int n;
};

/* the roots and every process descending from them */
static void
tree_snap(const int *roots, int nroots, struct tree *tr)
{
	DIR *d;
	struct dirent *e;
	int all[4096], par[4096], nall = 0, i, changed;

	tr->n = 0;
	for (i = 0; i < nroots; i++) {
		tr->pid[tr->n] = roots[i];
		tr->t[tr->n++] = pid_ticks(roots[i], NULL);
	}
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((e = readdir(d)) != NULL && nall < 4096) {
		int pid = atoi(e->d_name), pp;

		if (pid <= 0 || pid_ticks(pid, &pp) < 0)
			continue;
		all[nall] = pid;
		par[nall++] = pp;
	}
	closedir(d);
	do {
		changed = 0;
		for (i = 0; i < nall; i++) {
			int j, in = 0, pin = 0;

			for (j = 0; j < tr->n; j++) {
				if (tr->pid[j] == all[i])
					in = 1;
				if (tr->pid[j] == par[i])
					pin = 1;
			}
			if (!in && pin && tr->n < 512) {
				tr->pid[tr->n] = all[i];
				tr->t[tr->n++] = pid_ticks(all[i], NULL);
				changed = 1;
			}
		}
	} while (changed);
}

/* ticks used between two snapshots: processes in both, plus new ones
 * whole (a process that vanished is counted in its parent's c-times) */
static long long
tree_delta(const struct tree *a, const struct tree *b)
{
	long long sum = 0;
	int i, j;

	for (j = 0; j < b->n; j++) {
		long long before = 0;

		if (b->t[j] < 0)
			continue;
		for (i = 0; i < a->n; i++)
			if (a->pid[i] == b->pid[j] && a->t[i] >= 0)
				before = a->t[i];
		sum += b->t[j] - before;
	}
	return sum;
}

/* ------------------------------------------------------------ protocol */

/* All of len bytes written (writing) or read, retrying short transfers
 * and EINTR; -1 on an error or end of file. */
static int
xfer_all(int fd, void *buf, size_t len, bool writing)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
wr_all(int fd, const void *buf, size_t len)
{
	return xfer_all(fd, (void *)(uintptr_t)buf, len, true);
}

static int
rd_all(int fd, void *buf, size_t len)
{
	return xfer_all(fd, buf, len, false);
}

/* one packet: command and data in a single write, as Postfix does */
static int
send_cmd(int fd, char cmd, const void *data, size_t len)
{
	char stackbuf[8192], *buf = stackbuf;
	uint32_t n = htonl((uint32_t)len + 1);
	int rc;

	if (len + 5 > sizeof(stackbuf) && (buf = malloc(len + 5)) == NULL)
		return -1;
	memcpy(buf, &n, 4);
	buf[4] = cmd;
	if (len > 0)
		memcpy(buf + 5, data, len);
	rc = wr_all(fd, buf, len + 5);
	if (buf != stackbuf)
		free(buf);
	return rc;
}

/* reads one reply packet: its command, data in *buf (malloc'd, NUL
 * terminated) */
static int
read_reply(int fd, char *cmd, char **buf, size_t *len)
{
	uint32_t n;

	if (rd_all(fd, &n, 4) != 0)
		return -1;
	n = ntohl(n);
	if (n == 0 || n > (1u << 20))
		return -1;
	if (rd_all(fd, cmd, 1) != 0)
		return -1;
	*len = n - 1;
	if ((*buf = malloc(n)) == NULL)
		return -1;
	if (rd_all(fd, *buf, n - 1) != 0) {
		free(*buf);
		return -1;
	}
	(*buf)[n - 1] = '\0';
	return 0;
}

/*
 * Reads replies until a final one for a step: header changes and progress
 * are consumed (counted); returns the verdict character, or 0 on error.
 */
static char
final_reply(int fd)
{
	for (;;) {
		char c, *b;
		size_t l;

		if (read_reply(fd, &c, &b, &l) != 0)
			return 0;
		if (show_headers && (c == 'h' || c == 'i')) {
			const char *nm = c == 'i' && l > 4 ? b + 4 : b;

			fprintf(stderr, "header: %s: %s\n", nm,
			    nm + strlen(nm) + 1 < b + l ? nm + strlen(nm) + 1 :
			    "");
		}
		free(b);
		switch (c) {
		case 'h': case 'i': case 'm': case '+': case '-': case '2':
		case 'e': case 'b': case 'q': case 'p':
			if (c == 'h' || c == 'i')
				atomic_fetch_add(&hdrs_added, 1);
			continue;
		default:
			return c;
		}
	}
}

static int
connect_spec(const char *spec)
{
	int fd;

	if (strncmp(spec, "unix:", 5) == 0 || spec[0] == '/') {
		struct sockaddr_un su;
		const char *p = spec[0] == '/' ? spec : spec + 5;

		memset(&su, 0, sizeof(su));
		su.sun_family = AF_UNIX;
		if (strlen(p) >= sizeof(su.sun_path))
			return -1;
		strcpy(su.sun_path, p);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
		char port[16], host[256];
		const char *p = strchr(spec, ':') + 1, *at = strchr(p, '@');
		struct addrinfo hints, *ai;
		int one = 1;

		if (at == NULL || (size_t)(at - p) >= sizeof(port))
			return -1;
		memcpy(port, p, (size_t)(at - p));
		port[at - p] = '\0';
		snprintf(host, sizeof(host), "%s", at + 1);
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, port, &hints, &ai) != 0)
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		/* Postfix writes whole packets: no Nagle on its side */
		if (fd >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		return fd;
	}
	return -1;
}

/* appends NUL-terminated strings to a buffer */
struct sbuf {
	char b[4096];
	size_t n;
};

static void
sb_str(struct sbuf *s, const char *v)
{
	size_t l = strlen(v) + 1;

	if (s->n + l <= sizeof(s->b)) {
		memcpy(s->b + s->n, v, l);
		s->n += l;
	}
}

static int
send_macros(struct filt *f, char stage, const char *const *kv)
{
	struct sbuf s;

	s.n = 0;
	s.b[s.n++] = stage;
	for (; kv[0] != NULL; kv += 2) {
		sb_str(&s, kv[0]);
		sb_str(&s, kv[1]);
	}
	return send_cmd(f->fd, 'D', s.b, s.n);
}

/*
 * One step to one filter: macros, the command, the reply unless the
 * filter negotiated no reply.  -1 on error; 1 when the filter ended the
 * message (its verdict recorded).
 */
static int
step(struct filt *f, char stage, const char *const *macros, char cmd,
    const void *data, size_t len, uint32_t skipflag, uint32_t nrflag)
{
	char v;

	if (f->done || (f->proto & skipflag))
		return 0;
	if (macros != NULL && send_macros(f, stage, macros) != 0)
		return -1;
	if (send_cmd(f->fd, cmd, data, len) != 0)
		return -1;
	if (nrflag != 0 && (f->proto & nrflag))
		return 0;
	if ((v = final_reply(f->fd)) == 0)
		return -1;
	if (v == 'c')
		return 0;
	if (v == 's' && cmd == 'B')
		return 2;	/* skip the rest of the body */
	f->done = 1;
	f->verdict = v;
	return 1;
}

static int
negotiate(struct filt *f)
{
	uint32_t o[3] = { htonl(6), htonl(A_OFFERED), htonl(P_OFFERED) };
	char c, *b;
	size_t l;

	if (send_cmd(f->fd, 'O', o, sizeof(o)) != 0)
		return -1;
	if (read_reply(f->fd, &c, &b, &l) != 0)
		return -1;
	if (c != 'O' || l < 12) {
		free(b);
		return -1;
	}
	memcpy(o, b, sizeof(o));
	f->proto = ntohl(o[2]);
	free(b);
	return 0;
}

static int
run_message(const struct msg *m, unsigned long seq)
{
	struct filt f[MAXFILTERS];
	char qid[32], buf[1024], from[512];
	const char *p, *end;
	size_t i, l;
	int k, rc = -1, alldone;
	const char *mconn[] = { "j", "mx.corp.test", "_", "client",
	    "{daemon_name}", "bench", "{client_addr}", m->client_ip,
	    "{client_name}", m->client_name, NULL };
	const char *mhelo[] = { NULL };
	const char *mmail[] = { "i", qid, "{mail_addr}", from, NULL };
	const char *mrcpt[] = { "i", qid, "{rcpt_addr}", "bob@corp.test",
	    NULL };
	const char *mi[] = { "i", qid, NULL };

	snprintf(qid, sizeof(qid), "B%08lX", seq);
	memset(f, 0, sizeof(f));
	for (k = 0; k < nsock; k++)
		f[k].fd = -1;
	for (k = 0; k < nsock; k++) {
		struct timeval tv = { 60, 0 };

		if ((f[k].fd = connect_spec(sockspec[k])) < 0)
			goto out;
		setsockopt(f[k].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (negotiate(&f[k]) != 0)
			goto out;
	}
	/* envelope sender: From: address in the headers, else a default */
	snprintf(from, sizeof(from), "alice@ext.test");
	for (p = m->data; p < m->data + m->hdr_end;) {
		const char *eol = memchr(p, '\n', (size_t)(m->data +
		    m->hdr_end - p));

		if (eol == NULL)
			break;
		if (strncasecmp(p, "From:", 5) == 0) {
			const char *lt = memchr(p, '<', (size_t)(eol - p));
			const char *gt = lt ? memchr(lt, '>',
			    (size_t)(eol - lt)) : NULL;

			if (lt && gt && (size_t)(gt - lt) < sizeof(from)) {
				memcpy(from, lt + 1, (size_t)(gt - lt - 1));
				from[gt - lt - 1] = '\0';
			}
		}
		p = eol + 1;
	}
	mmail[3] = from;

	for (k = 0; k < nsock; k++) {
		char cb[600];
		uint16_t port = htons(40000 + (uint16_t)(seq % 20000));
		int n = snprintf(cb, sizeof(cb), "%s", m->client_name);
		int is6 = strchr(m->client_ip, ':') != NULL;

		cb[n++] = '\0';
		cb[n++] = is6 ? '6' : '4';
		memcpy(cb + n, &port, 2);
		n += 2;
		n += snprintf(cb + n, sizeof(cb) - (size_t)n, "%s",
		    m->client_ip) + 1;
		if (step(&f[k], 'C', mconn, 'C', cb, (size_t)n, P_NOCONNECT,
		    P_NR_CONN) < 0)
			goto out;
	}
	for (k = 0; k < nsock; k++) {
		l = (size_t)snprintf(buf, sizeof(buf), "%s", m->client_name) + 1;
		if (step(&f[k], 'H', mhelo, 'H', buf, l, P_NOHELO,
		    P_NR_HELO) < 0)
			goto out;
	}
	for (k = 0; k < nsock; k++) {
		l = (size_t)snprintf(buf, sizeof(buf), "<%s>", from) + 1;
		if (step(&f[k], 'M', mmail, 'M', buf, l, P_NOMAIL,
		    P_NR_MAIL) < 0)
			goto out;
	}
	for (k = 0; k < nsock; k++) {
		l = (size_t)snprintf(buf, sizeof(buf), "%s", rcpt) + 1;
		if (step(&f[k], 'R', mrcpt, 'R', buf, l, P_NORCPT,
		    P_NR_RCPT) < 0)
			goto out;
	}
	for (k = 0; k < nsock; k++)
		if (step(&f[k], 'T', mi, 'T', NULL, 0, P_NODATA,
		    P_NR_DATA) < 0)
			goto out;
	/* headers: name and value (folding kept, leading space dropped) */
	end = m->data + m->hdr_end;
	for (p = m->data; p < end;) {
		const char *s = p, *colon, *e;
		char *hb;
		size_t nl, vl;

		/* a header ends at a line break not followed by WSP */
		for (e = p; e < end; e++)
			if (*e == '\n' && (e + 1 >= end || (e[1] != ' ' &&
			    e[1] != '\t')))
				break;
		p = e + 1;
		if (e > s && e[-1] == '\r')
			e--;
		if (e == s)
			break;		/* the empty line */
		if ((colon = memchr(s, ':', (size_t)(e - s))) == NULL)
			continue;
		nl = (size_t)(colon - s);
		colon++;
		for (k = 0; k < nsock; k++) {
			const char *v = colon;

			if (!(f[k].proto & P_HDR_LEADSPC) && v < e && *v == ' ')
				v++;
			vl = (size_t)(e - v);
			if ((hb = malloc(nl + vl + 2)) == NULL)
				goto out;
			memcpy(hb, s, nl);
			hb[nl] = '\0';
			memcpy(hb + nl + 1, v, vl);
			hb[nl + 1 + vl] = '\0';
			/* no macros with headers, as Postfix */
			i = (size_t)step(&f[k], 'L', NULL, 'L', hb, nl + vl + 2,
			    P_NOHDRS, P_NR_HDR);
			free(hb);
			if ((int)i < 0)
				goto out;
		}
	}
	for (k = 0; k < nsock; k++)
		if (step(&f[k], 'N', mi, 'N', NULL, 0, P_NOEOH, P_NR_EOH) < 0)
			goto out;
	for (k = 0; k < nsock; k++) {
		size_t off = m->hdr_end;

		while (off < m->len) {
			size_t n = m->len - off;
			int r;

			if (n > 65535)
				n = 65535;
			r = step(&f[k], 'B', NULL, 'B', m->data + off, n,
			    P_NOBODY, P_NR_BODY);
			if (r < 0)
				goto out;
			if (r > 0)
				break;
			off += n;
		}
	}
	alldone = 1;
	for (k = 0; k < nsock; k++) {
		char v;

		if (f[k].done)
			continue;
		alldone = 0;
		if (send_macros(&f[k], 'E', mi) != 0 ||
		    send_cmd(f[k].fd, 'E', NULL, 0) != 0)
			goto out;
		if ((v = final_reply(f[k].fd)) == 0)
			goto out;
		f[k].verdict = v;
	}
	(void)alldone;
	for (k = 0; k < nsock; k++)
		atomic_fetch_add(&verdicts[(unsigned char)f[k].verdict], 1);
	rc = 0;
out:
	for (k = 0; k < nsock; k++)
		if (f[k].fd >= 0) {
			if (rc == 0)
				send_cmd(f[k].fd, 'Q', NULL, 0);
			close(f[k].fd);
		}
	if (rc != 0 && verbose)
		fprintf(stderr, "milterload: %s failed (%s)\n", m->path,
		    strerror(errno));
	return rc;
}

static void *
worker(void *arg)
{
	(void)arg;
	for (;;) {
		size_t i = atomic_fetch_add(&next_msg, 1);
		double t0;

		if (i >= total)
			break;
		t0 = now_ms();
		if (run_message(&msgs[i % nmsgs], (unsigned long)i) != 0) {
			atomic_fetch_add(&nfail, 1);
			lat[i] = -1;
		} else
			lat[i] = now_ms() - t0;
	}
	return NULL;
}

/* ------------------------------------------------------------ corpus */

static void
load_msg(const char *path, struct msg *m)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *p;

	if (f == NULL || fstat(fileno(f), &st) != 0)
		die("%s: %s", path, strerror(errno));
	if ((size_t)st.st_size > MAXMSG)
		die("%s: too big", path);
	memset(m, 0, sizeof(*m));
	m->path = strdup(path);
	m->data = malloc((size_t)st.st_size + 1);
	if (m->data == NULL || fread(m->data, 1, (size_t)st.st_size, f) !=
	    (size_t)st.st_size)
		die("%s: read error", path);
	fclose(f);
	m->len = (size_t)st.st_size;
	m->data[m->len] = '\0';
	m->client_ip = "192.0.2.1";
	m->client_name = "c1.clients.bench";
	if (strncmp(m->data, "X-Bench-Client: ", 16) == 0) {
		char *eol = strchr(m->data, '\n'), *sp;
		char *line = strndup(m->data + 16, (size_t)(eol - m->data - 16));

		line[strcspn(line, "\r")] = '\0';
		if ((sp = strchr(line, ' ')) != NULL) {
			*sp = '\0';
			m->client_name = sp + 1;
		}
		m->client_ip = line;
		memmove(m->data, eol + 1, m->len - (size_t)(eol + 1 - m->data));
		m->len -= (size_t)(eol + 1 - m->data);
		m->data[m->len] = '\0';
	}
	p = strstr(m->data, "\r\n\r\n");
	if (p != NULL)
		m->hdr_end = (size_t)(p - m->data) + 4;
	else if ((p = strstr(m->data, "\n\n")) != NULL)
		m->hdr_end = (size_t)(p - m->data) + 2;
	else
		m->hdr_end = m->len;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr,
"usage: milterload -s SOCKET [-s SOCKET2 ...] [-c CONC] [-n COUNT] [-w]\n"
"       [-p FILTERPID ...] [-d DNSPID] [-r RCPT] [-v] [-H] [-l LISTFILE] MSG...\n"
"  SOCKET: unix:/path, inet:PORT@HOST, inet6:PORT@HOST (several: chained)\n"
"  -n: messages to send (default: each file once), -w: warm-up pass first\n"
"  -v: report failed messages, -H: print the header changes (stderr)\n"
"  -p: filter pid (with its descendants; repeatable), -d: DNS server pid\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int conc = 8, warm = 0, c, fpids[MAXFILTERS * 2], nfp = 0, dnspid = 0;
	size_t cap = 0, i, ok;
	pthread_t *th;
	struct tree a, b, da, db;
	double t0, t1, *sorted;
	long long fticks, dticks;
	char line[4096];

	clk_tck = sysconf(_SC_CLK_TCK);
	while ((c = getopt(argc, argv, "s:c:n:wp:d:r:vHl:")) != -1) {
		switch (c) {
		case 's':
			if (nsock == MAXFILTERS)
				usage();
			sockspec[nsock++] = optarg;
			break;
		case 'c': conc = atoi(optarg); break;
		case 'n': total = (size_t)strtoul(optarg, NULL, 10); break;
		case 'w': warm = 1; break;
		case 'p':
			if (nfp == MAXFILTERS * 2)
				usage();
			fpids[nfp++] = atoi(optarg);
			break;
		case 'd': dnspid = atoi(optarg); break;
		case 'r': rcpt = optarg; break;
		case 'v': verbose = 1; break;
		case 'H': show_headers = 1; break;
		case 'l': {
			FILE *lf = fopen(optarg, "r");

			if (lf == NULL)
				die("%s: %s", optarg, strerror(errno));
			while (fgets(line, sizeof(line), lf) != NULL) {
				line[strcspn(line, "\r\n")] = '\0';
				if (line[0] == '\0')
					continue;
				if (nmsgs == cap) {
					cap = cap ? cap * 2 : 256;
					msgs = realloc(msgs, cap * sizeof(*msgs));
				}
				load_msg(line, &msgs[nmsgs++]);
			}
			fclose(lf);
			break;
		}
		default: usage();
		}
	}
	if (nsock == 0 || conc < 1)
		usage();
	for (; optind < argc; optind++) {
		if (nmsgs == cap) {
			cap = cap ? cap * 2 : 256;
			msgs = realloc(msgs, cap * sizeof(*msgs));
		}
		load_msg(argv[optind], &msgs[nmsgs++]);
	}
	if (nmsgs == 0)
		usage();
	if (total == 0)
		total = nmsgs;
	th = calloc((size_t)conc, sizeof(*th));
	lat = calloc(total > nmsgs ? total : nmsgs, sizeof(*lat));
	if (th == NULL || lat == NULL)
		die("out of memory");

	if (warm) {
		size_t saved = total;

		total = nmsgs;
		atomic_store(&next_msg, 0);
		for (c = 0; c < conc; c++)
			pthread_create(&th[c], NULL, worker, NULL);
		for (c = 0; c < conc; c++)
			pthread_join(th[c], NULL);
		total = saved;
		atomic_store(&nfail, 0);
		for (i = 0; i < 256; i++)
			atomic_store(&verdicts[i], 0);
		atomic_store(&hdrs_added, 0);
	}

	atomic_store(&next_msg, 0);
	tree_snap(fpids, nfp, &a);
	tree_snap(&dnspid, dnspid ? 1 : 0, &da);
	t0 = now_ms();
	for (c = 0; c < conc; c++)
		pthread_create(&th[c], NULL, worker, NULL);
	for (c = 0; c < conc; c++)
		pthread_join(th[c], NULL);
	t1 = now_ms();
	tree_snap(fpids, nfp, &b);
	tree_snap(&dnspid, dnspid ? 1 : 0, &db);
	fticks = tree_delta(&a, &b);
	dticks = tree_delta(&da, &db);

	sorted = malloc(total * sizeof(*sorted));
	for (i = ok = 0; i < total; i++)
		if (lat[i] >= 0)
			sorted[ok++] = lat[i];
	qsort(sorted, ok, sizeof(*sorted), cmp_d);
	printf("messages %zu failed %zu concurrency %d seconds %.3f\n", total,
	    (size_t)atomic_load(&nfail), conc, (t1 - t0) / 1e3);
	printf("msg_per_s %.1f\n", (double)ok / ((t1 - t0) / 1e3));
	if (ok > 0) {
		size_t p99 = (size_t)((double)ok * 0.99);

		if (p99 >= ok)
			p99 = ok - 1;
		printf("p50_ms %.3f\np99_ms %.3f\n", sorted[ok / 2],
		    sorted[p99]);
	}
	if (nfp > 0)
		printf("filter_cpu_us_per_msg %.0f\n", (double)fticks * 1e6 /
		    (double)clk_tck / (double)(ok ? ok : 1));
	if (dnspid > 0)
		printf("dns_cpu_us_per_msg %.0f\n", (double)dticks * 1e6 /
		    (double)clk_tck / (double)(ok ? ok : 1));
	printf("verdicts");
	for (i = 0; i < 256; i++)
		if (atomic_load(&verdicts[i]) > 0)
			printf(" %c=%zu", (int)i, (size_t)atomic_load(
			    &verdicts[i]));
	printf("\nheaders_added %zu\n", (size_t)atomic_load(&hdrs_added));
	free(sorted);
	return atomic_load(&nfail) > 0 ? 1 : 0;
}
