/*
 * glue.h - the libmilter side of the daemon (glue.c is the only file that
 * includes libmilter).
 * Owns: libmilter's registration and the count of open connections.
 */
#ifndef PORTCULLIS_GLUE_H
#define PORTCULLIS_GLUE_H

/* Registers the filter and opens the socket (before privileges drop).
 * 0 or -1 (logged). */
int glue_open(const char *socket_spec);
/* Runs libmilter's main loop until glue_stop(); returns its status. */
int glue_run(void);
/* Stops accepting connections (from the signal thread). */
void glue_stop(void);
/* Connections (and so messages) still open. */
int glue_active(void);

#endif
