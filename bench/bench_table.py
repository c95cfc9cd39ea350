"""The tables of bench/bench_accuracy.py, and --merge: one table from several of its --out files.

A results dict is {"machine", "settings", "sets": {set name: {"data": shapes and counts, "rows": [{"key",
"name", "result": {"acc": [per seed], "train_s": [per seed], ...} or {"skipped"/"error": line}}]}}}.
"""
import json
import sys

import numpy as np

from bench_peers import PEERS

# best published test accuracy, aeon-neuro's best of 30 resamples (as in README's table); BasicMotions: none
PUBLISHED = {"EyesOpenShut": 0.664, "FingerMovements": 0.581, "HandMovementDirection": 0.578,
             "SelfRegulationSCP2": 0.553}


def fmt_row(set_name, row, minirocket_s):
    res = row["result"]
    if "skipped" in res or "error" in res:
        return f"| {set_name} | {row['name']} | {'skipped' if 'skipped' in res else 'failed'} (see below) | | |"
    acc = np.array(res["acc"])
    std = acc.std(ddof=1) if len(acc) > 1 else 0.0
    seconds = float(np.mean(res["train_s"]))
    ratio = f"{seconds / minirocket_s:.1f}x" if minirocket_s else "—"
    per_seed = ", ".join(f"{a:.3f}" for a in acc)
    return f"| {set_name} | {row['name']} | {acc.mean():.3f} ± {std:.3f} ({per_seed}) | {seconds:.2f} | {ratio} |"


def print_table(results):
    print("\n| set | model | test accuracy mean ± std (per seed) | train s | time / MiniRocket |")
    print("|---|---|---|---:|---:|")
    for set_name, entry in results["sets"].items():
        mr = next((r["result"] for r in entry["rows"] if r["key"] == "aeon-minirocket"), {})
        minirocket_s = float(np.mean(mr["train_s"])) if mr.get("train_s") else None
        for row in entry["rows"]:
            print(fmt_row(set_name, row, minirocket_s))
    notes = [f"- {s} / {r['name']}: {r['result'].get('skipped') or r['result']['error']}"
             for s, e in results["sets"].items() for r in e["rows"] if "skipped" in r["result"] or "error" in r["result"]]
    if notes:
        print("\nskipped or failed:\n" + "\n".join(notes))


def mean_acc(row):
    """The row's test accuracy, mean over seeds; None when it was skipped or failed."""
    acc = row["result"].get("acc")
    return float(np.mean(acc)) if acc else None


def print_summary(results):
    """Per set: the default, the best peer and the best published result, the default's gaps to them in
    points; then each row's mean over the sets (rows that have every set) and over the EEG sets."""
    def f(x):
        return "—" if x is None else f"{x:.3f}"

    def gap(x, ref):
        return "—" if x is None or ref is None else f"{100 * (x - ref):+.1f}"

    print("\n| set | biosig default | best peer | default − best peer (points) | best published | default − published |")
    print("|---|---:|---|---:|---:|---:|")
    for set_name, entry in results["sets"].items():
        accs = {r["key"]: mean_acc(r) for r in entry["rows"]}
        names = {r["key"]: r["name"] for r in entry["rows"]}
        peers = {key: acc for key, acc in accs.items() if key in PEERS and acc is not None}
        best = max(peers.values()) if peers else None
        best_names = " = ".join(names[k] for k, acc in peers.items() if acc == best)   # ties: all of them
        default, published = accs.get("default"), PUBLISHED.get(set_name)
        print(f"| {set_name} | {f(default)} | {best_names + ' ' + f(best) if peers else '—'} | "
              f"{gap(default, best)} | {f(published)} | {gap(default, published)} |")
    for label, names in (("the sets", list(results["sets"])),
                         ("the EEG sets", [s for s in results["sets"] if s in PUBLISHED])):
        per_row = {}
        for set_name in names:
            for r in results["sets"][set_name]["rows"]:
                per_row.setdefault(r["name"], []).append(mean_acc(r))
        means = [f"{name} {np.mean(v):.3f}" for name, v in per_row.items() if len(v) == len(names) and None not in v]
        if len(names) > 1 and means:
            print(f"mean over {label} ({len(names)}): " + "; ".join(means))


def fail(message):
    """A user error: one line, exit status 2."""
    print(f"bench_accuracy.py: {message}", file=sys.stderr)
    sys.exit(2)


def merge(paths):
    """One results dict from several --out files measured with the same seeds. Rows keep the order
    default, biosig models, peers; a later file's row replaces an earlier file's of the same key and set."""
    merged = {"merged_from": [], "sets": {}}
    for path in paths:
        try:
            with open(path) as f:
                res = json.load(f)
        except (OSError, ValueError) as e:
            fail(f"--merge {path}: cannot read it ({type(e).__name__}: {e})")
        if not isinstance(res, dict) or "sets" not in res or "settings" not in res:
            fail(f"--merge {path}: not a bench_accuracy.py --out file (no 'sets' / 'settings')")
        if merged["merged_from"]:
            first = merged["merged_from"][0]
            if res["settings"].get("seeds") != first["settings"].get("seeds"):
                fail(f"--merge {path}: seeds {res['settings'].get('seeds')} differ from {first['settings'].get('seeds')} "
                     f"in {first['path']}")
            differ = sorted(k for k in set(first["settings"]) | set(res["settings"]) if k != "peer_python"
                            and first["settings"].get(k) != res["settings"].get(k))
            if differ:
                print(f"note: {path} differs from {first['path']} in {', '.join(differ)}")
        merged["merged_from"].append({"path": path, "machine": res.get("machine"), "settings": res["settings"],
                                      "wall_s": res.get("wall_s")})
        for set_name, entry in res["sets"].items():
            target = merged["sets"].setdefault(set_name, {"data": entry["data"], "rows": []})
            for row in entry["rows"]:
                old = [i for i, r in enumerate(target["rows"]) if r["key"] == row["key"]]
                if old:
                    print(f"note: {set_name} / {row['name']} from {path} replaces the earlier file's")
                    target["rows"][old[0]] = row
                else:
                    target["rows"].append(row)
    order = list(PEERS)
    for entry in merged["sets"].values():
        entry["rows"].sort(key=lambda r: 0 if r["key"] == "default" else 2 + order.index(r["key"])
                           if r["key"] in PEERS else 1)    # stable: biosig models keep their order
    merged["settings"] = merged["merged_from"][0]["settings"]
    return merged
