#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the static libraries edgeimg links (zlib, zstd, xz, lz4, libdeflate,
# libsodium, libarchive, libext2fs and libcom_err from e2fsprogs) for one musl
# target from pinned, checksummed Debian sources.
#
# Usage: build.sh x86_64|aarch64   download (if needed), verify, build, install
#        build.sh --fetch          only download and verify every source
#        build.sh --update-lock    re-download the versions named in sources.lock
#                                  and rewrite its checksums (after a bump)
# Environment: TOOLCHAIN_OUT (default toolchain/out), TOOLCHAIN_DL (default
# toolchain/dl), TOOLCHAIN_APT_SOURCES (a .sources/.list file of deb-src
# entries to use instead of the ones derived from /etc/apt), TOOLCHAIN_JOBS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock=$here/sources.lock
out=${TOOLCHAIN_OUT:-$here/out}
dl=${TOOLCHAIN_DL:-$here/dl}
jobs=${TOOLCHAIN_JOBS:-$(nproc)}
libs="zlib zstd xz lz4 libdeflate libsodium libarchive e2fsprogs"

# A parent make must not leak its flags, variables or jobserver into ours.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES GNUMAKEFLAGS MAKELEVEL MAKEFILES \
	CFLAGS CPPFLAGS CXXFLAGS LDFLAGS LIBS CC CXX CPP AR RANLIB NM STRIP LD \
	OBJDUMP PKG_CONFIG PKG_CONFIG_PATH PREFIX DESTDIR O V VERBOSE
export LC_ALL=C

die() { echo "toolchain: error: $*" >&2; exit 1; }

# --- sources.lock -------------------------------------------------------------
# Lines: NAME SOURCE-PACKAGE VERSION SHA256 FILE; one line per file.
lock_lines() { awk -v n="$1" '$1 == n' "$lock"; }
lock_field() { lock_lines "$1" | awk -v f="$2" 'NR == 1 { print $f }'; }
lock_names() { awk '!/^#/ && NF && !seen[$1]++ { print $1 }' "$lock"; }
# Upstream version from a Debian one: 1:1.2.13.dfsg-1 -> 1.2.13.
upstream_version() {
	local v=${1#*:}
	v=${v%-*}
	echo "${v%%[.+~]dfsg*}"
}

[ -f "$lock" ] || die "missing $lock"

# --- fetching -----------------------------------------------------------------
# Writes a private deb822 list of deb-src entries for this machine's Debian
# release, made from the deb entries it already has, so no mirror is named here.
make_source_list() {
	local dst=$1 codename
	if [ -n "${TOOLCHAIN_APT_SOURCES:-}" ]; then
		cp "$TOOLCHAIN_APT_SOURCES" "$dst"
		return
	fi
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release; set TOOLCHAIN_APT_SOURCES"
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			cat "$f"
			echo
		done
	} | awk -v rel="$codename" '
		function flush(   i, n, s, ok, out) {
			if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && comps ~ /(^|[ \t])main([ \t]|$)/ && enabled != "no") {
				n = split(suites, s, /[ \t]+/); out = ""
				for (i = 1; i <= n; i++)
					if (s[i] == rel || index(s[i], rel "-") == 1) out = out " " s[i]
				if (out != "") {
					printf "Types: deb-src\nURIs: %s\nSuites:%s\nComponents: main\n", uris, out
					if (signed != "") printf "Signed-By: %s\n", signed
					printf "\n"
				}
			}
			types = uris = suites = comps = signed = enabled = ""; field = ""
		}
		/^#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { if (field == "signed-by") signed = signed "\n" $0; next }
		{
			field = tolower($0); sub(/:.*/, "", field)
			v = $0; sub(/^[^:]*:[ \t]*/, "", v)
			if (field == "types") types = v
			else if (field == "uris") uris = v
			else if (field == "suites") suites = v
			else if (field == "components") comps = v
			else if (field == "signed-by") signed = v
			else if (field == "enabled") enabled = tolower(v)
		}
		END { flush() }' >"$dst"
	if [ -f /etc/apt/sources.list ]; then
		awk -v rel="$codename" '
			$1 != "deb" { next }
			{
				opt = ""; i = 2
				if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opt = opt " " $i; i++ } opt = opt " " $i; i++ }
				uri = $i; suite = $(i + 1); main = 0
				for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
				if (!main || !(suite == rel || index(suite, rel "-") == 1)) next
				printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n", uri, suite
				if (match(opt, /signed-by=[^] \t]+/))
					printf "Signed-By: %s\n", substr(opt, RSTART + 10, RLENGTH - 10)
				if (opt ~ /trusted=yes/) printf "Trusted: yes\n"
				printf "\n"
			}' /etc/apt/sources.list >>"$dst"
	fi
	[ -s "$dst" ] || die "no Debian '$codename' main entries in /etc/apt; set TOOLCHAIN_APT_SOURCES"
}

