/* SPDX-License-Identifier: MIT */
/* Errors as values: a negative code plus a message in a caller's struct err. */
#ifndef EDGEIMG_ERR_H
#define EDGEIMG_ERR_H

#include <errno.h>

/* The codes beyond errno (EI_EFORMAT, ...) are the public API's, one list. */
#include "edgeimg.h"

#define ERR_MSG_MAX EI_ERR_MSG_MAX

struct err {
	int code;               /* 0, -errno or an enum ei_error value */
	char msg[ERR_MSG_MAX];  /* "qcow2: cluster_bits 22 is not in 9..21" */
};

/*
 * err_set() - record an error.  Returns @code (negative) so that callers
 * can write "return err_set(e, EI_ECORRUPT, ...)".  @e may be NULL.
 */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* err_errno() - like err_set() with -errnum, appending ": strerror". */
int err_errno(struct err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* err_prefix() - prepend "prefix: " to an existing message. */
void err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* err_name() - a short static text for any code (errno or project). */
const char *err_name(int code);

#endif
