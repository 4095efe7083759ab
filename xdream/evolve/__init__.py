"""The evolution loop: one generation is ask -> decode -> present -> tell -> save.

- :mod:`.experiment`    the loop itself (:class:`Experiment`, one thread or a session of several),
                        its checkpoint, resume checks and summary
- :mod:`.build`         a thread's optimiser and a session's responder, built from the config
- :mod:`.presentation`  showing one generation (and its reference images) to the responder
- :mod:`.record`        one thread's generation files and log record
- :mod:`.reference`     natural reference images cycled through the generations
- :mod:`.start`         where a run starts: the code of an image or a characterised stimulus
- :mod:`.inversion`     codes of images by gradient inversion through the generator
- :mod:`.progress`      what the progress bar shows after each generation
"""
