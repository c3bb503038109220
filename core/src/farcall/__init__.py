"""farcall: an open, self-hostable function-serving platform for Python.

Importing this package is cheap on purpose: plugins and their heavy dependencies
(dill, cloudpickle, globus-sdk) load only when something uses them.
"""

__version__ = "0.1.0"
