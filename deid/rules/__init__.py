"""Rule files: load (`load.py`), check against a schema (`coverage.py`), JSON Schema for editors."""
