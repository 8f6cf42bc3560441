"""A run's metric log: `metrics.jsonl` (one JSON object per logged step or epoch, namespaced keys
such as `train/loss`, `val/kl`) mirrored to `metrics.csv`, plus the optional TensorBoard writer."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from vaelab.fsutil import atomic_write_text


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl. Lines that are not records (a torn last line after a
    crash, or junk written into the file) are skipped: the log is evidence, not state."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines() if path.is_file() else []:
        try:
            value = json.loads(line.decode("utf-8"))
        except ValueError:  # includes UnicodeDecodeError
            continue
        numbers = isinstance(value, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
        )
        if numbers and "step" in value:  # a record: a step, and numbers only
            records.append(value)
    return records


def _csv_text(records: list[dict[str, Any]], keys: list[str], header: bool = True) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    if header:
        writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


class MetricsLog:
    """Appends records to metrics.jsonl as they come, and to the CSV mirror once per epoch. The
    CSV's columns are every key in order of first appearance; it is written whole at the first
    `sync` (to match a JSONL truncated on resume) and for a new column, else appended to."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self._file = open(self.jsonl, "a")  # noqa: SIM115 (closed in close())
        self._keys: list[str] | None = None  # the CSV's columns, once it is written
        self._pending: list[dict[str, Any]] = []  # records not yet in the CSV
        self._tb = None
        if tensorboard:
            with contextlib.suppress(ImportError):  # optional: `pip install vaelab[tensorboard]`
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    @staticmethod
    def truncate_after(run_dir: Path, step: int) -> None:
        """Drop records logged after `step` (work lost with an interrupted epoch is redone)."""
        path = run_dir / "metrics.jsonl"
        kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._pending.append(record)
        if self._tb is not None:
            for key, value in record.items():
                if "/" in key and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, record.get("step", 0))

    def sync(self) -> None:
        """fsync the log and bring the CSV mirror up to date (called once per epoch)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        rows, self._pending = self._pending, []
        keys = self._keys
        if keys is not None and all(k in keys for r in rows for k in r):
            with open(self.csv, "a", encoding="utf-8", newline="") as f:
                f.write(_csv_text(rows, keys, header=False))
        else:  # the first sync, or a new column: the whole file from the log
            records = read_metrics(self.jsonl)
            keys = list(dict.fromkeys(k for r in records for k in r))
            atomic_write_text(self.csv, _csv_text(records, keys))
            self._keys = keys
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self.sync()
        self._file.close()
        if self._tb is not None:
            self._tb.close()
