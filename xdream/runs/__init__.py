"""Run directories: everything a run writes (atomically; the logs a fsynced line at a time) and the
checkpoint it resumes from (:mod:`.rundir`), its one writer's lock (:mod:`.lock`) and what a resume
checks it against (:mod:`.fingerprint`)."""
