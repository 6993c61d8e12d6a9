#!/usr/bin/env python3
"""Side-by-side engine figures for two `skyform` binaries (e.g. before and after a change).

    python3 scripts/bench-engine-compare.py NEW_SKYFORM OLD_SKYFORM DIR_WITH_skyform-provider-fake

Builds the project benches/engine.rs builds (10,000 fake resources in chains of 10), then times
`preview` (no changes; 5 runs each) and `up --yes --parallel 64` from an empty state (3 runs
each), alternating the binaries, and prints medians, every run and the ratios.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

new, old, fakedir = sys.argv[1:4]
d = tempfile.mkdtemp(prefix="skyform-compare-")
open(f"{d}/Skyform.toml", "w").write('name = "bench"\nprogram = "cat manifest.json"\n')
open(f"{d}/Skyform.dev.toml", "w").write('provider = "local"\n[providers.fake]\nlatency_ms = 0\n')
resources = []
for i in range(10000):
    inputs = {"index": i, "tags": {"team": "bench", "tier": i % 7}, "size": 128}
    if i % 10:
        inputs["after"] = {"$ref": f"r{i-1:05}", "output": "id"}
    resources.append({"name": f"r{i:05}", "type": "fake:Resource", "inputs": inputs})
json.dump({"manifest": 1, "project": "bench", "stack": "dev", "resources": resources}, open(f"{d}/manifest.json", "w"))
env = dict(os.environ, PATH=fakedir + ":" + os.environ["PATH"])


def run(exe, *args, fresh=False):
    if fresh:
        shutil.rmtree(f"{d}/state", ignore_errors=True)
    try:  # an older binary takes the lock with create-if-absent
        os.remove(f"{d}/state/dev.lock")
    except FileNotFoundError:
        pass
    t = time.time()
    p = subprocess.run([exe, *args], cwd=d, env=env, capture_output=True, text=True)
    elapsed = time.time() - t
    assert p.returncode == 0, (exe, args, p.stdout[-500:], p.stderr[-500:])
    return elapsed


def compare(label, rounds, *args, fresh=False):
    times = {"new": [], "old": []}
    for r in range(rounds):
        order = (("new", new), ("old", old)) if r % 2 == 0 else (("old", old), ("new", new))
        for name, exe in order:
            times[name].append(run(exe, *args, fresh=fresh))
    for k, v in times.items():
        print(f"{label} {k}: median {statistics.median(v):.3f}s  runs {', '.join(f'{x:.3f}' for x in v)}")
    print(f"{label} new/old: {statistics.median(times['new']) / statistics.median(times['old']):.3f}")


compare("up 10k", 3, "up", "--yes", "--parallel", "64", fresh=True)
compare("preview 10k", 5, "preview")
os.system("uptime")
shutil.rmtree(d, ignore_errors=True)
