// SPDX-License-Identifier: MIT
/* Error values and their messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_errno(struct err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (errnum <= 0)
		errnum = EIO;
	if (!e)
		return -errnum;
	e->code = -errnum;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errnum));
	return -errnum;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[ERR_MSG_MAX / 2];
	size_t pl, ml;
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	pl = strlen(pre);
	ml = strnlen(e->msg, sizeof(e->msg) - 1);
	if (ml > sizeof(e->msg) - 1 - pl - 2)
		ml = sizeof(e->msg) - 1 - pl - 2;
	memmove(e->msg + pl + 2, e->msg, ml);
	memcpy(e->msg, pre, pl);
	memcpy(e->msg + pl, ": ", 2);
	e->msg[pl + 2 + ml] = 0;
}

const char *err_name(int code)
{
	switch (code) {
#define EI_ERR_CASE(name, num, text) case name: return text;
	EI_ERRORS(EI_ERR_CASE)
#undef EI_ERR_CASE
	}
	return code < 0 ? strerror(-code) : "success";
}