# Runs apt-get with a private source list, list and cache directories, so the
# system's own apt state is neither used nor changed.
apt_private() {
	local a=$dl/.apt
	"$@" -o Dir::Etc::SourceList="$a/deb-src.sources" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" \
		-o APT::Sandbox::User="$(id -un)"
}

apt_update_private() {
	local a=$dl/.apt
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	make_source_list "$a/deb-src.sources"
	apt_private apt-get -q update >"$a/update.log" 2>&1 ||
		{ tail -n 20 "$a/update.log" >&2; die "apt-get update (private deb-src lists) failed"; }
}

# Downloads PKG=VERSION pairs into directory $1.
apt_download() {
	local dir=$1; shift
	(cd "$dir" && apt_private apt-get -q source --download-only "$@") >"$dl/.apt/source.log" 2>&1 ||
		{ tail -n 20 "$dl/.apt/source.log" >&2; die "apt-get source $* failed (is the pinned version still served?)"; }
}

# Checks that every file of library $1 is in the cache with its pinned
# checksum. Returns 1 if some are missing; dies if one is there but differs.
check_cached() {
	local name=$1 sum file st=0
	while read -r _ _ _ sum file; do
		if [ ! -f "$dl/$file" ]; then
			st=1
		elif ! echo "$sum  $dl/$file" | sha256sum -c --quiet --status -; then
			die "checksum mismatch for $dl/$file (want $sum, have $(sha256sum "$dl/$file" | cut -d' ' -f1)); remove it to download it again"
		fi
	done < <(lock_lines "$name")
	return $st
}

# Ensures the sources of the named libraries are in $dl, verified.
fetch() {
	local name missing="" specs="" tmp sum file
	for name in "$@"; do
		check_cached "$name" || missing="$missing $name"
	done
	[ -n "$missing" ] || return 0
	mkdir -p "$dl"
	exec 9>"$dl/.lock"
	flock 9
	missing=""
	for name in "$@"; do
		check_cached "$name" || { missing="$missing $name"; specs="$specs $(lock_field "$name" 2)=$(lock_field "$name" 3)"; }
	done
	if [ -n "$missing" ]; then
		echo "toolchain: downloading sources:$missing"
		apt_update_private
		tmp=$(mktemp -d "$dl/.tmp.XXXXXX")
		# shellcheck disable=SC2086
		apt_download "$tmp" $specs
		for name in $missing; do
			while read -r _ _ _ sum file; do
				[ -f "$tmp/$file" ] || die "apt-get source did not produce $file"
				echo "$sum  $tmp/$file" | sha256sum -c --quiet --status - ||
					die "checksum mismatch for downloaded $file (want $sum, got $(sha256sum "$tmp/$file" | cut -d' ' -f1))"
				mv -f "$tmp/$file" "$dl/$file"
			done < <(lock_lines "$name")
		done
		rm -rf "$tmp"
	fi
	exec 9>&-
}

