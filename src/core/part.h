/* SPDX-License-Identifier: MIT */
/*
 * Partition tables (GPT, MBR with extended/logical partitions) and the
 * filesystem found at each partition's start; a partition as a disk.
 */
#ifndef EDGEIMG_PART_H
#define EDGEIMG_PART_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/vdisk.h"

/* Partitions kept from one table: 4 primary and 252 logical, as Linux. */
#define PART_MAX 256
/* A GPT's entries at most, and the most bytes of its entry array. */
#define PART_GPT_MAX_ENTRIES 16384
#define PART_GPT_MAX_ARRAY (4u << 20)
/* EBRs walked at most in an extended partition's chain. */
#define PART_MAX_LOGICAL (PART_MAX - 4)

enum part_kind { PART_NONE, PART_GPT, PART_MBR };

/* A filesystem found at the start of a disk or partition. */
struct part_fs {
	const char *type;       /* "ext4", "vfat", ..., or NULL: unknown */
	char label[72];         /* UTF-8 as stored (may need escaping) */
	char uuid[40];          /* as blkid prints it, or "" */
};

struct part {
	unsigned num;           /* from 1: GPT entry index + 1; MBR 1-4
				   primary, 5.. logical */
	uint64_t start, size;   /* bytes */
	char type[40];          /* GPT type GUID, or MBR id "0x83" */
	const char *type_name;  /* "Linux filesystem", or NULL */
	char uuid[40];          /* GPT unique partition GUID, or "" */
	char name[36 * 6 + 1];  /* GPT name in UTF-8 (code points that are
				   not valid as "\uXXXX": 6 bytes for each of
				   the 36 UTF-16 units at most), or "" */
	int name_ok;            /* the name is valid UTF-16 without control
				   characters: --partition may match it */
	int logical;            /* MBR: a logical partition */
	int extended;           /* MBR: an extended partition (a container) */
	struct part_fs fs;
};

struct part_table {
	enum part_kind kind;
	unsigned sector;        /* 512 or 4096 */
	char disk_guid[40];     /* GPT */
	uint32_t mbr_id;        /* MBR disk identifier */
	int backup_used;        /* GPT: the primary header was bad */
	int read_error;         /* part_read() failed reading the disk (a
				   corrupt container), not on the table */
	char note[320];         /* what info should say (backup used, hybrid
				   MBR disagreeing with the GPT), or "" */
	unsigned n;
	struct part p[PART_MAX];
};

/*
 * part_read() - the partition table of @vd into @t (malloc'd by the
 * caller, about 120 KiB): 0 with t->kind PART_NONE when there is none (a
 * filesystem over the whole disk, no signature), 0 with the partitions in
 * order of number, or an error naming the table, the field and the value
 * (a corrupt or hostile table: overlaps, out of the disk, bad CRCs with
 * no valid backup, loops in the EBR chain).
 */
int part_read(struct vdisk *vd, struct part_table *t, struct err *e);

/* part_probe_fs() - the filesystem at @off of @vd (@len bytes there). */
int part_probe_fs(struct vdisk *vd, uint64_t off, uint64_t len,
		  struct part_fs *fs, struct err *e);

/*
 * part_find() - the partition @spec names: a number from 1, a valid GPT
 * name, or a filesystem label; none or more than one: EI_EUSAGE listing
 * the partitions.  Extended partitions (containers) are never picked.
 */
int part_find(const struct part_table *t, const char *spec,
	      const struct part **out, struct err *e);

/*
 * part_open() - the partition @spec of @parent as a disk (reads and the
 * block map go to @parent: holes stay holes), which takes @parent: on
 * success *@out owns it (vdisk_close(*@out) closes both), on failure
 * @parent is closed.
 */
int part_open(struct vdisk *parent, const char *spec, struct vdisk **out,
	      struct err *e);

/* part_of() - the partition a disk part_open() made is, or NULL. */
const struct part *part_of(const struct vdisk *vd);

/* part_parent() - the disk a part_open() disk is a partition of, or NULL. */
struct vdisk *part_parent(const struct vdisk *vd);

/* part_quoted() - ', KEY "S"' with S escaped for a terminal; nothing for "". */
void part_quoted(FILE *f, const char *key, const char *s);

/* part_text(), part_json() - a table as "info" prints it: text lines, or a JSON value. */
void part_text(const struct part_table *t, FILE *f);
void part_json(const struct part_table *t, FILE *f, int indent);

#endif
