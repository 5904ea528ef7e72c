"""Component ids, one constant per id, grouped by page (STYLE habit 3).

Every id is prefixed by its page (``OVERVIEW_...`` -> ``"overview-..."``), so two pages
never clash. Each engineer edits only their own section; append new constants at the end
of your section.
"""

# --- shell
URL = "shell-url"
NAVBAR = "shell-navbar"
SHELL = "shell-root"
NAVBAR_USER = "shell-user"
NAVBAR_LOGOUT = "shell-logout"
JOBS_STORE = "shell-jobs-store"  # {"jobs": [job dicts, newest first], "active": [ids], "t": float}
JOBS_INTERVAL = "shell-jobs-interval"
JOBS_BADGE = "shell-jobs-badge"
RUNS_VERSION_STORE = "shell-runs-version"  # changes when the set of runs/active runs changes
JOB_CANCEL = (
    "shell-job-cancel"  # pattern-matching type of every job card's cancel button: {"type": ..., "job": id}
)
CALLBACK_ERROR = "shell-callback-error"  # where a callback that failed says why (app.callback_failed)

# --- overview
OVERVIEW_DATASET = "overview-dataset"
OVERVIEW_DATASET_SELECT = "overview-dataset-select"  # which dataset the page describes (?dataset=)
OVERVIEW_DEMO_JOB = "overview-demo-job"
OVERVIEW_RUNS_GRID = "overview-runs-grid"
OVERVIEW_LINKS = "overview-links"
OVERVIEW_BUILDING = "overview-building"  # store: whether the demo build runs (re-renders the headline)

# --- runs
RUNS_FAMILY = "runs-family"
RUNS_DATASET = "runs-dataset"
RUNS_LABEL = "runs-label"
RUNS_PARAMS = "runs-params"  # container of the generated parameter inputs
RUNS_PARAM_PRESET = "runs-param-preset"  # radio: start the form from the recommended or library defaults
RUNS_PARAM = "runs-param"  # pattern-matching type: {"type": RUNS_PARAM, "name": <param>}
RUNS_SUBMIT = "runs-submit"
RUNS_SPLIT = "runs-split"  # pattern-matching type: {"type": RUNS_SPLIT, "option": method|value|test|repeats}
RUNS_SUBMIT_MSG = "runs-submit-msg"
RUNS_EVAL_NOTE = "runs-eval-note"  # under "Evaluation": a catalogue-only dataset is not evaluated
RUNS_JOBS = "runs-jobs"  # job progress cards
RUNS_GRID = "runs-grid"
RUNS_TUNING = "runs-tuning"  # the selected run's tuning trials (table + parallel coordinates)
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
DATA_KIND = "data-kind"  # sessions / baskets (generic CSV)
DATA_ERRORS = "data-errors"  # raise / drop (generic CSV)
DATA_CSV_OPTIONS = "data-csv-options"
DATA_OPT = "data-opt"  # pattern-matching type: {"type": DATA_OPT, "option": <import option>} (generic CSV)
DATA_PREVIEW = "data-preview"  # button: parse the first rows with the form's options, store nothing
DATA_PREVIEW_OUT = "data-preview-out"

# --- explore
EXPLORE_PANEL = "explore"  # name of the Explore filter panel / preset bar (pattern-matching ids)
EXPLORE_SEED = "explore-seed"  # dcc.Dropdown with server-side title/id search
EXPLORE_RUN = "explore-run"
EXPLORE_RUN_WHY = "explore-run-why"  # what the run shown is (the opening run's reason, or the one picked)
EXPLORE_RUN_OPENED = (
    "explore-run-opened"  # dcc.Store: {"run": the run opened on, "why": its reason, "dataset"}
)
EXPLORE_NAV = "explore-nav"  # dcc.Location: reopens Explore on a run of another dataset
EXPLORE_K = "explore-k"
EXPLORE_SEED_CARD = "explore-seed-card"
EXPLORE_RESULTS = "explore-results"
EXPLORE_API_CALL = "explore-api-call"  # the REST call that answers the list shown
EXPLORE_SUMMARY = "explore-summary"  # plan, time, eligible count
EXPLORE_REMOVED = "explore-removed"  # removed-by-rule bars
EXPLORE_MESSAGE = "explore-message"
EXPLORE_URL_SYNC = "explore-url-sync"  # dummy output of the clientside history.replaceState
EXPLORE_PRESET_STORE = "explore-preset-store"  # {"name": loaded preset, "hash": its config hash}
EXPLORE_IMPACT_RUN = "explore-impact-run"
EXPLORE_IMPACT_SEEDS = "explore-impact-seeds"
EXPLORE_IMPACT = "explore-impact"
EXPLORE_SESSION_STORE = "explore-session-store"  # recent item ids, oldest first
EXPLORE_SESSION = "explore-session"  # chips of the recent views
EXPLORE_SESSION_CLEAR = "explore-session-clear"
EXPLORE_SESSION_RUN = "explore-session-run"
EXPLORE_SESSION_RESULTS = "explore-session-results"
EXPLORE_SESSION_EXCLUDE_SEEN = "explore-session-exclude-seen"  # checklist: hide items already viewed
EXPLORE_SESSION_REMOVE = "explore-session-remove"  # pattern-matching type: {"type": ..., "item": id}

