/*
 * check.h - "portcullis check": the pipeline on one .eml file, without an
 * MTA, printing the verdict as JSON (DESIGN.md section 5).
 */
#ifndef PORTCULLIS_CHECK_H
#define PORTCULLIS_CHECK_H

/* argv[0] is "check".  Exit status: 0 whatever the verdict, 1 when the
 * check could not run, 2 for a usage error. */
int check_main(int argc, char **argv);

#endif
