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
    """The run has no item vectors (a baseline), so it cannot be searched."""


class StoredDataError(RecsysError):
    """A file the library wrote earlier (run.json, a dataset) can no longer be read."""
