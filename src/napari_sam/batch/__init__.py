"""Batch labeling of many files on dask: planning, executors, prompt files and the run itself."""
