// SPDX-License-Identifier: MIT
/*
 * Partition tables: GPT (UEFI 2.10, chapter 5: primary header at LBA 1,
 * backup at the last LBA, CRC32 of the header and of the entry array;
 * 512- and 4096-byte sectors), MBR with extended/logical partitions (EBR
 * chains, numbered as Linux does: 1-4 primary, 5.. logical), and the
 * filesystem at a partition's start (its superblock's magic, label and
 * UUID, as blkid reports them).  Own code: no library reads these with
 * hostile-input care; every count and offset is checked before use.
 * A partition of a disk is a disk: part_open() maps it onto its parent.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/info.h"
#include "core/part.h"

/* --- names of common partition types ------------------------------------- */

static const struct { const char *guid, *name; } gpt_types[] = {
	{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
	{ "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
	{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
	{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)" },
	{ "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (ARM64)" },
	{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
	{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM" },
	{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
};

static const struct { uint8_t id; const char *name; } mbr_types[] = {
	{ 0x83, "Linux" }, { 0x82, "Linux swap" }, { 0x0c, "W95 FAT32 (LBA)" },
	{ 0x0b, "W95 FAT32" }, { 0x07, "HPFS/NTFS/exFAT" },
	{ 0xef, "EFI (FAT-12/16/32)" }, { 0x05, "Extended" },
	{ 0x0f, "W95 Ext'd (LBA)" }, { 0x85, "Linux extended" },
	{ 0x8e, "Linux LVM" }, { 0xee, "GPT" },
};

static int mbr_is_extended(uint8_t t)
{
	return t == 0x05 || t == 0x0f || t == 0x85;
}

/* A GUID as text: the first three fields little-endian, as GPT stores it. */
static void guid_str(const uint8_t *g, char *out, size_t len)
{
	snprintf(out, len, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 get_le32(g), get_le16(g + 4), get_le16(g + 6), g[8], g[9],
		 g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* A UUID as blkid prints one stored in byte order (ext, swap, erofs). */
static void uuid_str(const uint8_t *u, char *out, size_t len)
{
	if (buf_is_zero(u, 16)) {
		out[0] = 0;
		return;
	}
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* A label of at most @n bytes, ended by NUL (or trailing spaces for FAT). */
static void label_copy(char *out, size_t len, const uint8_t *p, size_t n, int trim)
{
	size_t k = 0;

	while (k < n && p[k])
		k++;
	while (trim && k && p[k - 1] == ' ')
		k--;
	if (k >= len)
		k = len - 1;
	memcpy(out, p, k);
	out[k] = 0;
}

/* --- filesystems --------------------------------------------------------- */

#define FS_HEAD 4096

int part_probe_fs(struct vdisk *vd, uint64_t off, uint64_t len,
		  struct part_fs *fs, struct err *e)
{
	static const unsigned pages[] = { 4096, 8192, 16384, 65536 };
	uint8_t b[FS_HEAD];
	size_t n = (size_t)min_u64(len, FS_HEAD);
	int r;

	memset(fs, 0, sizeof(*fs));
	if (n < 512)
		return 0;
	r = vdisk_read(vd, b, n, off, e);
	if (r < 0)
		return r;
	if (n >= 2048 && get_le16(b + 1024 + 56) == 0xef53) {
		const uint8_t *sb = b + 1024;
		uint32_t compat = get_le32(sb + 92), incompat = get_le32(sb + 96);
		uint32_t ro = get_le32(sb + 100);

		/* blkid's rule: features ext3 lacks make it ext4 */
		if ((incompat & ~(0x0002u | 0x0004u | 0x0010u)) ||
		    (ro & ~(0x0001u | 0x0002u | 0x0004u)))
			fs->type = "ext4";
		else if (compat & 0x0004)
			fs->type = "ext3";
		else
			fs->type = "ext2";
		label_copy(fs->label, sizeof(fs->label), sb + 120, 16, 0);
		uuid_str(sb + 104, fs->uuid, sizeof(fs->uuid));
		return 0;
	}
	if (n >= 2048 && get_le32(b + 1024) == 0xe0f5e1e2) {
		fs->type = "erofs";
		label_copy(fs->label, sizeof(fs->label), b + 1024 + 64, 16, 0);
		uuid_str(b + 1024 + 48, fs->uuid, sizeof(fs->uuid));
		return 0;
	}
	if (!memcmp(b, "hsqs", 4)) {
		fs->type = "squashfs";
		return 0;
	}
	if (get_le16(b + 510) == 0xaa55 && b[0] != 0 &&
	    is_pow2(get_le16(b + 11)) && get_le16(b + 11) >= 512 &&
	    get_le16(b + 11) <= 4096 && is_pow2(b[13]) && get_le16(b + 14) &&
	    (b[16] == 1 || b[16] == 2) &&
	    (!memcmp(b + 54, "FAT", 3) || !memcmp(b + 82, "FAT32", 5))) {
		/* FAT32's extended BPB is at 64, FAT12/16's at 36 */
		const uint8_t *x = !memcmp(b + 82, "FAT32", 5) ? b + 64 : b + 36;

		fs->type = "vfat";
		if (x[2] == 0x29) {
			uint32_t id = get_le32(x + 3);

			snprintf(fs->uuid, sizeof(fs->uuid), "%04X-%04X", id >> 16,
				 id & 0xffff);
			label_copy(fs->label, sizeof(fs->label), x + 7, 11, 1);
			if (!strcmp(fs->label, "NO NAME"))
				fs->label[0] = 0;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		uint8_t sig[10];

		if (pages[i] > len)
			break;
		if (pages[i] <= n)
			memcpy(sig, b + pages[i] - 10, 10);
		else if ((r = vdisk_read(vd, sig, 10, off + pages[i] - 10, e)) < 0)
			return r;
		if (!memcmp(sig, "SWAPSPACE2", 10)) {
			fs->type = "swap";
			label_copy(fs->label, sizeof(fs->label), b + 1024 + 28, 16, 0);
			uuid_str(b + 1024 + 12, fs->uuid, sizeof(fs->uuid));
			return 0;
		}
	}
	return 0;
}

/* --- GPT ----------------------------------------------------------------- */

/* vdisk_read(), counting a failure in *@rerr: the disk, not the table, is bad. */
static int part_io(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		   int *rerr, struct err *e)
{
	int r = vdisk_read(vd, buf, len, off, e);

	if (r < 0)
		*rerr = 1;
	return r;
}

struct gpt_hdr {
	uint64_t my_lba, alt_lba, first, last, array_lba;
	uint32_t entries, entry_size, array_crc;
	uint8_t disk_guid[16];
};

/* The 36 UTF-16LE code units of a GPT name as UTF-8; 0: not valid. */
static int gpt_name(const uint8_t *p, char *out, size_t len)
{
	size_t k = 0;
	int ok = 1;

	for (unsigned i = 0; i < 36; i++) {
		uint32_t c = get_le16(p + 2 * i);

		if (!c)
			break;
		if (c >= 0xd800 && c <= 0xdbff && i + 1 < 36 &&
		    get_le16(p + 2 * i + 2) >= 0xdc00 && get_le16(p + 2 * i + 2) <= 0xdfff) {
			c = 0x10000 + ((c - 0xd800) << 10) + (get_le16(p + 2 * i + 2) - 0xdc00);
			i++;
		} else if (c >= 0xd800 && c <= 0xdfff) {
			/* an unpaired surrogate: shown, never matched */
			if (len - k < 7)
				break;
			k += (size_t)snprintf(out + k, len - k, "\\u%04X", c);
			ok = 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
			ok = 0;
		if (len - k < 5)
			break;
		k += utf8_put(out + k, c);
	}
	out[k] = 0;
	return ok;
}

/*
 * The GPT header at @lba of @vd with @ss-byte sectors, checked field by
 * field: its CRC, where it says it is, the usable range and the entry
 * array inside the disk, the array's size within the caps.
 */
static int gpt_header(struct vdisk *vd, unsigned ss, uint64_t lba,
		      const char *which, struct gpt_hdr *h, int *rerr, struct err *e)
{
	uint64_t sectors = vd->size / ss, array_len, array_secs;
	uint8_t b[4096];
	uint32_t hsize, crc;
	int r;

	r = part_io(vd, b, ss, lba * ss, rerr, e);
	if (r < 0)
		return r;
	if (memcmp(b, "EFI PART", 8))
		return err_set(e, EI_EFORMAT, "gpt: no %s header signature at LBA %llu",
			       which, (unsigned long long)lba);
	hsize = get_le32(b + 12);
	if (hsize < 92 || hsize > ss)
		return err_set(e, EI_ECORRUPT, "gpt: %s header size %u is not 92..%u",
			       which, hsize, ss);
	crc = get_le32(b + 16);
	put_le32(b + 16, 0);
	if ((uint32_t)crc32(0, b, hsize) != crc)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header CRC32 0x%08x does not match its bytes (0x%08x)",
			       which, crc, (uint32_t)crc32(0, b, hsize));
	h->my_lba = get_le64(b + 24);
	h->alt_lba = get_le64(b + 32);
	h->first = get_le64(b + 40);
	h->last = get_le64(b + 48);
	memcpy(h->disk_guid, b + 56, 16);
	h->array_lba = get_le64(b + 72);
	h->entries = get_le32(b + 80);
	h->entry_size = get_le32(b + 84);
	h->array_crc = get_le32(b + 88);
	if (h->my_lba != lba)
		return err_set(e, EI_ECORRUPT, "gpt: %s header's own LBA %llu is not %llu",
			       which, (unsigned long long)h->my_lba, (unsigned long long)lba);
	if (h->first > h->last || h->last >= sectors)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header's usable LBAs %llu..%llu are not inside the disk's %llu sectors",
			       which, (unsigned long long)h->first,
			       (unsigned long long)h->last, (unsigned long long)sectors);
	if (h->entry_size < 128 || h->entry_size % 128 || h->entry_size > 4096)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header's entry size %u is not a multiple of 128 from 128 to 4096",
			       which, h->entry_size);
	if (!h->entries || h->entries > PART_GPT_MAX_ENTRIES)
		return err_set(e, EI_ECORRUPT, "gpt: %s header's number of entries %u is not 1..%u",
			       which, h->entries, PART_GPT_MAX_ENTRIES);
	array_len = (uint64_t)h->entries * h->entry_size;
	if (array_len > PART_GPT_MAX_ARRAY)
		return err_set(e, EI_ELIMIT,
			       "gpt: %s header's entry array of %u x %u bytes exceeds the limit of %u",
			       which, h->entries, h->entry_size, PART_GPT_MAX_ARRAY);
	array_secs = (array_len + ss - 1) / ss;
	if (h->array_lba < 2 || h->array_lba >= sectors ||
	    sectors - h->array_lba < array_secs)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header's entry array at LBA %llu (%llu sectors) is past the disk's %llu sectors",
			       which, (unsigned long long)h->array_lba,
			       (unsigned long long)array_secs, (unsigned long long)sectors);
	if (h->array_lba <= h->last && h->array_lba + array_secs > h->first)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header's entry array at LBA %llu..%llu overlaps the usable LBAs %llu..%llu",
			       which, (unsigned long long)h->array_lba,
			       (unsigned long long)(h->array_lba + array_secs - 1),
			       (unsigned long long)h->first, (unsigned long long)h->last);
	if (lba >= h->first && lba <= h->last)
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s header at LBA %llu lies in the usable LBAs %llu..%llu",
			       which, (unsigned long long)lba, (unsigned long long)h->first,
			       (unsigned long long)h->last);
	return 0;
}

/* The entry array of @h, read and its CRC32 checked: *@out is malloc'd. */
static int gpt_array(struct vdisk *vd, unsigned ss, const struct gpt_hdr *h,
		     const char *which, uint8_t **out, int *rerr, struct err *e)
{
	size_t len = (size_t)h->entries * h->entry_size;
	uint8_t *a = malloc(len);
	uint32_t crc;
	int r;

	if (!a)
		return err_set(e, -ENOMEM, "out of memory");
	r = part_io(vd, a, len, h->array_lba * ss, rerr, e);
	if (r < 0) {
		free(a);
		return r;
	}
	crc = (uint32_t)crc32(0, a, (uInt)len);
	if (crc != h->array_crc) {
		free(a);
		return err_set(e, EI_ECORRUPT,
			       "gpt: %s entry array CRC32 0x%08x does not match its bytes (0x%08x)",
			       which, h->array_crc, crc);
	}
	*out = a;
	return 0;
}

/*
 * The GPT of @vd with @ss-byte sectors, when there is a valid header.  The
 * backup header (at the disk's end, costly to reach in a compressed
 * stream) is looked for when the primary is corrupt, or missing from a disk
 * whose MBR is @protective.
 */
static int gpt_read(struct vdisk *vd, unsigned ss, int protective,
		    struct part_table *t, struct err *e)
{
	uint64_t sectors = vd->size / ss;
	struct gpt_hdr h;
	struct err e1 = { 0 };
	uint8_t *a = NULL;
	int r, rerr = 0;

	r = gpt_header(vd, ss, 1, "primary", &h, &rerr, &e1);
	if (r >= 0)
		r = gpt_array(vd, ss, &h, "primary", &a, &rerr, &e1);
	if (r < 0 && r != -ENOMEM && sectors > 2 && (r != EI_EFORMAT || protective)) {
		struct err e2 = { 0 };
		int rerr2 = 0;
		int r2 = gpt_header(vd, ss, sectors - 1, "backup", &h, &rerr2, &e2);

		if (r2 >= 0)
			r2 = gpt_array(vd, ss, &h, "backup", &a, &rerr2, &e2);
		if (r2 >= 0) {
			t->backup_used = 1;
			snprintf(t->note, sizeof(t->note),
				 "the backup GPT header (LBA %llu) is used: %.200s",
				 (unsigned long long)(sectors - 1), e1.msg);
			r = 0;
		}
	}
	if (r < 0) {
		if (e)
			*e = e1;
		t->read_error = rerr;
		return r;
	}
	t->kind = PART_GPT;
	t->sector = ss;
	guid_str(h.disk_guid, t->disk_guid, sizeof(t->disk_guid));
	for (uint32_t i = 0; i < h.entries; i++) {
		const uint8_t *en = a + (size_t)i * h.entry_size;
		uint64_t first = get_le64(en + 32), last = get_le64(en + 40);
		struct part *p;

		if (buf_is_zero(en, 16))        /* an unused entry: no type */
			continue;
		if (t->n == PART_MAX) {
			r = err_set(e, EI_ELIMIT, "gpt: more than %u partitions in use",
				    PART_MAX);
			break;
		}
		if (last < first) {
			r = err_set(e, EI_ECORRUPT,
				    "gpt: partition %u: last LBA %llu is before first LBA %llu",
				    i + 1, (unsigned long long)last, (unsigned long long)first);
			break;
		}
		if (last >= sectors) {
			r = err_set(e, EI_ECORRUPT,
				    "gpt: partition %u: LBAs %llu..%llu end past the disk's %llu sectors",
				    i + 1, (unsigned long long)first,
				    (unsigned long long)last, (unsigned long long)sectors);
			break;
		}
		if (first < h.first || last > h.last) {
			r = err_set(e, EI_ECORRUPT,
				    "gpt: partition %u (LBAs %llu..%llu) overlaps the GPT itself (usable LBAs %llu..%llu)",
				    i + 1, (unsigned long long)first,
				    (unsigned long long)last, (unsigned long long)h.first,
				    (unsigned long long)h.last);
			break;
		}
		p = &t->p[t->n++];
		memset(p, 0, sizeof(*p));
		p->num = i + 1;
		p->start = first * ss;
		p->size = (last - first + 1) * ss;
		guid_str(en, p->type, sizeof(p->type));
		guid_str(en + 16, p->uuid, sizeof(p->uuid));
		p->name_ok = gpt_name(en + 56, p->name, sizeof(p->name));
		for (size_t k = 0; k < sizeof(gpt_types) / sizeof(gpt_types[0]); k++)
			if (!strcmp(p->type, gpt_types[k].guid))
				p->type_name = gpt_types[k].name;
	}
	free(a);
	return r;
}

/* --- MBR ----------------------------------------------------------------- */

struct mbr_entry {
	uint8_t boot, type;
	uint32_t lba, count;
};

static void mbr_entries(const uint8_t *s, struct mbr_entry *m)
{
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = s + 446 + 16 * i;

		m[i].boot = p[0];
		m[i].type = p[4];
		m[i].lba = get_le32(p + 8);
		m[i].count = get_le32(p + 12);
	}
}

static struct part *mbr_add(struct part_table *t, unsigned num, uint8_t type,
			    uint64_t lba, uint64_t count)
{
	struct part *p = &t->p[t->n++];

	memset(p, 0, sizeof(*p));
	p->num = num;
	p->start = lba * 512;
	p->size = count * 512;
	snprintf(p->type, sizeof(p->type), "0x%02x", type);
	for (size_t k = 0; k < sizeof(mbr_types) / sizeof(mbr_types[0]); k++)
		if (mbr_types[k].id == type)
			p->type_name = mbr_types[k].name;
	p->extended = mbr_is_extended(type);
	return p;
}

/* The logical partitions in the extended partition at @ext (LBA) of @len. */
static int mbr_logical(struct vdisk *vd, struct part_table *t, unsigned prim,
		       uint64_t ext, uint64_t len, unsigned *next_num,
		       struct err *e)
{
	uint64_t seen[PART_MAX_LOGICAL + 1], cur = ext;
	unsigned nseen = 0;
	uint8_t s[512];
	int r;

	for (;;) {
		struct mbr_entry m[4];
		uint64_t lba;

		if (cur < ext || cur >= ext + len)
			return err_set(e, EI_ECORRUPT,
				       "mbr: EBR at LBA %llu is outside extended partition %u (LBAs %llu..%llu)",
				       (unsigned long long)cur, prim, (unsigned long long)ext,
				       (unsigned long long)(ext + len - 1));
		for (unsigned i = 0; i < nseen; i++)
			if (seen[i] == cur)
				return err_set(e, EI_ECORRUPT,
					       "mbr: the EBR chain of extended partition %u loops back to LBA %llu",
					       prim, (unsigned long long)cur);
		if (nseen > PART_MAX_LOGICAL || t->n == PART_MAX)
			return err_set(e, EI_ELIMIT,
				       "mbr: more than %u logical partitions in extended partition %u",
				       PART_MAX_LOGICAL, prim);
		seen[nseen++] = cur;
		r = part_io(vd, s, 512, cur * 512, &t->read_error, e);
		if (r < 0)
			return r;
		if (get_le16(s + 510) != 0xaa55)
			return err_set(e, EI_ECORRUPT,
				       "mbr: EBR at LBA %llu has signature 0x%04x, not 0xaa55",
				       (unsigned long long)cur, get_le16(s + 510));
		mbr_entries(s, m);
		if (m[0].type && m[0].count && !mbr_is_extended(m[0].type)) {
			lba = cur + m[0].lba;
			if (lba < cur || lba + m[0].count > ext + len)
				return err_set(e, EI_ECORRUPT,
					       "mbr: partition %u (LBAs %llu..%llu) is outside extended partition %u (LBAs %llu..%llu)",
					       *next_num, (unsigned long long)lba,
					       (unsigned long long)(lba + m[0].count - 1), prim,
					       (unsigned long long)ext,
					       (unsigned long long)(ext + len - 1));
			mbr_add(t, (*next_num)++, m[0].type, lba, m[0].count)->logical = 1;
		}
		if (!m[1].type || !mbr_is_extended(m[1].type))
			return 0;
		cur = ext + m[1].lba;
	}
}

/* The two partitions' overlap, as an error naming both. */
static int part_overlaps(const struct part_table *t, const char *tbl,
			 unsigned ss, struct err *e)
{
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *a = &t->p[i];

		for (unsigned j = i + 1; j < t->n; j++) {
			const struct part *b = &t->p[j];

			/* a logical partition lies inside its extended one */
			if ((a->extended && b->logical) || (b->extended && a->logical))
				continue;
			if (a->start < b->start + b->size && b->start < a->start + a->size)
				return err_set(e, EI_ECORRUPT,
					       "%s: partition %u (LBAs %llu..%llu) overlaps partition %u (LBAs %llu..%llu)",
					       tbl, a->num, (unsigned long long)(a->start / ss),
					       (unsigned long long)((a->start + a->size) / ss - 1),
					       b->num, (unsigned long long)(b->start / ss),
					       (unsigned long long)((b->start + b->size) / ss - 1));
		}
	}
	return 0;
}

/* The MBR in @s, or PART_NONE when sector 0 is not one. */
static int mbr_read(struct vdisk *vd, const uint8_t *s, struct part_table *t,
		    struct err *e)
{
	uint64_t sectors = vd->size / 512;
	struct mbr_entry m[4];
	unsigned next = 5;
	int r;

	mbr_entries(s, m);
	for (int i = 0; i < 4; i++)
		if (m[i].boot != 0 && m[i].boot != 0x80)
			return 0;       /* boot code, not a table (as Linux) */
	t->kind = PART_MBR;
	t->sector = 512;
	t->mbr_id = get_le32(s + 440);
	for (int i = 0; i < 4; i++) {
		if (!m[i].type || !m[i].count)
			continue;
		if (m[i].type == 0xee)
			return err_set(e, EI_ECORRUPT,
				       "mbr: partition %d is a protective GPT entry (0xee) but there is no valid GPT: %s",
				       i + 1, "no header at LBA 1 or at the last LBA");
		if ((uint64_t)m[i].lba + m[i].count > sectors)
			return err_set(e, EI_ECORRUPT,
				       "mbr: partition %d (LBAs %u..%llu) ends past the disk's %llu sectors",
				       i + 1, m[i].lba,
				       (unsigned long long)m[i].lba + m[i].count - 1,
				       (unsigned long long)sectors);
		if (!m[i].lba)
			return err_set(e, EI_ECORRUPT,
				       "mbr: partition %d starts at LBA 0, over the MBR itself",
				       i + 1);
		mbr_add(t, (unsigned)i + 1, m[i].type, m[i].lba, m[i].count);
	}
	for (int i = 0; i < 4; i++) {
		if (!m[i].count || !mbr_is_extended(m[i].type))
			continue;
		r = mbr_logical(vd, t, (unsigned)i + 1, m[i].lba, m[i].count, &next, e);
		if (r < 0)
			return r;
	}
	return part_overlaps(t, "mbr", 512, e);
}

/* A hybrid MBR's entries that no GPT partition matches: info's note. */
static void hybrid_note(const uint8_t *s, struct part_table *t)
{
	struct mbr_entry m[4];
	size_t at = strlen(t->note);
	int prot = 0, other = 0;

	mbr_entries(s, m);
	for (int i = 0; i < 4; i++) {
		int match = 0;

		if (!m[i].type || !m[i].count)
			continue;
		if (m[i].type == 0xee) {
			prot = 1;
			continue;
		}
		other = 1;
		for (unsigned k = 0; k < t->n; k++)
			if (t->p[k].start == (uint64_t)m[i].lba * t->sector &&
			    t->p[k].size == (uint64_t)m[i].count * t->sector)
				match = 1;
		if (!match)
			at = text_addf(t->note, sizeof(t->note), at,
				       "%shybrid MBR entry %d (type 0x%02x, LBAs %u..%llu) matches no GPT partition; the GPT is used",
				       at ? "; " : "", i + 1, m[i].type, m[i].lba,
				       (unsigned long long)m[i].lba + m[i].count - 1);
	}
	if (other && !prot)
		text_addf(t->note, sizeof(t->note), at,
			  "%sthe MBR has no protective entry (0xee); the GPT is used",
			  at ? "; " : "");
}

int part_read(struct vdisk *vd, struct part_table *t, struct err *e)
{
	uint8_t s[512];
	struct part_fs fs;
	int r, protective = 0;

	memset(t, 0, offsetof(struct part_table, p));
	if (vd->size < 1024)
		return 0;
	r = part_io(vd, s, 512, 0, &t->read_error, e);
	if (r < 0)
		return r;
	for (int i = 0; i < 4 && get_le16(s + 510) == 0xaa55; i++)
		protective |= s[446 + 16 * i + 4] == 0xee;
	/* GPT first, at 512-byte sectors then 4096 */
	r = gpt_read(vd, 512, protective, t, e);
	if (r == EI_EFORMAT && vd->size >= 3 * 4096)
		r = gpt_read(vd, 4096, protective, t, e);
	if (r >= 0) {
		if (get_le16(s + 510) == 0xaa55)
			hybrid_note(s, t);
		r = part_overlaps(t, "gpt", t->sector, e);
	} else if (r == EI_EFORMAT && !t->read_error) {
		memset(t, 0, offsetof(struct part_table, p));
		r = 0;
		/* a filesystem over the whole disk (FAT has 0xaa55 too) */
		if (get_le16(s + 510) == 0xaa55 &&
		    (r = part_probe_fs(vd, 0, vd->size, &fs, e)) >= 0 && !fs.type)
			r = mbr_read(vd, s, t, e);
		else if (r < 0)
			t->read_error = 1;
	}
	for (unsigned i = 0; r >= 0 && i < t->n; i++)
		if (!t->p[i].extended &&
		    (r = part_probe_fs(vd, t->p[i].start, t->p[i].size, &t->p[i].fs, e)) < 0)
			t->read_error = 1;
	if (r < 0)
		t->kind = PART_NONE;
	return r;
}

/* --- choosing a partition ------------------------------------------------- */

/* The partitions of @t, for an error: "1 name 'esp' vfat label 'EFI'; ...". */
static void part_names(const struct part_table *t, char *buf, size_t len)
{
	char tmp[sizeof(t->p[0].name)];
	size_t at = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *p = &t->p[i];

		if (p->extended)
			continue;
		at = text_addf(buf, len, at, "%s%u", at ? "; " : "", p->num);
		if (p->name[0])
			at = text_addf(buf, len, at, " name '%s'%s",
				       text_safe(p->name, tmp, sizeof(tmp)),
				       p->name_ok ? "" : " (invalid)");
		if (p->fs.type)
			at = text_addf(buf, len, at, " %s", p->fs.type);
		if (p->fs.label[0])
			at = text_addf(buf, len, at, " label '%s'",
				       text_safe(p->fs.label, tmp, sizeof(tmp)));
	}
	if (!at)
		snprintf(buf, len, "none");
}

int part_find(const struct part_table *t, const char *spec,
	      const struct part **out, struct err *e)
{
	const struct part *hit = NULL;
	char list[400];
	unsigned nhit = 0;
	uint64_t num = 0;
	int digits = spec[0] != 0;

	for (const char *c = spec; *c; c++)
		if (*c < '0' || *c > '9' || num > 100000)
			digits = 0;
		else
			num = num * 10 + (uint64_t)(*c - '0');
	if (t->kind == PART_NONE)
		return err_set(e, EI_EUSAGE, "--partition %s: the disk has no partition table",
			       spec);
	part_names(t, list, sizeof(list));
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *p = &t->p[i];

		if (p->extended)
			continue;
		if (digits ? p->num == num :
		    (p->name_ok && !strcmp(p->name, spec)) ||
		    (p->fs.label[0] && !strcmp(p->fs.label, spec))) {
			hit = p;
			nhit++;
		}
	}
	if (nhit == 1) {
		*out = hit;
		return 0;
	}
	return err_set(e, EI_EUSAGE, "--partition %s: %s; partitions: %s",
		       text_safe(spec, (char[64]){ 0 }, 64),
		       nhit ? "more than one partition has that name or label" :
		       digits ? "no partition has that number" :
		       "no partition has that name or filesystem label", list);
}

/* --- a partition as a disk ------------------------------------------------- */

struct part_disk {
	struct vdisk *parent;
	struct part p;
};

static int pdisk_map(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	struct part_disk *d = vd->priv;

	/* the parent's own runs: its holes stay holes, its zeros zeros */
	map_backing(d->parent, d->p.start + off, len, run);
	return 0;
}

static void pdisk_close(struct vdisk *vd)
{
	struct part_disk *d = vd->priv;

	if (d) {
		vdisk_close(d->parent);
		free(d);
	}
}

static const struct img_format part_fmt = {
	.name = "partition",
	.desc = "a partition of a disk",
	.map = pdisk_map,
	.close = pdisk_close,
};

const struct part *part_of(const struct vdisk *vd)
{
	return vd->fmt == &part_fmt ? &((struct part_disk *)vd->priv)->p : NULL;
}

struct vdisk *part_parent(const struct vdisk *vd)
{
	return vd->fmt == &part_fmt ? ((struct part_disk *)vd->priv)->parent : NULL;
}

int part_open(struct vdisk *parent, const char *spec, struct vdisk **out,
	      struct err *e)
{
	struct part_table *t = malloc(sizeof(*t));
	struct vdisk *vd = calloc(1, sizeof(*vd));
	struct part_disk *d = calloc(1, sizeof(*d));
	struct io *io = io_null(parent->io->name, 0);
	const struct part *p;
	int r;

	if (!t || !vd || !d || !io) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	r = part_read(parent, t, e);
	if (r >= 0)
		r = part_find(t, spec, &p, e);
	if (r < 0)
		goto fail;
	d->parent = parent;
	d->p = *p;
	/* vdisk_close() closes vd->io: a private one that holds nothing */
	io->size = p->size;
	vd->fmt = &part_fmt;
	vd->io = io;
	vd->size = p->size;
	vd->priv = d;
	vd->opts = parent->opts;
	vd->opts.partition = NULL;
	memcpy(vd->dir, parent->dir, sizeof(vd->dir));
	vd->dirfd = -1;
	free(t);
	*out = vd;
	return 0;
fail:
	free(t);
	free(vd);
	free(d);
	io_close(io);
	vdisk_close(parent);
	return r;
}

/* --- listing ------------------------------------------------------------- */

static const char *part_kind_name(enum part_kind k)
{
	return k == PART_GPT ? "gpt" : k == PART_MBR ? "dos" : "none";
}

void part_quoted(FILE *f, const char *key, const char *s)
{
	if (!s[0])
		return;
	fprintf(f, ", %s \"", key);
	text_string(f, s);
	fputc('"', f);
}

void part_text(const struct part_table *t, FILE *f)
{
	char h[32];

	fprintf(f, "partition table: %s, %u-byte sectors", part_kind_name(t->kind),
		t->sector);
	if (t->kind == PART_GPT)
		fprintf(f, ", disk GUID %s", t->disk_guid);
	else
		fprintf(f, ", disk identifier 0x%08x", t->mbr_id);
	fputc('\n', f);
	if (t->note[0])
		fprintf(f, "partition table note: %s\n", t->note);
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *p = &t->p[i];

		fprintf(f, "  partition %u: start %llu, size %llu (%s), type %s", p->num,
			(unsigned long long)p->start, (unsigned long long)p->size,
			size_human(p->size, h, sizeof(h)), p->type);
		if (p->type_name)
			fprintf(f, " (%s)", p->type_name);
		if (p->logical)
			fputs(", logical", f);
		part_quoted(f, "name", p->name);
		if (p->uuid[0])
			fprintf(f, ", uuid %s", p->uuid);
		if (!p->extended) {
			fprintf(f, ", filesystem %s", p->fs.type ? p->fs.type : "unknown");
			part_quoted(f, "label", p->fs.label);
			if (p->fs.uuid[0])
				fprintf(f, ", fs uuid %s", p->fs.uuid);
		}
		fputc('\n', f);
	}
}

