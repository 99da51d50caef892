"""Stage: the result file, the contract between the engine and the Blender add-on (schema version 1).

- ``schema``: PersonResult, Result, write_result (atomic), read_result (never unpickles);
- ``meta``: the typed metadata and the one rule that names people;
- ``landmarks_file``: the ``landmarks`` command's output; ``toy``: made-up results for tests and checks.
"""
from .meta import ResultMeta, person_name
from .schema import PersonResult, Result, ResultFormatError, read_result, write_result

__all__ = ["PersonResult", "Result", "ResultFormatError", "ResultMeta", "person_name", "read_result", "write_result"]
