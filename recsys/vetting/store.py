"""Judgments of recommended pairs (seed -> item), and vetting queues, in one SQLite file.

``<data_dir>/vetting/judgments.sqlite`` (WAL journal, so readers never block the writer and
two editors judging at once both land). One row per judgment, keyed by ``(dataset, run,
preset, seed, item_id, user)``: judging a pair again replaces that user's earlier verdict,
unless the stored one is newer (an import of an old CSV never overwrites a fresh judgment).

Columns of :meth:`JudgmentStore.frame` (and of the CSV export/import):
``dataset, run, preset, seed, item_id, position (1-based), verdict (+1 up / -1 down),
reason, note, user, at (ISO 8601 UTC)``. ``preset`` is None (empty in CSV) for the run's
lists without a preset. ``reason`` is one of :data:`REASONS` for a thumbs-down (``other``
when none was chosen) and empty for a thumbs-up.

Queues (:meth:`JudgmentStore.save_queue`) are the pairs a merchandiser works through: the
top-k lists of sampled seeds, frozen when the queue is built so that progress is exact.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError, StoredDataError
from recsys.stored import open_wal_sqlite

#: Why a pair is wrong (the thumbs-down reasons), in display order.
REASONS: tuple[str, ...] = (
    "wrong_category",
    "wrong_gender",
    "adult_or_unsafe",
    "brand_clash",
    "price_mismatch",
    "duplicate",
    "other",
)
REASON_LABELS: dict[str, str] = {
    "wrong_category": "Wrong category",
    "wrong_gender": "Wrong gender",
    "adult_or_unsafe": "Adult or unsafe",
    "brand_clash": "Brand clash",
    "price_mismatch": "Price mismatch",
    "duplicate": "Duplicate",
    "other": "Other",
}
#: Columns of :meth:`JudgmentStore.frame` and of the CSV files, in order.
COLUMNS: tuple[str, ...] = (
    "dataset",
    "run",
    "preset",
    "seed",
    "item_id",
    "position",
    "verdict",
    "reason",
    "note",
    "user",
    "at",
)
REQUIRED_CSV_COLUMNS = ("dataset", "run", "seed", "item_id", "verdict")
#: The user recorded when no login is configured.
LOCAL_USER = "local"
MAX_NOTE = 500
MAX_IMPORT_ERRORS = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    dataset TEXT NOT NULL,
    run TEXT NOT NULL,
    preset TEXT NOT NULL DEFAULT '',
    seed TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER,
    verdict INTEGER NOT NULL CHECK (verdict IN (-1, 1)),
    reason TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (dataset, run, preset, seed, item_id, user)
);
CREATE INDEX IF NOT EXISTS judgments_pair ON judgments (dataset, seed, item_id);
CREATE TABLE IF NOT EXISTS queues (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    run TEXT NOT NULL,
    preset TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    user TEXT NOT NULL,
    spec TEXT NOT NULL,
    pairs TEXT NOT NULL
);
"""

_UPSERT = """
INSERT INTO judgments (dataset, run, preset, seed, item_id, position, verdict, reason, note, user, at)
VALUES (:dataset, :run, :preset, :seed, :item_id, :position, :verdict, :reason, :note, :user, :at)
ON CONFLICT (dataset, run, preset, seed, item_id, user) DO UPDATE SET
    position = excluded.position, verdict = excluded.verdict, reason = excluded.reason,
    note = excluded.note, at = excluded.at
WHERE excluded.at > judgments.at
"""


#: path -> (inode, device) of judgment files whose schema is in place
_ready: dict[str, tuple[int, int] | None] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_dev)


class JudgmentError(RecsysError):
    """A judgment, CSV row or queue that cannot be stored; the message says what and where."""


class DamagedJudgmentsError(StoredDataError, JudgmentError):
    """``judgments.sqlite`` is not a readable SQLite database (truncated, overwritten, garbage)."""

    @classmethod
    def of(cls, path: Any, what: Any, effect: str) -> DamagedJudgmentsError:
        """The error naming the file, what is wrong with it, what could not be done, and what to do."""
        return cls(
            f"the judgments file {path} is damaged ({what}); {effect}. "
            "Restore it from a backup, or move it aside to start an empty one"
        )


