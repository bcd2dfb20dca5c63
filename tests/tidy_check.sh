#!/usr/bin/env bash
# clang-tidy (the root .clang-tidy, WarningsAsErrors '*') over every tracked .cc file under
# controller/ and tests/, with a build tree's compile_commands.json; tests/fuzz is left out (its
# targets are built with libFuzzer's conventions and checked by `make fuzz`). Two files at a time.
# Prints the findings of each failing file and exits non-zero on any finding.
# Run by ctest as tidy_check (label lint; `make test` runs it) and by `make lint`.
#
# Clean results are cached, so a warm run takes about 20 s instead of half an hour or more: a file
# whose check was clean is skipped while its key is unchanged. The key is a SHA-256 over
# `clang-tidy --version`, every .clang-tidy from the file's folder up, the file's compile command,
# its preprocessed output (the compile command with -E) and the raw content of every file the
# preprocessor read (so a header's change counts, comments and NOLINT included). The build and
# checkout paths are left out of the key, so another clone on the same machine reuses it. Stamps
# live in ${ROLLGATE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/rollgate}/tidy (one empty-ish file per
# clean key; unused for 60 days, removed). Findings are never cached: a failing file is checked
# on every run. ROLLGATE_TIDY_NO_CACHE=1 ignores the cache (checks everything, stores nothing).
#
# Usage: tests/tidy_check.sh [BUILD_DIR]   (default: build; CMAKE_EXPORT_COMPILE_COMMANDS is ON)
# Environment: CLANG_TIDY (default clang-tidy), ROLLGATE_TIDY_NO_CACHE, ROLLGATE_CACHE.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cd "$root"
tidy=${CLANG_TIDY:-clang-tidy}
command -v "$tidy" >/dev/null || { echo "tidy check: $tidy is not installed" >&2; exit 1; }
db=$build/compile_commands.json
[[ -f "$db" ]] || { echo "tidy check: no $db (configure the build first)" >&2; exit 1; }
build=$(cd "$build" && pwd)
db=$build/compile_commands.json

mapfile -t files < <(git ls-files 'controller/*.cc' 'tests/*.cc' | grep -v '^tests/fuzz/' |
  while read -r f; do [[ -f "$f" ]] && echo "$f"; done)
