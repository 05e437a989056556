#!/usr/bin/env bash
# Bootstraps everything manygil needs to build and test, idempotently:
#   1. a CPython >= 3.12 with headers and a shared libpython (found, or built once into a cache), and
#      with MANYGIL_FREE_THREADED=1 a free-threaded build of it too (a peer for `manygil bench`);
#   2. the Debian packages the build and the C++ tests need (GoogleTest);
#   3. the project's virtual environment at .venv with the build/test tools from PyPI.
# A second run finds everything cached and takes seconds. Each step prints one line.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${MANYGIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/manygil}
venv="$repo/.venv"
requirements="$repo/requirements-dev.txt"
# The CPython series we build when none is found, from Debian's source archive: the newest patch
# release 'sid' or 'trixie' serves (newer patch releases fix sub-interpreter crashes, docs/cpython-bugs.md).
build_series=3.13
debian_suites=${MANYGIL_DEBIAN_SUITES:-"sid trixie"}

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
since() { echo "$(( $(now) - $1 ))s"; }

# --- 1. CPython ---------------------------------------------------------------------------------

# Prints "VERSION PREFIX" when $1 is a usable CPython (>= 3.12, GIL build, headers, shared libpython).
probe_python() {
  "$1" - <<'PY' 2>/dev/null
import os, sys, sysconfig
if sys.implementation.name != "cpython" or sys.version_info < (3, 12): raise SystemExit(1)
if sysconfig.get_config_var("Py_GIL_DISABLED"): raise SystemExit(1)
if not sysconfig.get_config_var("Py_ENABLE_SHARED"): raise SystemExit(1)
if not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")): raise SystemExit(1)
lib = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY"))
if not os.path.exists(lib): raise SystemExit(1)
print("%d.%d.%d" % sys.version_info[:3], sys.executable)
PY
}

