"""The compile layer: a validated spec -> ``nn.Module`` networks, the compiled model and its objective.

:mod:`.distributions` (the torch side of the family registry), :mod:`.nets` (networks over
a node's parents), :mod:`.estimators` (how each estimator draws), :mod:`.objective` (the
paper's objective over a trace of q and p), :mod:`.model` (the compiled model),
:mod:`.batch_check` (a user's batch), :mod:`.compiler` (``compile_spec``) and :mod:`.report`
(the text ``graphvae compile`` prints).
"""
