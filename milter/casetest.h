/*
 * casetest.h - "portcullis test": an administrator's policy fixtures,
 * each an envelope, DNS records, a message and the expected verdict
 * (DESIGN.md section 5; file format in portcullis(8)).
 */
#ifndef PORTCULLIS_CASETEST_H
#define PORTCULLIS_CASETEST_H

/* argv[0] is "test".  Exit: 0 all passed, 1 a case failed or could not
 * run, 2 usage. */
int casetest_main(int argc, char **argv);

#endif
