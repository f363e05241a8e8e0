"""Names Docket shares with Temporal: task queue, workflow type, typed search attributes.

Search attributes must be registered on the namespace before use: the demo's dev server
registers them with `--search-attribute` flags (see `dev_server_args`), a cluster with
`temporal operator search-attribute create` (docs/operations.md); the worker checks at start.
They never hold personal data: states, ids of platforms, authorities, bases and categories.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "authority-requests"
CHECKPOINT_TASK_QUEUE = "audit-checkpoints"  # only the worker holding the log key polls it
WORKFLOW_NAME = "AuthorityRequest"

REQUEST_STATE = SearchAttributeKey.for_keyword("RequestState")
PLATFORM = SearchAttributeKey.for_keyword("Platform")
AUTHORITY = SearchAttributeKey.for_keyword("Authority")
LEGAL_BASIS = SearchAttributeKey.for_keyword("LegalBasis")
CATEGORIES = SearchAttributeKey.for_keyword_list("Categories")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")
OUTCOME = SearchAttributeKey.for_keyword("Outcome")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    REQUEST_STATE,
    PLATFORM,
    AUTHORITY,
    LEGAL_BASIS,
    CATEGORIES,
    SLA_BREACHED,
    DUE_AT,
    OUTCOME,
)

# temporal CLI spelling of each indexed value type
_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "TEXT": "Text",
    "INT": "Int",
    "FLOAT": "Double",
}


def cli_type(key: SearchAttributeKey) -> str:  # type: ignore[type-arg]
    return _CLI_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]


def dev_server_args() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={cli_type(key)}"]
    return args