# Re-downloads the versions named in sources.lock and rewrites the checksums.
update_lock() {
	local tmp new name pkg ver f
	mkdir -p "$dl"
	exec 9>"$dl/.lock"
	flock 9
	apt_update_private
	tmp=$(mktemp -d "$dl/.tmp.XXXXXX")
	new=$tmp/sources.lock
	grep '^#' "$lock" >"$new" || true
	for name in $(lock_names); do
		pkg=$(lock_field "$name" 2) ver=$(lock_field "$name" 3)
		mkdir "$tmp/$name"
		apt_download "$tmp/$name" "$pkg=$ver"
		for f in "$tmp/$name"/*; do
			f=${f##*/}
			[ "${f%.asc}" = "$f" ] || continue # upstream signatures are not used
			printf '%-11s %-11s %-23s %s %s\n' "$name" "$pkg" "$ver" \
				"$(sha256sum "$tmp/$name/$f" | cut -d' ' -f1)" "$f" >>"$new"
			mv -f "$tmp/$name/$f" "$dl/$f"
		done
	done
	mv -f "$new" "$lock"
	rm -rf "$tmp"
	echo "toolchain: rewrote $lock; review it with git diff"
}

# --- building -----------------------------------------------------------------
# Each recipe runs in the unpacked source tree with $cc, $ar, $ranlib, $nm,
# $strip, $build, $host, $sysroot and $jobs set, and installs into $sysroot.
# --build and --host always differ, so configure never runs target programs
# (which would work or not depending on the machine's binfmt/qemu set-up).
cflags_o2="-O2 -g0 -ffunction-sections -fdata-sections"
cflags_o3="-O3 -g0 -ffunction-sections -fdata-sections"

build_zlib() {
	CC=$cc AR=$ar RANLIB=$ranlib CFLAGS="$cflags_o3" ./configure --static --prefix="$sysroot"
	make -j"$jobs" libz.a
	make install
}

build_zstd() {
	# Multithreading is compiled in (ZSTD_c_nbWorkers); legacy (pre-1.0) formats are not.
	make -C lib -j"$jobs" libzstd.a CC="$cc" AR="$ar" CFLAGS="$cflags_o3" \
		CPPFLAGS_STATLIB=-DZSTD_MULTITHREAD ZSTD_LEGACY_SUPPORT=0
	install -d "$sysroot/lib" "$sysroot/include"
	install -m 644 lib/libzstd.a "$sysroot/lib/"
	install -m 644 lib/zstd.h lib/zstd_errors.h lib/zdict.h "$sysroot/include/"
}

build_xz() {
	./configure --build="$build" --host="$host" --prefix="$sysroot" CC="$cc" AR="$ar" RANLIB="$ranlib" \
		NM="$nm" STRIP="$strip" CFLAGS="$cflags_o2" \
		--disable-shared --enable-static --enable-threads=posix \
		--disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo \
		--disable-lzma-links --disable-scripts --disable-doc --disable-nls
	make -j"$jobs"
	make install
}

build_lz4() {
	make -C lib -j"$jobs" liblz4.a CC="$cc" AR="$ar" CFLAGS="$cflags_o3"
	install -d "$sysroot/lib" "$sysroot/include"
	install -m 644 lib/liblz4.a "$sysroot/lib/"
	install -m 644 lib/lz4.h lib/lz4hc.h lib/lz4frame.h lib/lz4frame_static.h "$sysroot/include/"
}

build_libdeflate() {
	# Its Makefile puts -O2 in front of these.
	make -j"$jobs" libdeflate.a CC="$cc" AR="$ar" CFLAGS="-g0 -ffunction-sections -fdata-sections"
	install -d "$sysroot/lib" "$sysroot/include"
	install -m 644 libdeflate.a "$sysroot/lib/"
	install -m 644 libdeflate.h "$sysroot/include/"
}

build_libsodium() {
	# Debian's source is a git export without configure: autoreconf makes
	# it, as Debian's own build does (dh --with autoreconf).
	# --enable-minimal: the high-level APIs (Ed25519 signatures among
	# them) without the deprecated and internal ones; --disable-pie: the
	# binaries are static, not position independent, as the other
	# libraries here are.
	autoreconf -fi
	./configure --build="$build" --host="$host" --prefix="$sysroot" CC="$cc" AR="$ar" RANLIB="$ranlib" \
		NM="$nm" STRIP="$strip" CFLAGS="$cflags_o2" \
		--disable-shared --enable-static --enable-minimal --disable-pie
	make -j"$jobs"
	make install
}