# --- map
MAP_RUN = "map-run"
MAP_METHOD = "map-method"
MAP_COLOR = "map-color"
MAP_SEARCH = "map-search"
MAP_GRAPH = "map-graph"
MAP_TOOLTIP = "map-tooltip"
MAP_STATUS = "map-status"  # projection status line (PCA/UMAP, job progress, sampling note)
MAP_UMAP_BUTTON = "map-umap-button"
MAP_UMAP_OFFER = "map-umap-offer"  # the button and a viewer's note: hidden once UMAP is stored
MAP_DRAWN = "map-drawn"  # the meta of a sampled first paint, once the browser has drawn it
MAP_META = "map-meta"  # {"run", "method", "n_traces", "n_shown", "n_total"} of the drawn figure
MAP_NAV = "map-nav"  # dcc.Location used to open a clicked point in Explore
MAP_SELECTION = "map-selection"  # ag-grid of lasso-selected items (only while there is a selection)
MAP_SELECTION_BOX = "map-selection-box"  # holds the grid, or a hint while nothing is selected
MAP_SELECTION_SUMMARY = "map-selection-summary"  # what the selection is: categories, brands, prices
MAP_SELECTION_INFO = "map-selection-info"
MAP_PURITY_K = "map-purity-k"
MAP_PURITY = "map-purity"

# --- compare
COMPARE_PANEL = "compare"  # name of the Compare filter panel (pattern-matching ids)
COMPARE_RUNS = "compare-runs"
COMPARE_SEED = "compare-seed"
COMPARE_SESSION = "compare-session"  # several items: the runs recommend from the whole session
COMPARE_K = "compare-k"
COMPARE_PRESET = "compare-preset"
COMPARE_LISTS = "compare-lists"
COMPARE_AGREEMENT = "compare-agreement"
COMPARE_METRICS = "compare-metrics"
COMPARE_PER_CATEGORY = "compare-per-category"
COMPARE_DIS_A = "compare-dis-a"
COMPARE_DIS_B = "compare-dis-b"
COMPARE_DIS_BUTTON = "compare-dis-button"
COMPARE_DISAGREE = "compare-disagree"
COMPARE_MESSAGE = "compare-message"
COMPARE_VETTED = "compare-vetted"  # vetted precision of every run
COMPARE_DIS_SORT = "compare-dis-sort"

# --- vectors import / export (components/vectors_io.py, on the Data and Runs pages)
VIO_DATASET = "vio-dataset"
VIO_NAME = "vio-name"
VIO_PATH = "vio-path"
VIO_IDS = "vio-ids"
VIO_INDEX = "vio-index"
VIO_QUERY = "vio-query"
VIO_QUERY_IDS = "vio-query-ids"
VIO_FORMAT = "vio-format"
VIO_METRIC = "vio-metric"
VIO_ERRORS = "vio-errors"
VIO_SUBMIT = "vio-submit"
VIO_MESSAGE = "vio-message"
VIO_JOB = "vio-job"
VIO_REPORT = "vio-report"
VIO_JOB_STORE = "vio-job-store"
VIO_EXPORT_RUN = "vio-export-run"
VIO_EXPORT_FORMAT = "vio-export-format"
VIO_EXPORT_BUTTON = "vio-export-button"
VIO_EXPORT_MSG = "vio-export-msg"
VIO_MLFLOW_LINK = "vio-mlflow-link"
VIO_DOWNLOAD = "vio-download"
