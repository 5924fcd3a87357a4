"""The verified-file store every part of zoo shares: paths (zoo home, torch's cache), integrity (digests,
records, pins) and downloads (resume, retry, locks, offline). It imports nothing of zoo above it."""