static void json_key(FILE *f, int ind, const char *k, int first)
{
	fprintf(f, "%s\n%*s\"%s\": ", first ? "" : ",", ind * 4, "", k);
}

void part_json(const struct part_table *t, FILE *f, int ind)
{
	fputc('{', f);
	json_key(f, ind + 1, "type", 1);
	json_string(f, part_kind_name(t->kind));
	json_key(f, ind + 1, "sector-size", 0);
	fprintf(f, "%u", t->sector);
	if (t->kind == PART_GPT) {
		json_key(f, ind + 1, "disk-guid", 0);
		json_string(f, t->disk_guid);
		json_key(f, ind + 1, "backup-header-used", 0);
		fputs(t->backup_used ? "true" : "false", f);
	} else {
		json_key(f, ind + 1, "disk-identifier", 0);
		fprintf(f, "\"0x%08x\"", t->mbr_id);
	}
	if (t->note[0]) {
		json_key(f, ind + 1, "note", 0);
		json_string(f, t->note);
	}
	json_key(f, ind + 1, "partitions", 0);
	fputc('[', f);
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *p = &t->p[i];

		fprintf(f, "%s\n%*s{", i ? "," : "", (ind + 2) * 4, "");
		json_key(f, ind + 3, "number", 1);
		fprintf(f, "%u", p->num);
		json_key(f, ind + 3, "start", 0);
		fprintf(f, "%llu", (unsigned long long)p->start);
		json_key(f, ind + 3, "size", 0);
		fprintf(f, "%llu", (unsigned long long)p->size);
		json_key(f, ind + 3, "type", 0);
		json_string(f, p->type);
		if (p->type_name) {
			json_key(f, ind + 3, "type-name", 0);
			json_string(f, p->type_name);
		}
		if (t->kind == PART_MBR) {
			json_key(f, ind + 3, "logical", 0);
			fputs(p->logical ? "true" : "false", f);
		}
		if (t->kind == PART_GPT) {
			json_key(f, ind + 3, "uuid", 0);
			json_string(f, p->uuid);
			json_key(f, ind + 3, "name", 0);
			json_string(f, p->name);
		}
		if (!p->extended) {
			json_key(f, ind + 3, "filesystem", 0);
			json_string(f, p->fs.type ? p->fs.type : "unknown");
			if (p->fs.label[0]) {
				json_key(f, ind + 3, "label", 0);
				json_string(f, p->fs.label);
			}
			if (p->fs.uuid[0]) {
				json_key(f, ind + 3, "fs-uuid", 0);
				json_string(f, p->fs.uuid);
			}
		}
		fprintf(f, "\n%*s}", (ind + 2) * 4, "");
	}
	fprintf(f, "\n%*s]\n%*s}", (ind + 1) * 4, "", ind * 4, "");
}
