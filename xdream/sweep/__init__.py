"""``xdream sweep``: a grid of runs, each an ordinary resumable run.

- :mod:`.grid`    sweep files expanded into named run specifications
- :mod:`.runner`  running them on Ray or a process pool, skipping completed ones
"""
