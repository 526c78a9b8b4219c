#!/usr/bin/env bash
# Builds xa's Debian packages (cmake/packaging.cmake: libxa<soversion>, libxa-dev, xa-tools),
# installs them with `apt-get install ./*.deb` into a throwaway root, builds and runs the
# find_package and pkg-config consumers there against /usr, checks that the tools run and that
# `man xa-recover` finds its page and that the installed systemd unit verifies, then removes the packages and checks that none of their files
# is left. Fails (exit 1) when any step fails; needs root (mounts, chroot, apt).
#
# The throwaway root is an overlay of this machine's own root with a tmpfs on top, in a mount
# namespace of its own: whatever apt and the consumers write there vanishes with the namespace,
# and nothing outside it changes. It starts with this machine's packages (the compiler, cmake,
# pkg-config, the -dev packages the consumers need), so no download is needed, and it takes
# seconds; a debootstrap chroot would fetch a whole system from the archive for each run, and
# `dpkg --root` into an empty directory cannot run the packages' maintainer scripts (ldconfig)
# nor the consumers' builds.
#
# Usage: scripts/package-test.sh [BUILD_DIR]   (default build-packages)
set -euo pipefail

readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$REPO_ROOT/build-packages}"
say() { printf 'package-test: %s\n' "$*"; }
die() { printf 'package-test: FAIL: %s\n' "$*" >&2; exit 1; }

((EUID == 0)) || die "needs root: it mounts an overlay root and runs apt-get and chroot in it"
for tool in cpack dpkg-deb dpkg-shlibdeps unshare chroot; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done

# 1. A shared-library build installed under /usr, and its packages.
say "configuring and building in $build (Release, shared libraries, prefix /usr)"
# -Werror too: a Release build (-O3) meets warnings the other builds do not.
cmake -S "$REPO_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DXA_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr -DXA_BUILD_TESTS=OFF -DXA_BUILD_BENCH=OFF \
  -DXA_BUILD_EXAMPLES=OFF \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; die "cmake failed"; }
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 ||
  { tail -n 50 "$build/build.log"; die "the build failed"; }
