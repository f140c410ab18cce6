/*
 * glue.h - the libmilter side of the daemon (glue.c is the only file that
 * includes libmilter).
 * Owns: libmilter's registration, the counts of open connections and of
 * messages in flight, and the draining flag (atomics).
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
/* Frees what glue_open() kept, after glue_run() returned. */
void glue_close(void);
/* Connections still open. */
int glue_active(void);
/* Messages between MAIL FROM and their end. */
int glue_in_flight(void);
/* Graceful stop, step 1: refuse new connections and messages (tempfail)
 * while those in flight finish.  Step 2 is glue_stop(). */
void glue_drain(void);

#endif
