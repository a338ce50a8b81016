# SPDX-License-Identifier: MIT
# Sourced by bench.sh: flash images (issue 15) from disk-v1.raw of the
# corpus, each output checked by the peer's own decoder before its row.
#   compressed raw: convert -O craw (zstd 19, xz 6) vs zstd -T0 -19 and
#     xz -T0 -6 of the raw file;
#   --bmap: the same zstd convert with a map vs without it, alternating;
#     and a raw OUT with a map vs convert -O raw + bmaptool create;
#   Android sparse: convert -O simg vs img2simg.

# writes FMT: this binary writes FMT (an unknown -O is a usage error, 2)
writes() {
	"$ei" convert -O "$1" /nonexistent "$tmp/.w" >/dev/null 2>&1
	[ $? -ne 2 ]
}

src=$corpus/disk-v1.raw
[ -f "$src" ] || { echo "bench: $src missing" >&2; exit 1; }
cat "$src" >/dev/null
if writes craw; then
	header "Compressed raw: edgeimg convert -O craw vs zstd -T0 / xz -T0 of the raw file + sync (best of $rep runs each; input disk-v1.raw)"
	for c in zstd:19:zst xz:6:xz; do
		comp=${c%%:*} level=${c#*:} ext=${level#*:} level=${level%:*}
		eout=$tmp/e.$ext pout=$tmp/p.$ext
		ecmd=("$ei" convert -O craw -o compression=$comp,level=$level "$src" "$eout")
		if [ $comp = zstd ]; then
			pcmd=("${synced[@]}" "$pout" zstd -q -f -T0 -$level "$src" -o "$pout")
		else
			pcmd=("${synced[@]}" "$pout" sh -c 'xz -T0 -$1 -c "$2" >"$3"' xz "$level" "$src" "$pout")
		fi
		pair
		$comp -d -c "$eout" | cmp -s - "$src" ||
			{ echo "bench: $comp -d of edgeimg's $eout is not the disk" >&2; exit 1; }
		row "craw $comp-$level" "$(size_of "$eout")" "$(size_of "$pout")"
		verdict "craw $comp-$level: wall / $comp -T0's" "$(ratio "$e_wall" "$p_wall")" 0.8
		verdict "craw $comp-$level: size / $comp -T0's" "$(ratio "$(size_of "$eout")" "$(size_of "$pout")")" 1.02
		verdict "craw $comp-$level: peak RSS, MiB" "$(mib "$e_rss")" 64
		if [ $comp = zstd ]; then
			# the same convert with and without a map, alternating, each
			# run from removed outputs (pair's): the map's cost, not the
			# machine's drift between two series
			rm -f "$eout" "$pout"
			ecmd=(bash -c 'rm -f "$3" && exec "$1" convert -O craw -o "$5" --bmap "$3" "$2" "$4"' \
				x "$ei" "$src" "$tmp/e.bmap" "$eout" compression=$comp,level=$level)
			pcmd=("$ei" convert -O craw -o compression=$comp,level=$level "$src" "$pout")
			pair
			bmaptool -q copy --bmap "$tmp/e.bmap" "$eout" "$tmp/bcopy.raw" ||
				{ echo "bench: bmaptool copy of $eout refused" >&2; exit 1; }
			cmp -s "$tmp/bcopy.raw" "$src" || { echo "bench: bmaptool's copy differs" >&2; exit 1; }
			cmp -s "$eout" "$pout" || { echo "bench: --bmap changed the compressed bytes" >&2; exit 1; }
			rm -f "$tmp/bcopy.raw"
			printf '%-22s | %8s %8s %8s %10s | (the same convert without --bmap, alternating: %s s %s cpu)\n' \
				"craw zstd-$level --bmap" "$e_wall" "$e_cpu" "$(mib "$e_rss")" \
				"$(size_of "$tmp/e.bmap")" "$p_wall" "$p_cpu"
			verdict "--bmap: wall / the same convert's without it" "$(ratio "$e_wall" "$p_wall")" 1.05
			verdict "--bmap: peak RSS, MiB" "$(mib "$e_rss")" 64
		fi
		rm -f "$eout" "$pout" "$tmp/e.bmap"
	done
else
	echo; echo "craw writer not built: compressed raw rows skipped"
fi

header "Raw with a block map: edgeimg convert -O raw --bmap vs edgeimg convert -O raw, then bmaptool create (best of $rep runs each)"
eout=$tmp/e.raw pout=$tmp/p.raw
ecmd=(bash -c 'rm -f "$3" && "$1" convert -O raw --bmap "$3" "$2" "$4"' x "$ei" "$src" "$tmp/e.bmap" "$eout")
pcmd=(bash -c '"$1" convert -O raw "$2" "$4" && bmaptool -q create -o "$3" "$4" && sync -- "$3"' x "$ei" "$src" "$tmp/p.bmap" "$pout")
pair
bmaptool -q copy --bmap "$tmp/e.bmap" "$eout" "$tmp/bcopy.raw" && cmp -s "$tmp/bcopy.raw" "$src" ||
	{ echo "bench: bmaptool copy with edgeimg's map does not give the disk" >&2; exit 1; }
rm -f "$tmp/bcopy.raw"
row "raw --bmap" "$(size_of "$tmp/e.bmap")" "$(size_of "$tmp/p.bmap")"
verdict "raw --bmap: wall / convert + bmaptool create" "$(ratio "$e_wall" "$p_wall")" 1.0
rm -f "$eout" "$pout" "$tmp/e.bmap" "$tmp/p.bmap"

if writes simg; then
	header "Android sparse: edgeimg convert -O simg vs img2simg + sync (best of $rep runs each)"
	eout=$tmp/e.simg pout=$tmp/p.simg
	ecmd=("$ei" convert -O simg "$src" "$eout")
	pcmd=("${synced[@]}" "$pout" img2simg "$src" "$pout")
	pair
	simg2img "$eout" "$tmp/s.raw" && cmp -s "$tmp/s.raw" "$src" ||
		{ echo "bench: simg2img of edgeimg's image is not the disk" >&2; exit 1; }
	rm -f "$tmp/s.raw"
	row "simg" "$(size_of "$eout")" "$(size_of "$pout")"
	verdict "simg: wall / img2simg's" "$(ratio "$e_wall" "$p_wall")" 1.0
	verdict "simg: size / img2simg's" "$(ratio "$(size_of "$eout")" "$(size_of "$pout")")" 1.0
	verdict "simg: peak RSS, MiB" "$(mib "$e_rss")" 64
	rm -f "$eout" "$pout"
else
	echo; echo "simg writer not built: Android sparse rows skipped"
fi
