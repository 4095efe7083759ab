"""The contracts every other part of xdream is built on; imports nothing else of xdream.

- :mod:`.generator`   the Generator interface (codes -> images)
- :mod:`.responder`   the Responder and NoiseModel interfaces (images -> scores)
- :mod:`.optimizer`   the Optimizer interface (ask / tell, maximisation, NaN policy)
- :mod:`.registry`    plugins found by name through entry points, options validated
- :mod:`.errors`      the one exception family of user errors
- :mod:`.seeding`     one master seed, named child streams
- :mod:`.allocator`   keep freed memory in the process (faster loops on glibc)
- :mod:`.threads`     torch thread counts and passive OpenMP pools (a fair share of a busy machine)
- :mod:`.device`      deterministic CUDA kernels, the decode chunk, and refusing runs that do not fit
"""
