"""Component ids, one constant per id, grouped by page (STYLE habit 3).

Every id is prefixed by its page (``OVERVIEW_...`` -> ``"overview-..."``), so two pages
never clash. Each engineer edits only their own section; append new constants at the end
of your section.
"""

# --- shell
URL = "shell-url"
NAVBAR = "shell-navbar"
JOBS_STORE = "shell-jobs-store"  # {"jobs": [job dicts, newest first], "active": [ids], "t": float}
JOBS_INTERVAL = "shell-jobs-interval"
JOBS_BADGE = "shell-jobs-badge"
RUNS_VERSION_STORE = "shell-runs-version"  # changes when the set of runs/active runs changes
DEVICE_STORE = "shell-device-store"
JOB_CANCEL = (
    "shell-job-cancel"  # pattern-matching type of every job card's cancel button: {"type": ..., "job": id}
)

# --- overview
OVERVIEW_DATASET = "overview-dataset"
OVERVIEW_DEMO_JOB = "overview-demo-job"
OVERVIEW_RUNS_GRID = "overview-runs-grid"
OVERVIEW_ACTIVE = "overview-active"
OVERVIEW_LINKS = "overview-links"

# --- runs
RUNS_FAMILY = "runs-family"
RUNS_DATASET = "runs-dataset"
RUNS_LABEL = "runs-label"
RUNS_PARAMS = "runs-params"  # container of the generated parameter inputs
RUNS_PARAM = "runs-param"  # pattern-matching type: {"type": RUNS_PARAM, "name": <param>}
RUNS_SUBMIT = "runs-submit"
RUNS_SUBMIT_MSG = "runs-submit-msg"
RUNS_JOBS = "runs-jobs"  # job progress cards
RUNS_GRID = "runs-grid"
RUNS_ACTIVATE = "runs-activate"
RUNS_DELETE = "runs-delete"
RUNS_PROJECT = "runs-project"
RUNS_ACTION_MSG = "runs-action-msg"
RUNS_DELETE_MODAL = "runs-delete-modal"
RUNS_DELETE_CONFIRM = "runs-delete-confirm"
RUNS_DELETE_CANCEL = "runs-delete-cancel"
RUNS_DELETE_TEXT = "runs-delete-text"
RUNS_DEVICE = "runs-device"
RUNS_DEVICE_POLL = "runs-device-poll"
RUNS_REFRESH = "runs-refresh"  # store bumped by actions so the grid reloads

# --- data
DATA_SOURCE = "data-source"
DATA_SOURCE_HINT = "data-source-hint"
DATA_NAME = "data-name"
DATA_PATH = "data-path"
DATA_UPLOAD = "data-upload"
DATA_UPLOAD_INFO = "data-upload-info"
DATA_FILE_STORE = "data-file-store"  # {"path": server path of the chosen/uploaded file, "columns": [...]}
DATA_INSPECT = "data-inspect"
DATA_MAPPING = "data-mapping"  # container of the mapping dropdowns
DATA_MAP = "data-map"  # pattern-matching type: {"type": DATA_MAP, "field": <schema column>}
DATA_IMPORT = "data-import"
DATA_MESSAGE = "data-message"
DATA_JOB = "data-job"
DATA_JOB_STORE = "data-job-store"
DATA_REPORT = "data-report"
DATA_DATASETS = "data-datasets"

# --- explore

# --- map

# --- compare
