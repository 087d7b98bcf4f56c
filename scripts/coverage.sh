#!/usr/bin/env bash
# make coverage: line and branch coverage of src/ by the tests that need no servers (labels unit
# and process), per module (src/<module>) and in total. Builds the `coverage` preset (GCC,
# --coverage, -O0); the per-file report is left in build/coverage/coverage.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh
cmake --preset coverage -G Ninja >/dev/null
cmake --build --preset coverage -j "$jobs" --target pgha_unit_tests pgha_process_tests pgha-fence
# Counts from an earlier run would add up with this one's.
find build/coverage -name '*.gcda' -delete
ctest --preset coverage -L 'unit|process' -j "$jobs" --timeout 600 --no-tests=error >build/coverage/ctest.log ||
  { tail -30 build/coverage/ctest.log; exit 1; }

gcovr --root . --object-directory build/coverage --filter 'src/' --exclude-throw-branches \
  --exclude-unreachable-branches --json-summary build/coverage/summary.json \
  --txt build/coverage/coverage.txt >/dev/null
/usr/bin/python3 - build/coverage/summary.json <<'PY'
import collections, json, sys
files = json.load(open(sys.argv[1]))["files"]
modules = collections.OrderedDict()
for f in sorted(files, key=lambda f: f["filename"]):
    parts = f["filename"].split("/")
    module = "/".join(parts[:3]) if parts[1] in ("dcs", "api", "metrics") and len(parts) > 3 else "/".join(parts[:2])
    m = modules.setdefault(module, [0, 0, 0, 0])
    m[0] += f["line_covered"]; m[1] += f["line_total"]
    m[2] += f["branch_covered"]; m[3] += f["branch_total"]
def pct(a, b):
    return f"{100.0 * a / b:5.1f}%" if b else "    -"
print(f"{'module':<22} {'lines':>16} {'branches':>16}")
total = [0, 0, 0, 0]
for module, m in modules.items():
    total = [t + x for t, x in zip(total, m)]
    print(f"{module:<22} {pct(m[0], m[1])} {m[0]:>5}/{m[1]:<5} {pct(m[2], m[3])} {m[2]:>5}/{m[3]:<5}")
print(f"{'total':<22} {pct(total[0], total[1])} {total[0]:>5}/{total[1]:<5} {pct(total[2], total[3])} {total[2]:>5}/{total[3]:<5}")
PY
echo "per file: build/coverage/coverage.txt"