build_libarchive() {
	# Debian's patches change configure.ac and Makefile.am: autoreconf, as
	# Debian's own build does (dh_autoreconf).
	autoreconf -fi
	# libarchive.a alone, with the codecs built above (zlib, liblzma,
	# libzstd, found through $sysroot: the musl-gcc specs hide the host's)
	# and nothing else: no programs, no crypto library (mtree/xar digests,
	# zip encryption), no bzip2, lz4, lzo, libb2, libxml2/expat (xar), no
	# iconv (charset conversion), no ACL or xattr system calls (an entry's
	# xattrs are still read into and written from memory), no regex
	# library (archive_match patterns).
	./configure --build="$build" --host="$host" --prefix="$sysroot" CC="$cc" AR="$ar" RANLIB="$ranlib" \
		NM="$nm" STRIP="$strip" CFLAGS="$cflags_o2" CPPFLAGS="-I$sysroot/include" LDFLAGS="-L$sysroot/lib" \
		--disable-shared --enable-static --disable-bsdtar --disable-bsdcpio --disable-bsdcat \
		--disable-acl --disable-xattr --disable-posix-regex-lib \
		--with-zlib --with-lzma --with-zstd --without-bz2lib --without-lz4 --without-lzo2 \
		--without-libb2 --without-openssl --without-nettle --without-mbedtls --without-cng \
		--without-xml2 --without-expat --without-iconv
	# A codec configure did not find would be a filter silently missing.
	local h
	for h in HAVE_ZLIB_H HAVE_LIBZ HAVE_LZMA_H HAVE_LIBLZMA HAVE_ZSTD_H HAVE_LIBZSTD HAVE_LIBZSTD_COMPRESSOR; do
		grep -q "^#define $h 1" config.h || { echo "libarchive: configure did not define $h (codecs in $sysroot)"; exit 1; }
	done
	make -j"$jobs" libarchive.la
	make install-libLTLIBRARIES install-includeHEADERS
}

build_e2fsprogs() {
	# libext2fs.a and libcom_err.a (lib/ext2fs, lib/et) with their headers,
	# generated ones included (ext2_err.h, ext2_types.h); no programs.
	# libext2fs needs neither libuuid nor libblkid: --enable-libuuid and
	# --enable-libblkid pick e2fsprogs' own copies, so configure does not
	# look for the system's; they are not built. No tdb (e2fsck's undo
	# files), no test I/O manager, no bitmap statistics, no backtrace
	# (musl has no execinfo.h). gen_crc32ctable and subst are built for
	# the build machine (BUILD_CC, gcc).
	./configure --build="$build" --host="$host" --prefix="$sysroot" CC="$cc" AR="$ar" RANLIB="$ranlib" \
		NM="$nm" STRIP="$strip" CFLAGS="$cflags_o2" \
		--disable-nls --disable-fuse2fs --disable-defrag --disable-debugfs --disable-imager \
		--disable-resizer --disable-uuidd --disable-e2initrd-helper --disable-fsck \
		--disable-tdb --disable-testio-debug --disable-bmap-stats --disable-backtrace \
		--enable-libuuid --enable-libblkid
	make subs
	make -C lib/et -j"$jobs" libcom_err.a
	make -C lib/ext2fs -j"$jobs" libext2fs.a
	make -C lib/et install
	make -C lib/ext2fs install
}

# What each library installs, and the libraries it is built against.
declare -A libfile=([zlib]=libz.a [zstd]=libzstd.a [xz]=liblzma.a [lz4]=liblz4.a
	[libdeflate]=libdeflate.a [libsodium]=libsodium.a [libarchive]=libarchive.a
	[e2fsprogs]="libext2fs.a libcom_err.a")
declare -A deps=([libarchive]="zlib zstd xz")

# The stamp's text: what the build of $1 depends on. A different text rebuilds it.
stamp_text() {
	local name=$1 dep
	echo "library: $name $(lock_field "$name" 3)"
	lock_lines "$name" | awk '{ print "source: " $4 "  " $5 }'
	echo "target: $arch $build $host $cc $($cc -dumpfullversion) $ar $ranlib"
	echo "libc: $(stat -c '%s %Y' "$libc_a")"
	echo "recipe: $(declare -f "build_$name" | sha256sum | cut -d' ' -f1)"
	echo "flags: $cflags_o2 | $cflags_o3"
	for dep in ${deps[$name]:-}; do
		echo "dep: $dep $(sha256sum <"$sysroot/.stamps/$dep" | cut -d' ' -f1)"
	done
}

