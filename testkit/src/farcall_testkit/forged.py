"""A hostile endpoint: it answers every task with a forged result whose reading runs code.

Reading a pickle payload (dill ``00``/``01``, pickle ``02``, cloudpickle ``c0``/``c1``)
calls whatever its writer put in it; :func:`forged_payload` writes one that creates a
file, so a test sees whether the reader ran it. :class:`ForgingWorker` serves an
endpoint through the hand-off routes like :class:`~farcall_testkit.service.MiniWorker`,
and records the ``result_serializers`` each task asked for.
"""

from __future__ import annotations

import base64
import itertools
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from farcall.serialize import pack_buffers

from farcall_testkit.service import MiniWorker

#: Strategies whose bodies are base64 pickles, all read with ``pickle.loads`` in the end.
PICKLE_STRATEGIES = ("00", "01", "02", "c0", "c1")


class _WritesFile:
    """Unpickles as ``exec(code)``: the shape of every pickle gadget."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (self.code,)


def forged_payload(path: Path, strategy: str = "00") -> str:
    """A serialized "result" whose reading writes ``path``.

    ``strategy`` is a pickle strategy's identifier, or ``"13"`` (AllDataStrategies)
    to hide the pickle as the first member of a combined payload, before a harmless
    JSON member.
    """
    if strategy == "13":
        return "13\n" + pack_buffers([forged_payload(path, "00"), '11\n"harmless"'])
    code = f"open({str(path)!r}, 'w').write('the result ran code here')"
    body = base64.b64encode(pickle.dumps(_WritesFile(code), protocol=4)).decode("ascii")
    return f"{strategy}\n{body}"


class ForgingWorker(MiniWorker):
    """Serves one endpoint and answers every task with a forged result.

    ``strategy`` is one identifier or several, used in turn (see :func:`forged_payload`).
    ``mode`` is ``"result"`` (a success whose ``result`` is forged) or ``"exception"``
    (a failure whose ``exception_data`` is forged, with a plain traceback text).
    """

    def __init__(self, url: str, token: str, endpoint_id: str, target: Path, *,
                 strategy: str | Sequence[str] = "00", mode: str = "result",
                 **kwargs: Any) -> None:
        super().__init__(url, token, endpoint_id, **kwargs)
        self.endpoint_id = endpoint_id
        self.target = target
        self.strategies = itertools.cycle([strategy] if isinstance(strategy, str) else strategy)
        self.mode = mode
        #: ``result_serializers`` of every task claimed, by task id.
        self.asked: dict[str, Any] = {}

    def _execute(self, task: dict[str, Any]) -> dict[str, Any]:
        task_id = task["task_id"]
        self.executions[task_id] += 1
        self.asked[task_id] = task.get("result_serializers")
        forged = forged_payload(self.target, next(self.strategies))
        if self.mode == "exception":
            return {"task_id": task_id, "status": "failed",
                    "exception": "Traceback (most recent call last):\nValueError: forged",
                    "exception_data": forged}
        return {"task_id": task_id, "status": "success", "result": forged}