# Every install rule names its package's component: a file of none would be in no package.
unclaimed="$(mktemp -d)"
cmake --install "$build" --prefix "$unclaimed" --component Unspecified >/dev/null
leftover="$(find "$unclaimed" -mindepth 1 ! -type d | sed "s|^$unclaimed||")"
rm -rf "$unclaimed"
[[ -z "$leftover" ]] || die "installed files of no component (add COMPONENT runtime, dev or tools): $leftover"
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log"; die "cpack failed"; }
mapfile -t debs < <(find "$build/packages" -maxdepth 1 -name '*.deb' | sort)
((${#debs[@]} == 3)) || die "expected 3 packages in $build/packages, found ${#debs[@]}: ${debs[*]}"
for deb in "${debs[@]}"; do
  say "$(basename "$deb"): $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version), Depends: $(dpkg-deb -f "$deb" Depends)"
done
runtime="$(printf '%s\n' "${debs[@]}" | grep '/libxa[0-9]' || true)"
[[ -n "$runtime" ]] || die "no runtime package libxa<soversion>"
contents="$(dpkg-deb -c "$runtime")"
grep -q 'libxa\.so\.[0-9]' <<<"$contents" || die "the runtime package holds no libxa.so.<version>"
dpkg-deb -f "$runtime" Depends | grep -q 'libboost-log' ||
  die "the runtime package does not depend on Debian's Boost.Log"

# 2. The throwaway root, and everything else inside it (the script runs itself there).
root="$(mktemp -d /tmp/xa-package-root.XXXXXX)"
trap 'rmdir "$root/merged" "$root/layer" 2>/dev/null; rmdir "$root" 2>/dev/null || true' EXIT
mkdir -p "$root/merged" "$root/layer"
say "installing, using and removing the packages in an overlay root ($root/merged)"
unshare --mount --propagation private bash -euo pipefail -s -- "$REPO_ROOT" "$root" \
  "${debs[@]}" <<'INSIDE'
repo="$1" root="$2"; shift 2
say() { printf 'package-test: %s\n' "$*"; }
die() { printf 'package-test: FAIL: %s\n' "$*" >&2; exit 1; }
mount -t tmpfs -o size=4g tmpfs "$root/layer"
mkdir -p "$root/layer/upper" "$root/layer/work"
mount -t overlay overlay \
  -o "lowerdir=/,upperdir=$root/layer/upper,workdir=$root/layer/work" "$root/merged"
new="$root/merged"
for fs in proc sys dev; do mount --rbind "/$fs" "$new/$fs"; done
mount -t tmpfs tmpfs "$new/tmp"
# A container image may keep man pages out of every package (dpkg path-exclude); this root must
# not, or `man xa-recover` could not work here.
sed -i '/^path-exclude=\/usr\/share\/man/d' "$new"/etc/dpkg/dpkg.cfg.d/* 2>/dev/null || true
mkdir -p "$new/tmp/debs" "$new/tmp/consumer"
cp "$@" "$new/tmp/debs/"
debs_inside=()
for deb in "$@"; do debs_inside+=("/tmp/debs/$(basename "$deb")"); done
cp -r "$repo/examples/find_package_consumer/." "$new/tmp/consumer/"
cp "$repo/daemons/agent/systemd/check_unit.sh" "$new/tmp/"
in_root() { chroot "$new" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

[[ ! -e "$new/usr/include/xa" ]] || die "/usr/include/xa exists before the install"
in_root apt-get install -y --no-install-recommends "${debs_inside[@]}" >"$new/tmp/apt.log" 2>&1 ||
  { cat "$new/tmp/apt.log"; die "apt-get install ./*.deb failed"; }
mapfile -t packages < <(for deb in "$@"; do dpkg-deb -f "$deb" Package; done)
mapfile -t files < <(in_root dpkg -L "${packages[@]}" | sort -u)
say "installed ${packages[*]} (${#files[@]} paths)"

# The consumers, against /usr: find_package(xa) and the pkg-config compiler line.
in_root cmake -S /tmp/consumer -B /tmp/consumer/build -G Ninja \
  "-DXA_CONSUMER_REQUIRE=mysql;odbc" >"$new/tmp/consumer.log" 2>&1 &&
  in_root cmake --build /tmp/consumer/build >>"$new/tmp/consumer.log" 2>&1 ||
  { cat "$new/tmp/consumer.log"; die "the find_package consumer did not build against /usr"; }
in_root /tmp/consumer/build/xa_consumer || die "the find_package consumer failed"
flags="$(in_root pkg-config --cflags --libs xa xa-mysql xa-odbc)" ||
  die "pkg-config does not know xa, xa-mysql, xa-odbc"
# shellcheck disable=SC2086  # the flags are words
in_root g++ -std=c++20 -DXA_CONSUMER_HAS_MYSQL=1 -DXA_CONSUMER_HAS_ODBC=1 \
  /tmp/consumer/main.cc $flags -o /tmp/consumer/xa_pkg_config_consumer ||
  die "the pkg-config consumer did not build against /usr"
in_root /tmp/consumer/xa_pkg_config_consumer || die "the pkg-config consumer failed"
say "both consumers built against /usr and ran"

# The tools run, and their man pages are where man looks.
in_root xa-recover --help >/dev/null || die "xa-recover --help failed"
in_root xa-agent --help >/dev/null || die "xa-agent --help failed"
in_root xa-log --help >/dev/null || die "xa-log --help failed"
in_root xa-msgd --help >/dev/null || die "xa-msgd --help failed"
if in_root sh -c 'command -v man' >/dev/null; then
  page="$(in_root man -w xa-recover)" || die "man xa-recover finds no page"
  say "man xa-recover: $page"
else
  die "man is not installed in this root (install man-db: scripts/install-deps.sh)"
fi
# The installed unit, its man pages included, as systemd would read it.
in_root bash /tmp/check_unit.sh /usr/lib/systemd/system/xa-agent@.service /usr/bin/xa-agent \
  --with-man-pages || die "the installed xa-agent@.service does not verify"
in_root bash /tmp/check_unit.sh /usr/lib/systemd/system/xa-msgd@.service /usr/bin/xa-msgd \
  --with-man-pages || die "the installed xa-msgd@.service does not verify"

# Removed cleanly: the packages are gone and so is every file they installed.
in_root apt-get purge -y "${packages[@]}" >"$new/tmp/purge.log" 2>&1 ||
  { cat "$new/tmp/purge.log"; die "apt-get purge failed"; }
left=()
for path in "${files[@]}"; do
  [[ -f "$new$path" || -L "$new$path" ]] && left+=("$path")
done
((${#left[@]} == 0)) || die "files left after the purge: ${left[*]}"
for package in "${packages[@]}"; do
  if in_root dpkg -s "$package" >/dev/null 2>&1; then die "$package is still installed"; fi
done
say "purged: no package and none of their files left"
INSIDE
say "passed"
