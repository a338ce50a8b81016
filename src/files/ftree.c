// SPDX-License-Identifier: MIT
/* The file view: what every source and consumer of a tree shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files/ftree.h"

int ft_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	return s->ops->walk(s, visit, arg, e);
}

void ft_close(struct ft_source *s)
{
	if (s)
		s->ops->close(s);
}

int ft_path_ok(const char *path)
{
	size_t n = strlen(path), c = 0;

	if (n == 0)
		return 1;
	if (n > FT_PATH_MAX || path[0] == '/')
		return 0;
	for (const char *p = path;; p++) {
		if (*p == '/' || !*p) {
			const char *s = p - c;

			if (c == 0 || c > FT_NAME_MAX || (c == 1 && s[0] == '.') ||
			    (c == 2 && s[0] == '.' && s[1] == '.'))
				return 0;
			if (!*p)
				return 1;
			c = 0;
		} else {
			c++;
		}
	}
}

const char *ft_type_name(enum ft_type t)
{
	switch (t) {
	case FT_REG: return "file";
	case FT_DIR: return "directory";
	case FT_SYMLINK: return "symlink";
	case FT_BLK: return "block device";
	case FT_CHR: return "character device";
	case FT_FIFO: return "fifo";
	case FT_SOCK: return "socket";
	}
	return "unknown";
}

void ft_warnf(struct ft_source *s, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	if (!s->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->warn(s->warn_arg, msg);
}
