#!/usr/bin/env bash
# Builds libshmframe (crates/shmframe-c) and installs it like any system library:
#
#   scripts/install-c.sh --prefix DIR [--profile release|dev]
#
#   DIR/include/shmframe.h, DIR/include/shmframe.hpp
#   DIR/lib/libshmframe.so -> libshmframe.so.SOVER -> libshmframe.so.VERSION, DIR/lib/libshmframe.a
#   DIR/lib/pkgconfig/shmframe.pc                        (pkg-config --cflags --libs shmframe)
#   DIR/lib/cmake/shmframe/shmframe-config.cmake         (find_package(shmframe) -> shmframe::shmframe)
#
# DESTDIR=STAGE stages the files under STAGE/DIR for packaging. --prefix defaults to /usr/local.
# A plain script rather than cargo-c: it needs nothing beyond cargo and coreutils, where
# `cargo install cargo-c` would compile a copy of cargo first (minutes on every fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
profile=release
libdir_name=lib
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --profile) profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --libdir-name) libdir_name="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-c.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in
  /*) ;;
  *) prefix="$(pwd -P)/$prefix" ;;
esac

cargo build -q -p shmframe-c --features libc-syscalls --profile "$profile"
target="${CARGO_TARGET_DIR:-target}"
out="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
so="$out/libshmframe.so"
[ -f "$so" ] && [ -f "$out/libshmframe.a" ] || { echo "install-c.sh: $so or libshmframe.a missing" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
soname="$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ -n "$soname" ] || { echo "install-c.sh: $so has no soname" >&2; exit 1; }
major="${version%%.*}"

stage="${DESTDIR:-}$prefix"
inc="$stage/include"
lib="$stage/$libdir_name"
install -d "$inc" "$lib/pkgconfig" "$lib/cmake/shmframe"
install -m 0644 crates/shmframe-c/include/shmframe.h crates/shmframe-c/include/shmframe.hpp "$inc/"
install -m 0755 "$so" "$lib/libshmframe.so.$version"
ln -sfn "libshmframe.so.$version" "$lib/$soname"
ln -sfn "$soname" "$lib/libshmframe.so"
install -m 0644 "$out/libshmframe.a" "$lib/libshmframe.a"

# What a Rust static library needs from the C runtime (rustc --print native-static-libs).
static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

cat >"$lib/pkgconfig/shmframe.pc" <<EOF
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/$libdir_name

Name: shmframe
Description: Named shared-memory channels for camera frames and N-d arrays between processes
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lshmframe
Libs.private: $static_libs
EOF

cat >"$lib/cmake/shmframe/shmframe-config-version.cmake" <<EOF
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$(echo "$version" | cut -d. -f2)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
EOF

# Relocatable: paths are found from this file's place, DIR/lib/cmake/shmframe.
cat >"$lib/cmake/shmframe/shmframe-config.cmake" <<EOF
# find_package(shmframe) defines shmframe::shmframe (the shared library; C and C++, header
# shmframe.h / shmframe.hpp) and shmframe::shmframe_static (libshmframe.a).
get_filename_component(_shmframe_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(shmframe_VERSION "$version")
set(shmframe_INCLUDE_DIRS "\${_shmframe_prefix}/include")
if(NOT TARGET shmframe::shmframe)
  add_library(shmframe::shmframe SHARED IMPORTED)
  set_target_properties(shmframe::shmframe PROPERTIES
    IMPORTED_LOCATION "\${_shmframe_prefix}/$libdir_name/libshmframe.so.$version"
    IMPORTED_SONAME "$soname"
    INTERFACE_INCLUDE_DIRECTORIES "\${_shmframe_prefix}/include")
endif()
if(NOT TARGET shmframe::shmframe_static)
  add_library(shmframe::shmframe_static STATIC IMPORTED)
  set_target_properties(shmframe::shmframe_static PROPERTIES
    IMPORTED_LOCATION "\${_shmframe_prefix}/$libdir_name/libshmframe.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_shmframe_prefix}/include"
    INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl")
endif()
set(shmframe_LIBRARIES shmframe::shmframe)
set(shmframe_FOUND TRUE)
unset(_shmframe_prefix)
EOF

echo "installed libshmframe $version ($soname) under $stage"
