"""farcall-service: the Globus-Compute-compatible web service of farcall.

Importing this package is cheap: the web framework and the database layer load only
when the server starts or an admin command runs.
"""

__version__ = "0.1.0"
