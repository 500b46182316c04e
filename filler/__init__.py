"""bank-cdc filler: realistic bank activity with fraud scenarios and ground truth.

Public surface: the `filler` CLI (`filler.cli:main`, also `python -m filler`) and the scenario
rules in `filler.scenarios`.
"""

__version__ = "0.1.0"
