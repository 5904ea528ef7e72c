"""Exception classes of the recsys library.

Every error says what was wrong, where (file, row, column, field or id) and,
when it is not obvious, what to do about it.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every error the library raises on purpose."""


class DataValidationError(RecsysError, ValueError):
    """Input data is malformed; names the file, row and column when known.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The file being read.
    row : int, optional
        1-based data row (the header is row 0) where the problem is.
    column : str, optional
        The column where the problem is.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelFitError(RecsysError):
    """A model could not be fitted (bad parameters or unusable data)."""


class UnknownFamilyError(ModelFitError, LookupError):
    """No model family has this name (REST answers 400 naming the field ``family``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model family"


class UnknownItemError(RecsysError, LookupError):
    """An item id is not in the catalogue or has no vector in this run."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else "unknown item"


class RunNotFoundError(RecsysError, LookupError):
    """No run with this id exists in the data directory."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class DatasetNotFoundError(RecsysError, LookupError):
    """No dataset with this name exists in the data directory."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "dataset not found"


class PresetNotFoundError(RecsysError, LookupError):
    """No filter preset with this name exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "preset not found"


class IndexFileError(RecsysError):
    """An index file is truncated, corrupted or does not match its run."""


class FilterConfigError(RecsysError, ValueError):
    """A filter configuration is invalid; the message names the field."""


class JobError(RecsysError):
    """A background job could not be started, found or cancelled."""


class RunNotSearchableError(RunNotFoundError):
    """The run has no item vectors, so it cannot be searched by vector (the HNSW searcher, the
    map, vector export, Spark precompute); ``similar_items``, recent views and precompute
    answer such a run from its own lists instead (:func:`recsys.search.similar_from_lists`)."""


class StoredDataError(RecsysError):
    """A file the library wrote earlier (run.json, a dataset) can no longer be read."""


class DamagedRunError(StoredDataError):
    """A run's stored files (run.json, model.json, the ``.npy`` arrays) are damaged.

    The run is listed as damaged with :attr:`reason`, skipped by serving and the
    pickers, and can still be deleted. Other runs are not affected.

    Parameters
    ----------
    run_id : str
        The run (its folder name).
    reason : str
        What is wrong, naming the file.
    """

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"run '{run_id}' is damaged: {reason}; delete the run or restore its folder")

    def __str__(self) -> str:
        return str(self.args[0])


class DamagedPresetError(StoredDataError, FilterConfigError):
    """A preset file is damaged (not JSON, or not a preset's shape); other presets still load."""

    fields = ["name"]


class DiskFullError(RecsysError, OSError):
    """The disk (or the user's quota) filled up while saving; nothing half-written was kept.

    Also an :class:`OSError` (``errno`` is ENOSPC or EDQUOT), so code that handles
    OSError keeps working.
    """

    def __init__(self, message: str, errno_: int | None = None, filename: str | None = None) -> None:
        import errno as _errno

        super().__init__(errno_ or _errno.ENOSPC, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message
