#!/usr/bin/env bash
# contrib/build-deb.sh - build the Debian package of portcullis.
#
#     contrib/build-deb.sh [OUTDIR]        (default: the current directory)
#
# The repository's top level is fixed (DESIGN.md section 1), so the
# packaging lives in contrib/debian, and this script does what a Debian
# maintainer does with an upstream release (contrib/debian/README):
#   1. "make dist" in a scratch build (autoreconf -fi first in a checkout
#      that has no configure yet), giving portcullis_VERSION.orig.tar.gz;
#   2. unpack it and copy contrib/debian from it to debian/;
#   3. "dpkg-buildpackage -us -uc -b" in the unpacked tree;
#   4. copy portcullis_*.deb, portcullis-dbgsym_*.deb, the .buildinfo and
#      the .changes to OUTDIR.
# So the package is built from what a release ships, and the source tree
# is left as it was (except for autoreconf's files in a fresh checkout, or
# the tarball "make dist" writes in a tree configured in place).
#
# Needs Debian 12 with the "build" packages of contrib/debian-packages and
# debhelper, dpkg-dev, fakeroot (its "test" packages).  DEB_BUILD_OPTIONS
# is passed on (e.g. nocheck); at most 2 jobs.  Scratch files go to a
# temporary directory (TMPDIR), removed at exit unless KEEP_TMP is set.
# Exit status: 0 when the package was built, non-zero with the reason on
# stderr otherwise.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
# Run from a make (the test suite), the caller's make flags (jobserver,
# TESTS=...) must not reach the package build's makes.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
out=${1:-.}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() { echo "build-deb.sh: $*" >&2; exit 1; }
for t in dpkg-buildpackage dh make tar; do
	command -v "$t" >/dev/null 2>&1 ||
		die "$t not found: install debhelper, dpkg-dev and fakeroot"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-deb.XXXXXX")
cleanup() {
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "build-deb.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# 1. the release tarball
jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2
if [ -f "$src/config.status" ]; then
	# configured in place (./configure in the tree): an out-of-tree
	# configure would refuse, so make the tarball there
	make -C "$src" -s dist >&2
	mv "$src"/portcullis-*.tar.gz "$work/"
else
	if [ ! -x "$src/configure" ]; then
		(cd "$src" && autoreconf -fi) >&2
	fi
	mkdir "$work/dist"
	(cd "$work/dist" && "$src/configure" -q && make -s dist) >&2
	mv "$work"/dist/portcullis-*.tar.gz "$work/"
	rm -rf "$work/dist"
fi
set -- "$work"/portcullis-*.tar.gz
[ $# -eq 1 ] && [ -f "$1" ] || die "make dist made no single portcullis-*.tar.gz"
tarball=$1
version=${tarball##*/portcullis-}
version=${version%.tar.gz}

# 2. unpack, debian/ from the tarball's contrib/debian
mv "$tarball" "$work/portcullis_$version.orig.tar.gz"
tar -xzf "$work/portcullis_$version.orig.tar.gz" -C "$work"
tree=$work/portcullis-$version
[ -d "$tree/contrib/debian" ] ||
	die "the tarball has no contrib/debian (EXTRA_DIST in Makefile.am)"
cp -R "$tree/contrib/debian" "$tree/debian"
debversion=$(cd "$tree" && dpkg-parsechangelog -S Version)
[ "${debversion%-*}" = "$version" ] ||
	die "debian/changelog is at $debversion but the release is $version: add an entry (dch -v $version-1)"

# 3. build
(cd "$tree" && dpkg-buildpackage -us -uc -b -J"$jobs") >&2 ||
	die "dpkg-buildpackage failed (above)"

# 4. the results
set -- "$work"/portcullis_"$debversion"_*.deb
[ -f "$1" ] || die "dpkg-buildpackage made no portcullis_${debversion}_*.deb"
cp "$work"/portcullis_"$debversion"_*.deb "$work"/portcullis_"$debversion"_*.changes \
	"$work"/portcullis_"$debversion"_*.buildinfo "$out/"
for f in "$work"/portcullis-dbgsym_"$debversion"_*.deb; do
	[ -f "$f" ] && cp "$f" "$out/"
done
ls -1 "$out"/portcullis_"$debversion"_*.deb
