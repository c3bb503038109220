"""Request bodies, validated by FastAPI and published in ``/openapi.json``.

Field names are the wire names of the Globus Compute API where one exists. Unknown
fields are ignored, as newer clients send more than this service reads. The depth
and size of free-form fields are checked by the routes that store them, against the
settings' limits (``farcall_service.json_limits``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from farcall_service.json_limits import storable


def _no_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


#: A string that can be stored: JSON allows lone surrogates, UTF-8 does not.
Text = Annotated[str, AfterValidator(_no_surrogates)]
#: A free-form JSON object that can be stored and sent back as strict JSON.
JsonObject = Annotated[dict[str, Any], AfterValidator(storable)]
Name = Annotated[Text, Field(min_length=1, max_length=255)]
Session = Annotated[Text, Field(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionRegistration(_Body):
    function_name: Name
    function_code: Text
    serialized: bool = True
    meta: JsonObject | None = None
    description: Text | None = None
    public: bool = False
    group: uuid.UUID | None = None
    ha_endpoint_id: uuid.UUID | None = None
    container_uuid: uuid.UUID | None = Field(
        None, description="farcall: an execution environment to run the function in."
    )


class Submission(_Body):
    create_queue: bool = False
    tasks: dict[Text, list[Text]] = Field(
        description="Function id -> task payloads (packed args and kwargs)."
    )
    task_group_id: uuid.UUID | None = None
    resource_specification: JsonObject | None = None
    user_endpoint_config: JsonObject | None = None
    result_serializers: list[Text] | None = None
    user_runtime: dict[str, Any] | None = None


class LegacySubmission(_Body):
    task_group_id: uuid.UUID | None = None
    create_websocket_queue: bool = False
    tasks: list[tuple[uuid.UUID, uuid.UUID, Text]] = Field(
        description="(function id, endpoint id, payload) triples."
    )


class BatchStatusRequest(_Body):
    task_ids: list[uuid.UUID] = Field(max_length=10_000)


class ChannelSubmission(Submission):
    """A submission over the SDK's channel, which names its endpoint in the body."""

    endpoint_id: uuid.UUID
    follow: bool = Field(False, description="Push the tasks' results down the channel "
                         "as they come in (``farcall_service.following``).")


class WaitRequest(_Body):
    task_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)
    timeout: float = Field(10.0, ge=0, le=60, description="Seconds to wait for one to end.")


class EndpointRegistration(_Body):
    endpoint_name: Name | None = None
    display_name: Annotated[Text, Field(max_length=255)] | None = None
    metadata: JsonObject | None = None
    allowed_functions: list[uuid.UUID] | None = None
    public: bool | None = None
    endpoint_uuid: uuid.UUID | None = Field(
        None, description="Register under this id instead of a new one."
    )
    amqp_tasks: bool = Field(
        False, description="Take tasks from an AMQP queue (the service's broker must be "
        "RabbitMQ); the answer then carries the endpoint's amqp_creds.",
    )


class ContainerRegistration(_Body):
    name: Name
    type: Literal["venv", "apptainer", "docker", "podman"]
    location: Annotated[Text, Field(min_length=1, max_length=4096)]
    description: Text | None = None


class ContainerAttachment(_Body):
    container_id: uuid.UUID | None = Field(description="None detaches the environment.")


class ClaimRequest(_Body):
    session: Session = Field(description="Unique per endpoint process; see the hand-off protocol.")
    max_tasks: int = Field(100, ge=0, le=1000, description="0: take no task, only the "
                           "cancels (an endpoint whose workers are all busy asks so).")
    wait: float = Field(
        0.0, ge=0, le=600, description="Seconds to wait for work (capped by the service)."
    )


class ResultReport(_Body):
    task_id: uuid.UUID
    status: Literal["success", "failed"]
    result: Text | None = None
    exception: Text | None = None
    exception_data: Text | None = Field(
        None, description="farcall: the exception object, serialized, for the SDK to re-raise."
    )
    #: Not refused here: a result whose details are out of limits is recorded without
    #: them (``JsonLimits.outcome_fields``), so one cannot fail the whole report.
    details: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _outcome_matches_status(self) -> ResultReport:
        if self.status == "success" and self.result is None:
            raise ValueError("a successful result needs 'result'")
        if self.status == "failed" and self.exception is None:
            raise ValueError("a failed result needs 'exception'")
        return self


class ResultsRequest(_Body):
    session: Session
    results: list[ResultReport] = Field(max_length=10_000)


class HeartbeatRequest(_Body):
    session: Session
    total_workers: int = Field(0, ge=0, le=10**9)
    idle_workers: int = Field(0, ge=0, le=10**9)
    pending_tasks: int = Field(0, ge=0, le=10**12)
    managers: int = Field(0, ge=0, le=10**9)


class GoodbyeRequest(_Body):
    session: Session


# -- farcall's own answers, published so clients can rely on them --------------------


class SearchHit(BaseModel):
    function_uuid: str
    function_name: str
    description: str | None
    owner: str
    public: bool
    group: str | None


class SearchResults(BaseModel):
    total: int
    offset: int
    limit: int
    results: list[SearchHit]


class ContainerDocument(BaseModel):
    container_id: str
    name: str
    type: str
    location: str
    description: str | None


class ClaimedTaskDocument(BaseModel):
    task_id: str
    function_id: str
    payload: str = Field(description="Packed buffers: function, args, kwargs.")
    result_serializers: list[str] | None
    resource_specification: dict[str, Any] | None
    user_endpoint_config: dict[str, Any] | None
    container: ContainerDocument | None = None


class ClaimResponse(BaseModel):
    tasks: list[ClaimedTaskDocument]
    cancel: list[str] | None = Field(
        None, description="Tasks this endpoint holds that were cancelled: stop them. "
        "Absent when there are none.")


class CancelRequest(_Body):
    task_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)


class ResultsResponse(BaseModel):
    acknowledged: list[str] = Field(description="Recorded now or before; do not resend.")
    rejected: list[str] = Field(description="Unknown to this endpoint; drop them.")


class HeartbeatResponse(BaseModel):
    status: Literal["online"]
    offline_timeout: float
    requeue_timeout: float
