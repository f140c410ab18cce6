/*
 * greylist_cli.h - `portcullis greylist`: list, allow, delete, stats and
 * sweep the greylist store named by greylist_store (DESIGN.md section 5).
 * Owns: nothing beyond one call.
 * Errors: "portcullis greylist: message" on stderr, exit status 1.
 */
#ifndef PORTCULLIS_GREYLIST_CLI_H
#define PORTCULLIS_GREYLIST_CLI_H

#include <stdint.h>

/* argv[0] is "greylist".  Returns the exit status (0 or 1). */
int greylist_cli_main(int argc, char **argv);
/* The same at the time `now` (seconds) instead of the clock's: tests. */
int greylist_cli_main_at(int argc, char **argv, uint64_t now);

#endif
