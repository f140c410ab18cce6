/*
 * suggest.c - nearest known word by Levenshtein distance, for messages.
 * Owns: nothing.  Bounded: words over SUGGEST_WORD_MAX are skipped, so the
 * stack table below stays small.
 */
#include "autoconfig.h"

#include <string.h>

#include "suggest.h"

static unsigned
edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
	unsigned row[SUGGEST_WORD_MAX + 1];
	size_t i, j;

	for (j = 0; j <= bn; j++)
		row[j] = (unsigned)j;
	for (i = 1; i <= an; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (j = 1; j <= bn; j++) {
			unsigned up = row[j];
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[bn];
}

const char *
suggest_nearest(const char *word, const char *const *words)
{
	size_t wn = strlen(word), i;
	const char *best = NULL;
	unsigned best_d = ~0u, limit;

	if (wn == 0 || wn > SUGGEST_WORD_MAX)
		return NULL;
	/* a third of the length, at least one and at most three edits */
	limit = (unsigned)(wn / 3);
	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	for (i = 0; words[i] != NULL; i++) {
		size_t n = strlen(words[i]);
		unsigned d;

		if (n > SUGGEST_WORD_MAX)
			continue;
		d = edit_distance(word, wn, words[i], n);
		if (d < best_d) {
			best_d = d;
			best = words[i];
		}
	}
	return best_d <= limit ? best : NULL;
}
