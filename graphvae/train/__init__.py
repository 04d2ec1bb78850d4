"""The train layer: the loop, run folders, checkpoints, evaluation and pictures of a run.

:mod:`.config` (a run's configuration from the settings table), :mod:`.loop` (``train``),
:mod:`.optim` (optimisers and schedules), :mod:`.device`, :mod:`.reporting` (what a run says),
:mod:`.runfolder` and :mod:`.checkpoint` (what a run writes), :mod:`.runs` (``load_run``),
:mod:`.evaluate` and :mod:`.pictures`.
"""
