"""Files: lazy image readers, atomic label writers and the packaged sample data."""