python=""
if [ -n "${MANYGIL_PYTHON:-}" ]; then
  found=$(probe_python "$MANYGIL_PYTHON") ||
    die "MANYGIL_PYTHON=$MANYGIL_PYTHON is not a CPython >= 3.12 with headers and a shared libpython"
  python=${found#* }
  say "python: $python (${found%% *}, from MANYGIL_PYTHON)"
fi
if [ -z "$python" ]; then
  for name in python3.14 python3.13 python3.12; do
    exe=$(command -v "$name" 2>/dev/null) || continue
    if found=$(probe_python "$exe"); then
      python=${found#* }
      say "python: $python (${found%% *}, found on PATH as $name)"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  # Reuse the newest complete build in the cache without asking the network.
  for dir in $(ls -d "$cache"/cpython-"$build_series".* 2>/dev/null | sort -V -r); do
    if [ -f "$dir/.complete" ] && found=$(probe_python "$dir/bin/python$build_series"); then
      python=${found#* }
      say "python: $python (${found%% *}, cached build)"
      break
    fi
  done
fi

debian_build_deps=(build-essential pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev
  libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libncurses-dev libexpat1-dev xz-utils)
test_deps=(libgtest-dev libgmock-dev clang-14 libclang-rt-14-dev)  # GoogleTest; clang + libFuzzer for make fuzz
# llhttp (Node's HTTP/1.1 parser): Debian ships its C sources in node-llhttp; the HTTP front end
# (src/http/) compiles them in. libwslay-dev: WebSocket framing (RFC 6455) for the same front end
# (src/http/websocket*.cpp), found with pkg-config. curl: the serve tests' second HTTP client; wrk:
# make bench's load generator (bench/serve.py).
build_deps=(node-llhttp libwslay-dev curl wrk)
# PostgreSQL's server (initdb, pg_ctl, postgres, psql in /usr/lib/postgresql/<version>/bin) and libpq:
# the Django and Flask + SQLAlchemy tests and benchmarks start a throwaway cluster of their own
# (tests/python/temp_postgres.py); psycopg's pure-Python implementation loads libpq5 through ctypes.
db_deps=(postgresql libpq5)
# Redis: the SharedDict benchmark's peer (bench/shared_dict.py starts its own on a Unix socket).
cache_deps=(redis-server)

apt_updated=0
ensure_debian_packages() {  # $1: what they are for; rest: package names
  local why=$1; shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "debian packages for $why: present"; return; fi
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages for $why; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  fi
  local t=$(now) log="$cache/apt.log"
  mkdir -p "$cache"
  if [ $apt_updated -eq 0 ]; then
    apt-get update > "$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >> "$log" 2>&1 ||
    { tail -20 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"; }
  say "debian packages for $why: installed ${missing[*]} ($(since $t))"
}

# The Debian mirror this machine's apt already uses: the first "URIs:" of a deb822 source, else the
# first "deb" line of sources.list (security and update archives carry no CPython source).
debian_mirror() {
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n' |
      grep -v -e '-security' -e '^$' | head -1)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $2 !~ /-security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${m:-http://deb.debian.org/debian}"
}

# Sets $version and $tarball: the upstream source of the newest python$build_series that Debian's
# archive actually serves, downloaded once. Suites are tried newest first ('sid' lists patch releases
# long before 'trixie', but some listed versions answer 404), falling back to trixie's.
fetch_cpython_source() {
  ensure_debian_packages "building CPython" "${debian_build_deps[@]}"
  # Ask Debian's source archive through a private sources list and private state, leaving the
  # machine's apt configuration alone.
  local mirror; mirror=$(debian_mirror)
  apt_dir=$(mktemp -d); trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial"
  for suite in $debian_suites; do echo "deb-src $mirror $suite main"; done > "$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
            -o "Dir::State::Lists=$apt_dir/lists" -o Dir::State::status=/dev/null)
  apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 || die "cannot read Debian's source index at $mirror"
  local candidates
  candidates=$(apt-cache "${apt_opts[@]}" showsrc "python$build_series" 2>/dev/null |
               awk '/^Version:/ {print $2}' | sort -V -r -u)
  [ -n "$candidates" ] || die "Debian ($mirror: $debian_suites) has no source package python$build_series"
  src="$cache/src"; mkdir -p "$src"
  for debver in $candidates; do
    version=${debver%%-*}          # 3.13.15-1 -> 3.13.15 (we build the upstream tarball)
    tarball="$src/python${build_series}_$version.orig.tar.xz"
    [ -f "$tarball" ] && return
    if (cd "$apt_dir" && apt-get "${apt_opts[@]}" source --download-only -qq "python$build_series=$debver" \
          >/dev/null 2>&1) && [ -f "$apt_dir/python${build_series}_$version.orig.tar.xz" ]; then
      mv "$apt_dir/python${build_series}_$version.orig.tar.xz" "$tarball"
      return
    fi
    say "python$build_series $debver is listed by Debian but cannot be downloaded; trying an older one"
  done
  die "no listed version of Debian's source package python$build_series could be downloaded ($candidates)"
}

# build_cpython PREFIX [CONFIGURE ARGS...]: builds $tarball into PREFIX (marked complete when done).
build_cpython() {
  local prefix=$1; shift
  local work="$src/Python-$version-build" log="$prefix.build.log"
  rm -rf "$work" "$prefix"; mkdir -p "$work"; tar -C "$work" --strip-components=1 -xf "$tarball"
  (cd "$work" &&
    ./configure --prefix="$prefix" --enable-shared --with-ensurepip=install \
      LDFLAGS="-Wl,-rpath=$prefix/lib" "$@" &&
    make -j"$(nproc)" && make install) > "$log" 2>&1 || die "CPython build failed; see $log"
  rm -rf "$work"
  touch "$prefix/.complete"
}

if [ -z "$python" ]; then
  t=$(now)
  fetch_cpython_source
  prefix="$cache/cpython-$version"
  if [ -f "$prefix/.complete" ]; then
    python="$prefix/bin/python$build_series"
    say "python: $python ($version, cached build)"
  else
    say "python: none >= 3.12 with a shared libpython found; building CPython $version into $prefix (about 3 min)"
    build_cpython "$prefix"
    python="$prefix/bin/python$build_series"
    say "python: built $python in $(since $t) (log: $prefix.build.log)"
  fi
fi

# --- 1b. On request (make peers): a free-threaded build of the same CPython, a peer for the bench ----------
if [ "${MANYGIL_FREE_THREADED:-0}" = 1 ]; then
  t=$(now)
  fetch_cpython_source
  ft_prefix="$cache/cpython-$version-ft"
  if [ -f "$ft_prefix/.complete" ]; then
    say "free-threaded python: $ft_prefix/bin/python${build_series}t (cached build)"
  else
    say "free-threaded python: building CPython $version --disable-gil into $ft_prefix (about 3 min)"
    build_cpython "$ft_prefix" --disable-gil
    say "free-threaded python: built $ft_prefix/bin/python${build_series}t in $(since $t)"
  fi
fi

# --- 2. Debian packages for the build and the C++ tests ----------------------------------------------
ensure_debian_packages "the HTTP front end and its tests" "${build_deps[@]}"
ensure_debian_packages "the C++ tests and fuzzers" "${test_deps[@]}"
ensure_debian_packages "the PostgreSQL tests and benchmarks" "${db_deps[@]}"
ensure_debian_packages "the cache benchmark" "${cache_deps[@]}"

# --- 3. The project's virtual environment --------------------------------------------------------------
stamp="$venv/.manygil-stamp"
want="$python $(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  say "venv: $venv up to date"
else
  t=$(now)
  rm -rf "$venv"
  "$python" -m venv "$venv"
  mkdir -p "$cache"
  "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" > "$cache/pip.log" 2>&1 ||
    { tail -20 "$cache/pip.log" >&2; die "pip install -r requirements-dev.txt failed (log: $cache/pip.log)"; }
  echo "$want" > "$stamp"
  say "venv: created $venv with $(tr '\n' ' ' < "$requirements" | sed 's/ *$//') ($(since $t))"
fi

# --- 4. The last DuckDB 1.x beside the venv --------------------------------------------------------------
# make test runs manygil.duckdb's tests a second time with it first on PYTHONPATH: 1.x is still what
# many installs pin, and its Python API differs from 2.x in places (duckdb.typing, the UDF checks).
duckdb1_version="1.5.6"  # with pytz, which 1.x needs for TIMESTAMP WITH TIME ZONE
duckdb1="$venv/duckdb-1.x"
if [ "$(cat "$duckdb1/.manygil-stamp" 2>/dev/null)" = "$duckdb1_version+pytz" ]; then
  say "duckdb $duckdb1_version: $duckdb1 up to date"
else
  rm -rf "$duckdb1"
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-deps --target "$duckdb1" \
    "duckdb==$duckdb1_version" pytz > "$cache/pip-duckdb1.log" 2>&1 ||
    { tail -20 "$cache/pip-duckdb1.log" >&2; die "pip install duckdb==$duckdb1_version failed (log: $cache/pip-duckdb1.log)"; }
  echo "$duckdb1_version+pytz" > "$duckdb1/.manygil-stamp"
  say "duckdb $duckdb1_version: installed into $duckdb1 (for the DuckDB 1.x test run)"
fi
