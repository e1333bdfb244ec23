#!/usr/bin/env python3
"""The kernel matrix's table, from each VM's serial log.

Usage: report.py RESULTS_DIR KVER...
Prints kernel x check -> ok (variant) / FAIL / missing, the reasons of every
failure, the time each kernel took; exits 1 if anything failed or a VM did
not finish (a missing line is a failure: nothing passes by not running).
"""
import json
import re
import sys
from pathlib import Path

results, kernels = Path(sys.argv[1]), sys.argv[2:]


def short(kver):
    return re.match(r"(\d+\.\d+)", kver).group(1)


rows, table, failures, seconds, done = [], {}, [], {}, {}
for k in kernels:
    log = results / k / "serial.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    done[k] = "IGVM-GUEST-DONE" in text
    sec = results / k / "seconds"
    seconds[k] = sec.read_text().strip() if sec.exists() else "?"
    for line in text.splitlines():
        m = re.match(r".*IGVM-RESULT (.+?) (ok|FAIL)(?: (.*))?$", line)
        if not m:
            continue
        name, status, what = m.groups()
        what = what or ""
        if name not in rows:
            rows.append(name)
        table[(name, k)] = (status, what)
        if status == "FAIL":
            failures.append(f"{short(k)} {name}: {what}")
    if not done[k]:
        tail = " | ".join(text.strip().splitlines()[-5:])
        failures.append(f"{short(k)}: the VM did not finish (serial log: {tail or 'empty'})")

# Every kernel must have every check any kernel ran (runc only runs where
# kernels.txt asks for it, and the guest fails it there if runc is missing).
for name in rows:
    for k in kernels:
        if (name, k) not in table and done[k] and not name.startswith("runc-"):
            failures.append(f"{short(k)} {name}: no result")

width = max([len(r) for r in rows] + [18])
head = f"{'':<{width}}" + "".join(f" {short(k):<22}" for k in kernels)
print(head)
for name in rows:
    cells = []
    for k in kernels:
        status, what = table.get((name, k), ("-", ""))
        if status == "ok":
            # "<variant> <seconds>s" for a gadget, free text for the other checks
            m = re.match(r"^(.*) [\d.]+s$", what)
            variant = m.group(1) if m else ""
            cells.append(("ok " + variant).strip()[:22])
        else:
            cells.append(status)
    print(f"{name:<{width}}" + "".join(f" {c:<22}" for c in cells))
print(f"{'seconds':<{width}}" + "".join(f" {seconds[k]:<22}" for k in kernels))
if failures:
    print("\nfailures:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print(f"\nall {len(rows)} checks passed on {len(kernels)} kernels")
