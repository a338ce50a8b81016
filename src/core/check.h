/* SPDX-License-Identifier: MIT */
/* What a format's metadata check finds: qemu-img check's counters. */
#ifndef EDGEIMG_CHECK_H
#define EDGEIMG_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Filled by a format's check callback (struct img_format.check), zeroed
 * by the caller except the report hook.  The names and meanings are
 * those of qemu-img check's JSON output; the cluster counts are 0 when a
 * format has no clusters.
 */
struct check_result {
	uint64_t corruptions;   /* metadata that is wrong: data may be lost */
	uint64_t leaks;         /* space referenced by nothing */
	uint64_t check_errors;  /* the check itself could not look somewhere */
	uint64_t image_end_offset;      /* end of the last used cluster */
	uint64_t total_clusters;        /* of the virtual disk */
	uint64_t allocated_clusters;    /* virtual clusters with a host cluster */
	uint64_t fragmented_clusters;   /* not right after the previous one */
	uint64_t compressed_clusters;

	/*
	 * Called once per problem found, with a qemu-img check style line
	 * ("Leaked cluster 5 refcount=2 reference=1"), no newline.  May be
	 * NULL.  A check reports at most CHECK_MAX_REPORTS lines and then
	 * only counts.
	 */
	void (*report)(void *arg, const char *line);
	void *report_arg;
	uint64_t reported;
};

#define CHECK_MAX_REPORTS 1000

/* check_report() - report a problem line through @res->report, if set. */
static inline __attribute__((format(printf, 2, 3)))
void check_report(struct check_result *res, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!res->report || res->reported >= CHECK_MAX_REPORTS)
		return;
	if (++res->reported == CHECK_MAX_REPORTS) {
		res->report(res->report_arg, "(more problems are counted, not listed)");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	res->report(res->report_arg, line);
}

#endif
