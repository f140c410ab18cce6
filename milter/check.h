/*
 * check.h - "portcullis check": the pipeline on one .eml file, without an
 * MTA, printing the verdict as JSON (DESIGN.md section 5).
 */
#ifndef PORTCULLIS_CHECK_H
#define PORTCULLIS_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

struct snapshot;

/* A recipient and the answer it got at RCPT (decided: refused). */
struct check_rcpt {
	const char *rcpt;	/* borrows */
	struct verdict v;	/* owns; clear with verdict_clear() */
};

/* One message and its envelope; every pointer borrows. */
struct check_msg {
	const char *ip;
	const char *helo;	/* NULL: "[ip]" */
	const char *from;
	const char *auth;	/* NULL: not authenticated */
	struct check_rcpt *rcpts;
	size_t nrcpt;
	const char *msg;	/* the .eml, header and body */
	size_t len;
	bool trace;
};

/*
 * Runs the message through the core with snapshot s, which must be the
 * published one (the core re-pins it at MAIL).  Fills *v (the caller
 * clears it) and each recipient's answer; returns the JSON object of
 * DESIGN.md section 5 as a malloc'ed line.
 */
char *check_message(struct snapshot *s, const struct check_msg *m,
    struct verdict *v);

/* Reads a whole file ("-": standard input), at most 256 MiB.  NULL and
 * errno on failure. */
char *check_read_file(const char *path, size_t *len);

/* argv[0] is "check".  Exit status: 0 whatever the verdict, 1 when the
 * check could not run, 2 for a usage error. */
int check_main(int argc, char **argv);

#endif
