"""The best point's per-fold scores and its honest report as text lines, from best.json alone.
The sweep prints them at the end and the sweep report shows the same lines; a leaf module (no
imports) so that the report can read it without importing the sweep's machinery."""


def best_lines(best):
    """The best point's cross-validation folds and its honest report, as text lines."""
    lines = []
    if best.get("cv") and best["cv"]["folds"] and not best["cv"]["nested"]:
        groups = best["cv"].get("groups", {})
        # one point (the best on the mean over folds) scored on each fold, not each fold's own best point
        lines.append(f"the best point's score on each fold ({best['metric']}): " + "  ".join(
            f"{k}{' (group ' + ','.join(map(str, groups[k])) + ')' if len(groups.get(k, [])) == 1 else ''}: {v:.4f}"
            for k, v in best["cv"]["folds"].items()))
    r = best["report"]
    for o in r.get("outer", []):
        test = "-" if o["test"] is None else f"{o['test']:.4f}"
        lines.append(f"outer fold {o['test_fold']}: chose {o['point']} ({best['metric']} {o['selection']:.4f} on "
                     f"inner folds) -> {r['metric']} {test}")
    if r["score"] is not None:
        spread = f" ± {r['std']:.4f}" if r["std"] is not None else ""
        lines.append(f"report: {r['metric']} {r['score']:.4f}{spread} on {r['reported_on']}"
                     + (" -- the same data that chose the point: optimistic" if r["same_data_as_selection"] else
                        f" (chosen on {r['selected_on']})"))
    return lines
