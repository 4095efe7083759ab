"""Images in and out: PNG files and montages, natural photo sets, matplotlib figures of runs.

- :mod:`.io`       tensors in [0, 1] to PNG files and montages, image files to tensors
- :mod:`.natural`  natural-image sets (scikit-image's photographs or a folder) at a given size
- :mod:`.plots`    matplotlib figures of runs (Agg backend: no screen needed)
"""
