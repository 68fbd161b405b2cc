"""What a run leaves behind: the hash-chained journal, its record types, the run store,
private state files, hashed tokens.

The public face: import these names from ``engine.record``; its other modules are the package's own.
"""

from engine import face

__all__ = [
    "Journal",
    "JournalContents",
    "RecordType",
    "TokenStore",
    "create_run_dir",
    "current_step_records",
    "find_run",
    "list_runs",
    "new_run_id",
    "open_faults",
    "read_format_json",
    "read_journal",
    "stale_runs",
    "token_hash",
    "write_private_json",
]

__getattr__ = face(
    __name__,
    {
        "Journal": "journal",
        "JournalContents": "journal",
        "RecordType": "records",
        "TokenStore": "tokens",
        "create_run_dir": "runstore",
        "current_step_records": "steps",
        "find_run": "runstore",
        "list_runs": "runstore",
        "new_run_id": "runstore",
        "open_faults": "leftovers",
        "read_format_json": "statefiles",
        "read_journal": "journal",
        "stale_runs": "leftovers",
        "token_hash": "tokens",
        "write_private_json": "statefiles",
    },
)
