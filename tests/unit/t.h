/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: CHECK() counts, t_done() prints the tally. */
#ifndef EDGEIMG_T_H
#define EDGEIMG_T_H

#include <stdio.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (cond) {                                                \
			t_pass++;                                          \
		} else {                                           \
			t_fail++;                                          \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                               \
			printf("\n");                                      \
		}                                                          \
	} while (0)

static inline int t_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
