"""farcall demo: what the repository can do end to end so far.

Serializes a function and its arguments as the SDK will, packs them into the task
payload the service stores, and on the "endpoint" side unpacks, deserializes and
calls them, then ships the result back, all through the installed plugins.
"""

from __future__ import annotations

import sys

from farcall.plugins import get_plugin_manager
from farcall.serialize import Serializer


def hello(firstname, lastname, punctuation="!"):
    import platform

    return f"Hello {firstname} {lastname}{punctuation} (from {platform.python_implementation()})"


def main() -> int:
    pm = get_plugin_manager()
    strategies = pm.serialization_strategies()
    print("Installed serialization strategies:")
    for ident, record in sorted(strategies.items()):
        mode = "read only" if record.read_only else "read/write"
        kind = "code" if record.for_code else "data"
        print(f"  {ident}  {record.name:<22} {kind}  {mode}")

    sdk = Serializer()
    print(f"\nSDK side: code strategy {sdk.code_strategy}, data strategy {sdk.data_strategy}")
    function_code = sdk.pack_buffers([sdk.serialize(hello)])
    payload = sdk.pack_buffers([sdk.serialize(("Bob", "Smith")), sdk.serialize({"punctuation": "?"})])
    print(f"  registered function_code: {len(function_code)} characters")
    print(f"  task payload (args, kwargs): {len(payload)} characters")

    endpoint = Serializer(allowed=["01", "00", "st", "11"])
    fn, args, kwargs = endpoint.unpack_and_deserialize(function_code + payload)
    result = endpoint.serialize(fn(*args, **kwargs))
    print(f"\nEndpoint side: ran {fn.__name__}{tuple(args)} with {kwargs}")

    value = sdk.deserialize(result)
    print(f"SDK side: result = {value!r}")
    expected_prefix = "Hello Bob Smith?"
    if not value.startswith(expected_prefix):
        print(f"FAILED: expected a result starting with {expected_prefix!r}", file=sys.stderr)
        return 1
    print("\nDemo finished: every step worked.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
