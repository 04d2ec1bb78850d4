"""The spec layer: text -> IR -> graph -> diagnostics, torch-free and numpy-free.

:mod:`.ir` (the frozen-dataclass IR), :mod:`.parser` and :mod:`.syntax_errors` (the DSL, with
lark), :mod:`.yaml_loader` and :mod:`.yaml_nodes` (YAML, without lark), :mod:`.binding`
(family arguments), :mod:`.graph` (networkx graphs of q and p), :mod:`.validate` (every rule),
:mod:`.loader` (files), :mod:`.diagnostics` and :mod:`.errorcodes` (what is reported),
:mod:`.families`, :mod:`.estimators` and :mod:`.settings` (the registries and the settings
table), :mod:`.printers` and :mod:`.formatter` (IR -> text), :mod:`.reference` (the docs'
tables).  Nothing is imported here, so loading a YAML spec never imports lark.
"""
