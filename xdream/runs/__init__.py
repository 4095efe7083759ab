"""Run directories: everything a run writes, written atomically, and the checkpoint it resumes from."""
