"""farcall's endpoint: claims tasks from a farcall service and runs them on an engine.

Importing this package is cheap on purpose (it is the parent of the entry-point
module); the runner, the engines and the HTTP client load when they are used::

    from farcall_endpoint.configure import configure_endpoint
    from farcall_endpoint.runner import EndpointRunner

    config = configure_endpoint("dev", engine={"type": "thread", "workers": 2})
    EndpointRunner(config).run()        # blocks until stop() or SIGTERM
"""

__version__ = "0.1.0"
