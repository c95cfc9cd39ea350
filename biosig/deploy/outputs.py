"""infer.py's predictions file (--out): .npy values, or .csv/.jsonl rows from the task's records."""
import os


def write_predictions(path, task, pred, softmax, leak=None, onsets=None):
    """Atomically write predictions: .npy the task's (B, ...) "values"; .csv or .jsonl its
    records (task.records: a row per window, or per window and frame), numbers in .csv to 6
    significant digits. With a group check (`leak`), each record says whether its window's
    group was seen in training: "seen" is train, val or empty. With onsets (B,) seconds, each
    record has its window's onset_s after "sample" (.csv: to the microsecond)."""
    import csv
    import json

    import numpy as np

    from ..atomic import atomic_path
    ext = os.path.splitext(path)[1]
    with atomic_path(path) as tmp:
        with (open(tmp, "wb") if ext == ".npy" else open(tmp, "w", newline="")) as f:
            if ext == ".npy":
                np.save(f, pred["values"].astype(np.float32))
            elif ext == ".csv":
                writer = csv.writer(f, lineterminator="\n")
                for i, row in enumerate(task.records(pred, softmax, flat=True)):
                    if onsets is not None:
                        row = {"sample": row["sample"], "onset_s": round(float(onsets[row["sample"]]), 6), **row}
                    if leak is not None:
                        row["seen"] = str(leak["seen"][row["sample"]])
                    if i == 0:
                        writer.writerow(row)
                    writer.writerow([v if k == "onset_s" else f"{v:.6g}" if isinstance(v, float) else v
                                     for k, v in row.items()])
            else:
                for row in task.records(pred, softmax, flat=False):
                    if onsets is not None:
                        row = {"sample": row["sample"], "onset_s": float(onsets[row["sample"]]), **row}
                    if leak is not None:
                        row["seen"] = str(leak["seen"][row["sample"]])
                    f.write(json.dumps(row) + "\n")