# A file the build does not compile would be checked with guessed flags: refuse instead.
mapfile -t unknown < <(python3 - "$db" "$root" "${files[@]}" <<'EOF'
import json, os, sys
db, root, files = sys.argv[1], sys.argv[2], sys.argv[3:]
known = {os.path.normpath(os.path.join(e["directory"], e["file"])) for e in json.load(open(db))}
for f in files:
    if os.path.normpath(os.path.join(root, f)) not in known:
        print(f)
EOF
)
if ((${#unknown[@]})); then
  echo "tidy check: not in $db (re-run cmake): ${unknown[*]}"
  exit 1
fi

start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache=${ROLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollgate}/tidy
use_cache=1
[[ ${ROLLGATE_TIDY_NO_CACHE:-} == 1 ]] && use_cache=0
if ((use_cache)) && ! mkdir -p "$cache" 2>/dev/null; then
  echo "tidy check: cannot create $cache; checking every file, caching nothing"
  use_cache=0
fi

# Each file with its cache key ("-": no key, always checked), two preprocessors at a time.
if ((use_cache)); then
  find "$cache" -type f -mtime +60 -delete 2>/dev/null || true
  "$tidy" --version >"$work/version"
  # key.py DB ROOT BUILD VERSION_FILE FILE...: prints KEY<tab>FILE for each FILE.
  cat >"$work/key.py" <<'EOF'
import concurrent.futures, hashlib, json, os, re, shlex, subprocess, sys

db, root, build, version_file = sys.argv[1:5]
files = sys.argv[5:]
version = open(version_file).read().rstrip("\n")
entries = {}
for e in json.load(open(db)):
    entries.setdefault(os.path.normpath(os.path.join(e["directory"], e["file"])), []).append(e)
marker = re.compile(rb'^# \d+ "([^"]*)"', re.M)


def norm(data):  # the checkout's and the build tree's paths do not change a finding
    return data.replace(build.encode(), b"@BUILD@").replace(root.encode(), b"@ROOT@")


def preprocess_argv(entry):  # the compile command, preprocessing to stdout
    argv = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
        elif a in ("-c", "-MD", "-MMD") or (a.startswith("-o") and len(a) > 2):
            pass
        else:
            out.append(a)
    return out + ["-E"]


def key(f):
    path = os.path.normpath(os.path.join(root, f))
    h = hashlib.sha256(b"rollgate tidy cache 1\0-p BUILD --quiet\0")
    h.update(version.encode() + b"\0")
    d, level = os.path.dirname(path), 0
    while True:  # the .clang-tidy that applies and every one it could inherit from
        cfg = os.path.join(d, ".clang-tidy")
        if os.path.isfile(cfg):
            h.update(b"config %d\0" % level + open(cfg, "rb").read() + b"\0")
        if d == os.path.dirname(d):
            break
        d, level = os.path.dirname(d), level + 1
    for e in entries[path]:
        h.update(norm(json.dumps([e["directory"], e.get("arguments", e.get("command"))]).encode()))
        try:
            pp = subprocess.run(preprocess_argv(e), cwd=e["directory"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return "-"
        h.update(b"\0preprocessed\0" + norm(pp))
        # Sorted by the normalised path: a checkout under /tmp sorts before /usr, one under
        # /work after it, and the key must not depend on where the clone is.
        for inc in sorted(set(marker.findall(pp)), key=norm):
            p = os.path.join(e["directory"], inc.decode(errors="surrogateescape"))
            if os.path.isfile(p):
                h.update(b"\0file\0" + norm(inc) + b"\0" + open(p, "rb").read())
    return h.hexdigest()


with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for f, k in zip(files, pool.map(key, files)):
        print(f"{k}\t{f}")
EOF
  python3 "$work/key.py" "$db" "$root" "$build" "$work/version" "${files[@]}" >"$work/keys"
else
  for f in "${files[@]}"; do printf -- '-\t%s\n' "$f"; done >"$work/keys"
fi
todo=()
while IFS=$'\t' read -r key f; do
  if ((use_cache)) && [[ $key != - && -f $cache/$key ]]; then
    touch "$cache/$key"  # still in use: kept by the 60-day clean-up
  else
    todo+=("$key" "$f")
  fi
done <"$work/keys"
checked=$((${#todo[@]} / 2))
cached=$((${#files[@]} - checked))
mkdir "$work/reports"

# One clang-tidy per file; the findings of a file go to a report of its own (no interleaving). A
# clean file's key becomes a stamp if the file still has that key (it was not edited meanwhile);
# the stamp is written whole, then renamed: runs may share the cache.
if ((checked)); then
  printf '%s\0' "${todo[@]}" | xargs -0 -P2 -n2 bash -c '
    key=$7 f=$8
    if ! out=$(nice "$0" -p "$1" --quiet "$f" 2>&1); then
      printf "== %s\n%s\n" "$f" "$(grep -E "(error|warning):" <<<"$out" || printf "%s" "$out")" \
        >"$2/reports/${f//\//_}"
    elif (($3)) && [[ $key != - ]] &&
      [[ $(python3 "$2/key.py" "$5" "$6" "$1" "$2/version" "$f" | cut -f1) == "$key" ]]; then
      printf "%s\n" "$f" >"$4/.$key.$BASHPID" && mv -f "$4/.$key.$BASHPID" "$4/$key"
    fi' "$tidy" "$build" "$work" "$use_cache" "$cache" "$db" "$root" || true
fi
mapfile -t failing < <(find "$work/reports" -type f | sort)
((${#failing[@]} == 0)) || cat "${failing[@]}"
summary="$checked checked, $cached from the cache; $((SECONDS - start))s"
((use_cache)) || summary="$checked checked, cache off; $((SECONDS - start))s"
if ((${#failing[@]} > 0)); then
  echo "tidy check: FAIL (${#failing[@]} of ${#files[@]} files with findings; $summary)"
  exit 1
fi
echo "tidy check: ${#files[@]} files clean ($summary)"
