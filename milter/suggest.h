/*
 * suggest.h - "did you mean" for diagnostics: nearest word by edit distance.
 * Owns: nothing.  Words longer than SUGGEST_WORD_MAX are never suggested.
 */
#ifndef PORTCULLIS_SUGGEST_H
#define PORTCULLIS_SUGGEST_H

#define SUGGEST_WORD_MAX 64

/* Returns the word of the NULL-terminated list nearest to word when it is
 * close enough to be a likely typo, else NULL.  Borrows from the list. */
const char *suggest_nearest(const char *word, const char *const *words);

#endif
