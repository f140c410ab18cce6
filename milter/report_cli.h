/*
 * report_cli.h - `portcullis report dmarc`: writes the RFC 9990 aggregate
 * reports of a period from the report store (config report_store), one
 * file per Policy Domain, verifies each report's rua= destinations (RFC
 * 9990 section 4) and prints a manifest; optionally a ready-to-send
 * message per report, and the removal of the reported rows.
 * Owns: nothing beyond one call.
 * Errors: "portcullis report: message" on stderr, exit status 1.
 */
#ifndef PORTCULLIS_REPORT_CLI_H
#define PORTCULLIS_REPORT_CLI_H

/* argv[0] is "report".  Returns the exit status (0, 1, or 2 for usage). */
int report_cli_main(int argc, char **argv);

#endif