def current_user() -> str:
    """Who judges: the signed-in user (``recsys.auth``), else ``local`` (no login configured,
    or outside a request)."""
    try:
        from recsys.auth import current_user_name

        return current_user_name() or LOCAL_USER
    except Exception:  # no Flask app (a script): the local user
        return LOCAL_USER


def now_iso() -> str:
    """The current time, ISO 8601 UTC with microseconds (orders judgments made in one second)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _parse_at(value: Any) -> str:
    text = str(value).strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"at {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00+00:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _parse_verdict(value: Any) -> int:
    text = str(value).strip().lower()
    if text in ("1", "+1", "up", "1.0"):
        return 1
    if text in ("-1", "down", "-1.0"):
        return -1
    raise ValueError(f"verdict {value!r} is not up/down (+1 or -1)")


def _text(value: Any, name: str, required: bool = True) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ValueError(f"{name} is empty")
    return text


def clean_judgment(
    *,
    dataset: Any,
    run: Any,
    seed: Any,
    item_id: Any,
    verdict: Any,
    preset: Any = None,
    position: Any = None,
    reason: Any = None,
    note: Any = None,
    user: Any = None,
    at: Any = None,
) -> dict[str, Any]:
    """A validated row for the table; raises ValueError saying which value is wrong."""
    row = {
        "dataset": _text(dataset, "dataset"),
        "run": _text(run, "run"),
        "preset": _text(preset, "preset", required=False),
        "seed": _text(seed, "seed"),
        "item_id": _text(item_id, "item_id"),
        "verdict": _parse_verdict(verdict),
        "user": _text(user, "user", required=False) or current_user(),
        "note": _text(note, "note", required=False),
        "at": _parse_at(at) if at not in (None, "") else now_iso(),
    }
    if row["seed"] == row["item_id"]:
        raise ValueError(f"seed and item_id are the same item ({row['seed']})")
    if position in (None, ""):
        row["position"] = None
    else:
        try:
            pos = float(position)
        except (TypeError, ValueError):
            raise ValueError(f"position {position!r} is not a whole number >= 1") from None
        if not pos.is_integer() or pos < 1:
            raise ValueError(f"position {position!r} is not a whole number >= 1")
        row["position"] = int(pos)
    why = _text(reason, "reason", required=False).lower().replace(" ", "_")
    if row["verdict"] > 0:
        if why:
            raise ValueError(f"reason {reason!r} given for a thumbs-up (reasons explain a thumbs-down)")
    elif not why:
        why = "other"
    elif why not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    row["reason"] = why
    if len(row["note"]) > MAX_NOTE:
        raise ValueError(f"note is {len(row['note'])} characters long (at most {MAX_NOTE})")
    return row


@dataclass
class ImportReport:
    """What :meth:`JudgmentStore.import_csv` did."""

    rows: int = 0
    stored: int = 0  # new or replacing an older judgment
    kept_newer: int = 0  # the store already had this judgment, or a newer one of that pair by that user
    errors: list[str] = field(default_factory=list)


class JudgmentStore:
    """Judgments and queues in ``<data_dir>/vetting/judgments.sqlite`` (see the module docstring).

    Each call opens its own connection (safe across threads and processes; SQLite's WAL mode
    and a busy timeout serialise writers without losing any).
    """

    def __init__(self, data_dir: str | Path, timeout: float = 30.0) -> None:
        self.dir = Path(data_dir) / "vetting"
        self.path = self.dir / "judgments.sqlite"
        self.timeout = timeout

    def _ensure_schema(self) -> None:
        """Create the folder, the file and its tables before the first write (reads create
        nothing: a viewer's visit leaves no file behind)."""
        stamp = _stamp(self.path)
        if _ready.get(str(self.path)) != stamp or stamp is None:  # once per file (page callbacks open many)
            self.dir.mkdir(parents=True, exist_ok=True)
            # processes making the file at once: the WAL switch's losers wait, never fail
            try:
                con = open_wal_sqlite(self._connect_new, self.timeout, _SCHEMA)
            except sqlite3.DatabaseError as exc:
                if type(exc) is not sqlite3.DatabaseError:  # locked past the timeout...: not damage
                    raise
                raise self._damaged(str(exc)) from None
            con.close()
            _ready[str(self.path)] = _stamp(self.path)

    def _connect_new(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; a damaged file raises :class:`DamagedJudgmentsError` naming it (SQLite's
        plain ``DatabaseError``: "file is not a database", "database disk image is malformed").
        A missing file is an ``OperationalError`` (never an empty new file)."""
        uri = f"{self.path.absolute().as_uri()}?mode=rw"
        con = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            # WAL's usual setting: a crash of the app loses nothing; a power cut may lose the
            # last judgments, never corrupt the file
            con.execute("PRAGMA synchronous=NORMAL")
            con.row_factory = sqlite3.Row
            yield con
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # locked, a constraint...: not damage
                raise
            raise self._damaged(str(exc)) from None
        finally:
            con.close()

    def _damaged(self, what: str) -> DamagedJudgmentsError:
        return DamagedJudgmentsError.of(self.path, what, "nothing was read or stored")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of a query; none when there is no file yet, or no tables in it (nothing
        is created)."""
        if not self.path.exists():
            return []
        try:
            with self._connect() as con:
                return con.execute(sql, list(args)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or not self.path.exists():
                return []
            if "no such column" in str(exc):  # a table of another shape
                raise self._damaged(str(exc)) from None
            raise

    def _json(self, text: Any, queue_id: str, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise self._damaged(f"queue {queue_id}: its {what} are not JSON: {exc}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (all or nothing), taken up front so writers queue, not fail."""
        self._ensure_schema()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- judgments ------------------------------------------------------------------------
    def judge(self, **fields: Any) -> dict[str, Any]:
        """Store one judgment (replacing this user's earlier verdict on the pair).

        Keywords: ``dataset, run, seed, item_id, verdict`` and optional ``preset, position,
        reason, note, user, at`` (see :func:`clean_judgment`). Returns the stored row.

        Raises
        ------
        JudgmentError
            A value is missing or invalid; nothing is stored.
        """
        try:
            row = clean_judgment(**fields)
        except (ValueError, TypeError) as exc:
            raise JudgmentError(f"judgment not stored: {exc}") from None
        with self._write() as con:
            con.execute(_UPSERT, row)
        return {**row, "preset": row["preset"] or None}

    def forget(
        self, *, dataset: str, run: str, preset: str | None, seed: str, item_id: str, user: str
    ) -> bool:
        """Delete one user's judgment of a pair; True when there was one."""
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM judgments WHERE dataset=? AND run=? AND preset=? AND seed=? AND item_id=? AND user=?",
                (dataset, run, preset or "", seed, item_id, user),
            )
        return cur.rowcount > 0

    def _select(self, dataset: str | None, run: str | None, preset: str | None | bool) -> tuple[str, list]:
        where, args = [], []
        for name, value in (("dataset", dataset), ("run", run)):
            if value is not None:
                where.append(f"{name} = ?")
                args.append(value)
        if preset is not None:  # None: any preset; "": the run's lists without a preset
            where.append("preset = ?")
            args.append(preset or "")
        sql = "SELECT * FROM judgments" + (" WHERE " + " AND ".join(where) if where else "")
        return sql + " ORDER BY at, dataset, run, preset, seed, item_id, user", args

    def rows(
        self, dataset: str | None = None, run: str | None = None, preset: str | None = None
    ) -> list[dict]:
        """Judgments as dicts (COLUMNS), oldest first (filters as :meth:`frame`)."""
        sql, args = self._select(dataset, run, preset)
        out = [dict(r) for r in self._read(sql, args)]
        for r in out:
            r["preset"] = r["preset"] or None
            r["reason"] = r["reason"] or None
        return out

    def frame(self, dataset: str | None = None, run: str | None = None, preset: str | None = None) -> Any:
        """Judgments as a pandas DataFrame with :data:`COLUMNS` (see the module docstring).

        ``dataset`` / ``run`` / ``preset`` None mean any; ``preset=""`` selects the run's lists
        without a preset, a name that preset.
        """
        import pandas as pd

        df = pd.DataFrame(self.rows(dataset, run, preset), columns=list(COLUMNS))
        for name in ("preset", "reason"):  # None, not NaN, where absent
            df[name] = df[name].astype(object).where(df[name].notna(), None)
        df["position"] = df["position"].astype("Int64")
        df["verdict"] = df["verdict"].astype("int64")
        return df

    def judged(self, *, dataset: str, run: str, preset: str | None, user: str | None = None) -> dict:
        """``{(seed, item_id): (verdict, reason)}`` of one run + preset (None: without a preset);
        one user's when given, else the latest judgment of each pair."""
        return {
            (r["seed"], r["item_id"]): (r["verdict"], r["reason"] or None)
            for r in self._latest(dataset, run, preset, user)
        }

    def notes(self, *, dataset: str, run: str, preset: str | None, user: str | None = None) -> dict:
        """``{(seed, item_id): note}`` of the pairs whose latest judgment (as :meth:`judged`)
        has a note: shown back on the pair's card, so judging it again keeps the note."""
        latest = {(r["seed"], r["item_id"]): r["note"] for r in self._latest(dataset, run, preset, user)}
        return {pair: note for pair, note in latest.items() if note}

    def _latest(self, dataset: str, run: str, preset: str | None, user: str | None) -> list[sqlite3.Row]:
        """One run + preset's judgments, oldest first (a later one of a pair wins in a dict)."""
        sql = "SELECT seed, item_id, verdict, reason, note FROM judgments WHERE dataset=? AND run=? AND preset=?"
        args: list[Any] = [dataset, run, preset or ""]
        if user is not None:
            sql += " AND user=?"
            args.append(user)
        return self._read(sql + " ORDER BY at", args)

    # -- CSV ------------------------------------------------------------------------------
    def export_csv(
        self, dataset: str | None = None, run: str | None = None, preset: str | None = None
    ) -> str:
        """The judgments as CSV text (header :data:`COLUMNS`), oldest first."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in self.rows(dataset, run, preset):
            writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
        return buf.getvalue()

    def import_csv(self, text: str | bytes, user: str | None = None) -> ImportReport:
        """Store the judgments of CSV text (as :meth:`export_csv` writes; extra columns ignored).

        Every row is checked before any is stored: one bad row stores nothing. A row without
        ``user`` gets ``user`` (default: the current user); without ``at``, now.

        Raises
        ------
        JudgmentError
            The header lacks a required column, or rows are bad: the message lists them by
            line number (the header is line 1), the first 20 of them.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise JudgmentError(f"judgments CSV is not UTF-8 text (byte {exc.start})") from None
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
        if missing:
            raise JudgmentError(
                f"judgments CSV: line 1 (header) lacks column(s) {', '.join(missing)}; "
                f"expected {', '.join(COLUMNS)}"
            )
        reader.fieldnames = header
        report = ImportReport()
        rows: list[dict[str, Any]] = []
        line = 1
        for raw in reader:
            line = reader.line_num
            report.rows += 1
            if None in raw:
                report.errors.append(f"line {line}: more values than columns")
                continue
            try:
                rows.append(
                    clean_judgment(
                        **{k: raw.get(k) for k in COLUMNS if k not in ("user",)},
                        user=raw.get("user") or user,
                    )
                )
            except ValueError as exc:
                report.errors.append(f"line {line}: {exc}")
        if report.errors:
            shown = report.errors[:MAX_IMPORT_ERRORS]
            more = len(report.errors) - len(shown)
            raise JudgmentError(
                f"judgments CSV: {len(report.errors)} bad row(s) of {report.rows}; nothing was stored: "
                + "; ".join(shown)
                + (f"; and {more} more" if more else "")
            )
        with self._write() as con:
            for row in rows:
                report.stored += con.execute(_UPSERT, row).rowcount
        report.kept_newer = len(rows) - report.stored
        return report

    # -- queues ---------------------------------------------------------------------------
    def save_queue(
        self,
        *,
        dataset: str,
        run: str,
        preset: str | None,
        spec: Mapping[str, Any],
        pairs: Sequence[Mapping[str, Any]],
        user: str | None = None,
    ) -> str:
        """Store a queue (``pairs``: ``{seed, item_id, position, category}`` in judging order)
        and return its id. ``spec`` says how it was sampled (shown on the page)."""
        qid = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        with self._write() as con:
            con.execute(
                "INSERT INTO queues (id, dataset, run, preset, created, user, spec, pairs) VALUES (?,?,?,?,?,?,?,?)",
                (
                    qid,
                    dataset,
                    run,
                    preset or "",
                    now_iso(),
                    user or current_user(),
                    json.dumps(dict(spec)),
                    json.dumps([dict(p) for p in pairs]),
                ),
            )
        return qid

    def queue(self, queue_id: str) -> dict[str, Any] | None:
        """A stored queue (``id, dataset, run, preset, created, user, spec, pairs``) or None."""
        found = self._read("SELECT * FROM queues WHERE id = ?", (queue_id,))
        if not found:
            return None
        out = dict(found[0])
        out["preset"] = out["preset"] or None
        out["spec"] = self._json(out["spec"], queue_id, "settings")
        out["pairs"] = self._json(out["pairs"], queue_id, "pairs")
        if not isinstance(out["spec"], dict) or not isinstance(out["pairs"], list):
            raise self._damaged(f"queue {queue_id}: its settings or pairs are not of the stored shape")
        return out

    def queues(
        self, dataset: str | None = None, run: str | None = None, preset: str | None = None
    ) -> list[dict]:
        """``[{id, dataset, run, preset, created, user, spec, n_pairs, damaged}]``, newest first
        (``damaged``: None, or why the queue cannot be loaded)."""
        sql, args = "SELECT id, dataset, run, preset, created, user, spec, pairs FROM queues", []
        where = []
        for name, value in (("dataset", dataset), ("run", run)):
            if value is not None:
                where.append(f"{name} = ?")
                args.append(value)
        if preset is not None:
            where.append("preset = ?")
            args.append(preset or "")
        if where:
            sql += " WHERE " + " AND ".join(where)
        found = [dict(r) for r in self._read(sql + " ORDER BY created DESC", args)]
        for q in found:  # a damaged queue is listed as such (loading it says why); the others load
            q["preset"] = q["preset"] or None
            text, q["damaged"] = q.pop("pairs"), None
            try:
                q["spec"] = self._json(q["spec"], q["id"], "settings")
                pairs = self._json(text, q["id"], "pairs")
                if not isinstance(q["spec"], dict) or not isinstance(pairs, list):
                    raise self._damaged(f"queue {q['id']}: its settings or pairs are not of the stored shape")
            except DamagedJudgmentsError as exc:
                q.update(spec={}, damaged=str(exc))
                pairs = []
            q["n_pairs"] = len(pairs)
        return found


def queue_progress(pairs: Sequence[Mapping[str, Any]], judged: Mapping[tuple[str, str], Any]) -> list[dict]:
    """Per seed category: ``{category, pairs, judged, seeds, seeds_done}``, by category.

    A seed is done when every one of its queued pairs is judged.
    """
    by_cat: dict[str, dict[str, Any]] = {}
    seeds: dict[str, list[bool]] = {}
    cats: dict[str, str] = {}
    for p in pairs:
        cat = str(p.get("category") or "(no category)")
        done = (p["seed"], p["item_id"]) in judged
        entry = by_cat.setdefault(
            cat, {"category": cat, "pairs": 0, "judged": 0, "seeds": 0, "seeds_done": 0}
        )
        entry["pairs"] += 1
        entry["judged"] += int(done)
        seeds.setdefault(p["seed"], []).append(done)
        cats[p["seed"]] = cat
    for seed, flags in seeds.items():
        by_cat[cats[seed]]["seeds"] += 1
        by_cat[cats[seed]]["seeds_done"] += int(all(flags))
    return [by_cat[c] for c in sorted(by_cat)]
