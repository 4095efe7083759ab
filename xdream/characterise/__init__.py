"""Classical characterisation of a cell through any Responder (Harris, Mihai & Hare 2019).

The same protocol an electrophysiologist runs on an LGN cell -- baseline fields, full-field
hues, sinusoidal gratings -- presented to a CNN unit, a whole layer, or a neuron on a rig;
each unit is classified as unresponsive, non-opponent or opponent per sweep.

Modules: :mod:`.run` (``xdream characterise``: responders, presentation, outputs),
:mod:`.stimuli` (renderers), :mod:`.protocol` (presets and the stimulus table),
:mod:`.classify` (the classification rules), :mod:`.record` (presenting a protocol through a
responder), :mod:`.outputs` (CSV, plots and the layer summary), :mod:`.load` (reading a run
back: for ``evolve --init-from-characterisation``, see :mod:`xdream.evolve.start`); its page in
``xdream report`` is :mod:`xdream.report.characterise`.
"""
