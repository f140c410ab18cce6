/*
 * netopt.c - socket options libmilter does not set.  See netopt.h.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netopt.h"

/* 1: fd is a listening TCP socket */
static int
tcp_listener(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) != 0 || !v)
		return 0;
	l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) != 0 ||
	    (v != AF_INET && v != AF_INET6))
		return 0;
	l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) != 0 ||
	    v != SOCK_STREAM)
		return 0;
	return 1;
}

static int
set_one(int fd)
{
	int one = 1;

	if (!tcp_listener(fd))
		return 0;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == 0 ? 1 : 0;
}

int
netopt_nodelay_listeners(void)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL) {
		/* no /proc: the low descriptors, where a daemon's
		 * listeners are right after startup */
		int fd;

		for (fd = 0; fd < 1024; fd++)
			n += set_one(fd);
		return n;
	}
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end != '\0' || end == e->d_name || fd < 0 ||
		    fd == dirfd(d))
			continue;
		n += set_one((int)fd);
	}
	closedir(d);
	return n;
}
