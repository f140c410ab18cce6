/*
 * netopt_test.c - milter/netopt.c: TCP_NODELAY is set on listening TCP
 * sockets (IPv4 and IPv6) and reaches the sockets accept() returns; other
 * sockets (a connected TCP socket, a unix listener) are left alone.
 * Owns: the loopback sockets it opens.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "netopt.h"

static int
nodelay(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l), 0);
	return v;
}

/* a listener on loopback (port chosen by the kernel), -1 without IPv6 */
static int
listener(int family, struct sockaddr_storage *ss, socklen_t *sl)
{
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		*sl = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)ss, *sl) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)ss, sl) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
test_listeners_and_accepted(void **state)
{
	struct sockaddr_storage s4, s6;
	socklen_t l4, l6;
	int fam[2] = { AF_INET, AF_INET6 }, i, n;
	int l[2], c[2] = { -1, -1 }, a[2] = { -1, -1 }, ux;
	struct sockaddr_un su;
	char upath[64];

	(void)state;
	l[0] = listener(AF_INET, &s4, &l4);
	assert_true(l[0] >= 0);
	l[1] = listener(AF_INET6, &s6, &l6);	/* -1: no IPv6 here */
	/* a connected client socket: not a listener, stays as it is */
	c[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c[0], (struct sockaddr *)&s4, l4), 0);
	/* a unix listener: no TCP options to set */
	snprintf(upath, sizeof(upath), "/tmp/netopt_test.%d", (int)getpid());
	unlink(upath);
	ux = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, upath);
	assert_int_equal(bind(ux, (struct sockaddr *)&su, sizeof(su)), 0);
	assert_int_equal(listen(ux, 1), 0);

	assert_int_equal(nodelay(l[0]), 0);
	n = netopt_nodelay_listeners();
	assert_int_equal(n, l[1] >= 0 ? 2 : 1);
	assert_int_not_equal(nodelay(l[0]), 0);
	assert_int_equal(nodelay(c[0]), 0);
	a[0] = accept(l[0], NULL, NULL);
	assert_true(a[0] >= 0);
	close(a[0]);
	close(c[0]);
	for (i = 0; i < 2; i++) {
		struct sockaddr_storage *ss = i == 0 ? &s4 : &s6;
		socklen_t sl = i == 0 ? l4 : l6;

		if (l[i] < 0)
			continue;
		assert_int_not_equal(nodelay(l[i]), 0);
		c[i] = socket(fam[i], SOCK_STREAM, 0);
		assert_int_equal(connect(c[i], (struct sockaddr *)ss, sl), 0);
		a[i] = accept(l[i], NULL, NULL);
		assert_true(a[i] >= 0);
		/* what the fix relies on: accepted sockets inherit it */
		assert_int_not_equal(nodelay(a[i]), 0);
		close(a[i]);
		close(c[i]);
		close(l[i]);
	}
	close(ux);
	unlink(upath);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listeners_and_accepted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