is_built() {
	local f
	for f in ${libfile[$1]}; do
		[ -f "$sysroot/lib/$f" ] || return 1
	done
	[ -f "$sysroot/.stamps/$1" ] &&
		[ "$(stamp_text "$1")" = "$(cat "$sysroot/.stamps/$1")" ]
}

build_one() {
	local name=$1 ver src log dsc st
	ver=$(upstream_version "$(lock_field "$name" 3)")
	src=$work/$name
	log=$work/$name.log
	if is_built "$name"; then
		echo "toolchain: cached $name $ver for $arch"
		return
	fi
	fetch "$name"
	rm -f "$sysroot/.stamps/$name"
	rm -rf "$src"
	mkdir -p "$work" "$sysroot/.stamps"
	# Verify right before use, whatever fetch saw.
	lock_lines "$name" | awk -v d="$dl" '{ print $4 "  " d "/" $5 }' | sha256sum -c --quiet - ||
		die "checksum mismatch in $dl for $name"
	dsc=$(lock_lines "$name" | awk '$5 ~ /\.dsc$/ { print $5 }')
	# Not in an if or ||: there bash would ignore set -e inside the subshell.
	set +e
	(
		set -e
		# The checksums were verified above; dpkg-source applies Debian's patches.
		dpkg-source --no-check --no-copy -x "$dl/$dsc" "$src"
		cd "$src"
		"build_$name"
	) >"$log" 2>&1
	st=$?
	set -e
	if [ $st -ne 0 ]; then
		echo "toolchain: FAILED to build $name $ver for $arch; last lines of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	stamp_text "$name" >"$sysroot/.stamps/$name"
	rm -rf "$src"
	echo "toolchain: built $name $ver for $arch"
}

need() {
	local tool=$1 pkg=$2
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found; install the Debian package $pkg"
}

build_arch() {
	case $arch in
	x86_64)
		cc=x86_64-linux-musl-gcc ar=ar ranlib=ranlib nm=nm strip=strip
		host=x86_64-linux-musl libc_a=/usr/lib/x86_64-linux-musl/libc.a
		need "$cc" musl-tools
		;;
	aarch64)
		cc=aarch64-linux-musl-gcc ar=aarch64-linux-gnu-ar ranlib=aarch64-linux-gnu-ranlib
		nm=aarch64-linux-gnu-nm strip=aarch64-linux-gnu-strip
		host=aarch64-linux-musl libc_a=/usr/lib/aarch64-linux-musl/libc.a
		need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
		need "$cc" musl-dev:arm64
		;;
	esac
	build=$(uname -m)-pc-linux-gnu
	need "$ar" binutils
	need dpkg-source dpkg-dev
	need make make
	[ -f "$libc_a" ] || die "$libc_a not found; install the musl-dev package for $arch"
	sysroot=$out/$arch
	work=$out/build-$arch
	mkdir -p "$sysroot"
	# libsodium's and libarchive's recipes make their configure scripts
	if ! is_built libsodium || ! is_built libarchive; then
		need autoreconf autoconf
		need automake automake
		need libtoolize libtool
	fi
	exec 8>"$sysroot/.lock"
	flock 8
	# One download (one private apt-get update) for whatever is not built yet.
	for name in $libs; do
		# shellcheck disable=SC2086
		is_built "$name" || { fetch $libs; break; }
	done
	for name in $libs; do
		build_one "$name"
	done
	rm -rf "${sysroot:?}/bin" "$sysroot/share" "$sysroot/lib/pkgconfig" "$sysroot"/lib/*.la
	touch "$sysroot/.toolchain-stamp"
}

case ${1:-} in
x86_64 | aarch64)
	arch=$1
	build_arch
	;;
--fetch)
	# shellcheck disable=SC2046
	fetch $(lock_names)
	echo "toolchain: all sources cached and verified in $dl"
	;;
--update-lock)
	update_lock
	;;
*)
	echo "usage: $0 x86_64|aarch64|--fetch|--update-lock" >&2
	exit 2
	;;
esac
