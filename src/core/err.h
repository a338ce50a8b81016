/* SPDX-License-Identifier: MIT */
/* Errors as values: a negative code plus a message in a caller's struct err. */
#ifndef EDGEIMG_ERR_H
#define EDGEIMG_ERR_H

#include <errno.h>

/*
 * Project error codes beyond errno, one list.  Codes are negative like
 * -errno and start far above any errno value.
 */
#define EI_ERRORS(X)                                                       \
	X(EI_EFORMAT, 1001, "not an image of this format")                  \
	X(EI_ECORRUPT, 1002, "corrupt image")                               \
	X(EI_EUNSUP, 1003, "unsupported feature")                           \
	X(EI_ELIMIT, 1004, "a configured limit is exceeded")               \
	X(EI_EMULTI, 1005, "input matches more than one format")           \
	X(EI_EREF, 1006, "reference to another file refused")              \
	X(EI_EMISMATCH, 1007, "checksum mismatch")                          \
	X(EI_EUSAGE, 1008, "bad usage")                                     \
	X(EI_ETRUNC, 1009, "file is truncated")                             \
	X(EI_ECODEC, 1010, "compressed data is invalid")                    \
	X(EI_ESIG, 1011, "signature or version refused")

enum ei_error {
#define EI_ERR_ENUM(name, num, text) name = -(num),
	EI_ERRORS(EI_ERR_ENUM)
#undef EI_ERR_ENUM
};

#define ERR_MSG_MAX 512

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
