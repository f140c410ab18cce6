/*
 * netopt.h - socket options libmilter does not set.
 * Owns: nothing.
 */
#ifndef PORTCULLIS_NETOPT_H
#define PORTCULLIS_NETOPT_H

/*
 * Sets TCP_NODELAY on every listening TCP socket of the process.  Linux
 * copies it to each socket accept() returns, which is the only way to
 * reach the sockets libmilter accepts itself: without it, a reply
 * written in several packets (header changes, then the verdict) waits
 * for the MTA's delayed ACK, ~40 ms per message over TCP.  Returns how
 * many sockets it set, -1 when the descriptors cannot be listed.
 */
int netopt_nodelay_listeners(void);

#endif
