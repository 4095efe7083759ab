"""xdream-plugin-example: the smallest complete third-party plugin package for xdream.

- :mod:`.decoder`  ``example-decoder``, a generator that loads a weights file it declares
- :mod:`.gabor`    ``example-gabor``, a responder: a model V1 simple cell (a Gabor filter)
- :mod:`.noise`    ``example-additive``, a noise model: additive Gaussian trial noise

They are registered by the entry points in ``pyproject.toml``; xdream imports nothing of this
package by name. See the README beside ``pyproject.toml`` for the walkthrough.
"""
