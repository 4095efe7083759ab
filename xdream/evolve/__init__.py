"""The evolution loop: one generation is ask -> decode -> present -> tell -> save.

- :mod:`.experiment`    the loop itself (:class:`Experiment`) and its summary
- :mod:`.presentation`  showing one generation (and its reference images) to the responder
- :mod:`.reference`     natural reference images cycled through the generations
- :mod:`.start`         where a run starts: the code of an image or a characterised stimulus
- :mod:`.inversion`     codes of images by gradient inversion through the generator
"""
