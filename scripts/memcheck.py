#!/usr/bin/env python3
"""Runs the unit tests of a build under valgrind memcheck and fails on any memory error.

    scripts/memcheck.py BUILD_DIR [-j N] [-R REGEX] [-E REGEX] [--timeout SECONDS]

The test list, commands, environment and working directories come from ctest itself
(ctest -N -L unit --show-only=json-v1), so a new tests/unit/test_*.c is covered without
touching this script. Each test runs as

    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
             --show-leak-kinds=definite --suppressions=tests/valgrind.supp
             --log-file=<dir>/<test>.%p.log <test binary>

with BLOG_VALGRIND=1 in its environment (the knob a test may use to shrink a workload that
would take minutes under valgrind). A test passes when
  - the test itself passes (exit status 0, within the timeout), and
  - its own process reports no memcheck error at all and no definitely lost block
    (valgrind's ERROR SUMMARY is 0), and
  - every process it forked reports no memcheck error (invalid read/write, use of
    uninitialised memory, bad free, bad syscall argument, ...). Leaks are not counted in
    forked children: a child that ends with _exit() (as a fork-based test's children must,
    to leave the parent's cmocka state alone) still holds copies of its parent's heap, and
    memcheck reports whatever the child's stack no longer points to as lost. The parent's
    own leaks are counted, and the ASan stage checks leaks too.

--error-exitcode is not used on purpose: it would change the exit status of forked
children, which the tests check. The verdict comes from the logs instead. The last line is
ctest's summary line: "100% tests passed, 0 tests failed out of N".
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = re.compile(r"^==(\d+)== ?(.*)$")
FRAME = re.compile(r"^\s+(at|by) 0x[0-9A-Fa-f]+")


def list_tests(build, include, exclude):
    out = subprocess.run(["ctest", "--test-dir", build, "-N", "-L", "unit",
                          "--show-only=json-v1"], check=True, capture_output=True, text=True)
    tests = []
    for t in json.loads(out.stdout).get("tests", []):
        name = t["name"]
        if include and not re.search(include, name):
            continue
        if exclude and re.search(exclude, name):
            continue
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        tests.append({
            "name": name,
            "command": t["command"],
            "env": props.get("ENVIRONMENT", []),
            "cwd": props.get("WORKING_DIRECTORY", build),
        })
    return tests


def parse_log(path):
    """Returns (pid, parent_pid, error_summary or None, blocks) for one valgrind log."""
    pid = ppid = None
    summary = None
    blocks = []
    cur = []
    with open(path, errors="replace") as f:
        for raw in f:
            m = PREFIX.match(raw.rstrip("\n"))
            if not m:
                continue
            pid = int(m.group(1))
            line = m.group(2)
            if line.startswith("Parent PID:"):
                ppid = int(line.split(":")[1])
            s = re.match(r"ERROR SUMMARY: (\d+) errors", line)
            if s:
                summary = int(s.group(1))
            if line.strip() == "":
                if cur:
                    blocks.append(cur)
                cur = []
            else:
                cur.append(line)
    if cur:
        blocks.append(cur)
    # an error (or leak record) is a message followed by a stack trace
    errors = [b for b in blocks if len(b) >= 2 and FRAME.match(b[1])]
    return pid, ppid, summary, errors


def judge(logs):
    """Returns a list of problems (strings) found in the logs of one test."""
    parsed = [p for p in (parse_log(path) for path in logs) if p[0] is not None]
    pids = {p[0] for p in parsed if p[0] is not None}
    problems = []
    mains = [p for p in parsed if p[1] not in pids]
    if len(mains) != 1:
        problems.append("expected one top-level valgrind log, found %d" % len(mains))
    for pid, ppid, summary, errors in parsed:
        is_main = ppid not in pids
        who = "test process %s" % pid if is_main else "forked child %s" % pid
        for e in errors:
            if "in loss record" in e[0]:
                if is_main and "definitely lost" in e[0]:
                    problems.append("%s: %s" % (who, "\n    ".join(e)))
                continue
            problems.append("%s: %s" % (who, "\n    ".join(e)))
        if is_main and summary is None:
            problems.append("%s: no ERROR SUMMARY (did it die by a signal?)" % who)
        elif is_main and summary != 0 and not problems:
            problems.append("%s: ERROR SUMMARY: %d errors" % (who, summary))
    return problems


def run_one(t, args, logdir, lock, counter, total, results):
    name = t["name"]
    for old in os.listdir(logdir):
        if old.startswith(name + "."):
            os.unlink(os.path.join(logdir, old))
    env = dict(os.environ)
    for kv in t["env"]:
        k, _, v = kv.partition("=")
        env[k] = v
    env["BLOG_VALGRIND"] = "1"
    cmd = [args.valgrind, "--tool=memcheck", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
           "--num-callers=30", "--suppressions=" + os.path.join(ROOT, "tests/valgrind.supp"),
           "--log-file=" + os.path.join(logdir, name + ".%p.log")] + t["command"]
    out_path = os.path.join(logdir, name + ".out")
    t0 = time.monotonic()
    timed_out = False
    with open(out_path, "w") as out:
        p = subprocess.Popen(cmd, cwd=t["cwd"], env=env, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = p.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, 9)
            rc = p.wait()
    secs = time.monotonic() - t0
    logs = [os.path.join(logdir, f) for f in sorted(os.listdir(logdir))
            if f.startswith(name + ".") and f.endswith(".log")]
    problems = []
    if timed_out:
        problems.append("timed out after %d s" % args.timeout)
    elif rc != 0:
        problems.append("the test failed (exit status %d)" % rc)
    problems += judge(logs)
    with lock:
        counter[0] += 1
        status = "Passed" if not problems else "***Failed"
        print("%3d/%d MemCheck %s %-9s %7.2f sec"
              % (counter[0], total, (name + " ").ljust(34, "."), status, secs), flush=True)
        if problems:
            for pr in problems[:20]:
                print("    " + pr)
            if len(problems) > 20:
                print("    ... %d more" % (len(problems) - 20))
            if rc != 0 or timed_out:
                with open(out_path, errors="replace") as f:
                    tail = f.readlines()[-40:]
                print("    --- last lines of the test output (%s):" % out_path)
                for l in tail:
                    print("    " + l.rstrip("\n"))
            sys.stdout.flush()
        results[name] = (not problems, secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("-j", type=int, default=int(os.environ.get("BLOG_MEMCHECK_JOBS", "2")))
    ap.add_argument("-R", dest="include", default=None, help="only tests matching REGEX")
    ap.add_argument("-E", dest="exclude", default=None, help="skip tests matching REGEX")
    ap.add_argument("--timeout", type=int,
                    default=int(os.environ.get("BLOG_MEMCHECK_TIMEOUT", "900")),
                    help="seconds per test (default 900)")
    ap.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    args = ap.parse_args()
    build = os.path.abspath(args.build)

    tests = list_tests(build, args.include, args.exclude)
    if not tests:
        print("memcheck: no unit tests in %s" % build, file=sys.stderr)
        return 2
    logdir = os.path.join(build, "memcheck")
    os.makedirs(logdir, exist_ok=True)
    print("memcheck: %d unit tests under valgrind, %d at a time, logs in %s"
          % (len(tests), args.j, logdir), flush=True)
    lock = threading.Lock()
    counter = [0]
    results = {}
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j)) as ex:
        futs = [ex.submit(run_one, t, args, logdir, lock, counter, len(tests), results)
                for t in tests]
        for f in futs:
            f.result()
    failed = [n for n, (ok, _) in sorted(results.items()) if not ok]
    print()
    if failed:
        print("The following tests FAILED under valgrind:")
        for n in failed:
            print("\t%s" % n)
    print("Total Test time (real) = %.2f sec" % (time.monotonic() - t0))
    print()
    n = len(tests)
    pct = int(100 * (n - len(failed)) / n)
    print("%d%% tests passed, %d tests failed out of %d" % (pct, len(failed), n))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
