"""``python -m farcall_endpoint start NAME``: how ``--detach`` starts an endpoint."""

from farcall_endpoint.cli import main

main()
