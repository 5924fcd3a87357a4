"""The verified-file store every part of zoo shares: paths (zoo home, torch's cache), integrity (digests,
records, pins), locks (one per file, never through a link, naming their holder) and downloads (resume,
retry, deadline, offline). It imports nothing of zoo above it."""
