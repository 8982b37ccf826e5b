"""What `/openapi.json` says beyond what FastAPI derives (SPEC §12), and `/docs` served offline.

FastAPI documents a 422 with its own `HTTPValidationError`, which Roster never answers, and knows
nothing of bodies that endpoints read themselves (the streamed upload, participant bodies parsed after
the permission checks). Routes declare their own error answers with `errors(...)` and such bodies with
`json_body(...)` / `UPLOAD_BODY`; `install` then fills in what holds for every operation alike:
401 where a bearer token is needed, 404 where a path names something, 422 where there is input, and
the error body of §4 wherever FastAPI put its own (or the route's own error body, where it declared one).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from roster.admission import UNGATED

COMPONENTS = "#/components/schemas/"
DESCRIPTIONS = {
    400: "The request was refused: `message` holds the code (e.g. `errorCode.studyNotAvailable`)",
    401: "Missing, invalid or expired bearer token (`errorCode.unauthorized`), or wrong credentials",
    403: "The caller's roles do not allow this (`errorCode.noRoleSetUp`, `errorCode.noSufficientPrivileges`)",
    404: "What the path names does not exist, or the caller may not see it",
    409: "Conflicts with the current state (e.g. `errorCode.studyAlreadyExists`, `errorCode.jobNotCancellable`)",
    410: "The stored file was deleted by retention (`errorCode.fileExpired`)",
    413: "The upload is larger than `ROSTER_MAX_UPLOAD_BYTES` (`errorCode.fileTooLarge`), or a JSON body over 1 MiB "
    "(`errorCode.bodyTooLarge`)",
    422: "Invalid parameters or body (`errorCode.validationFailed`, field errors in `params.errors`)",
    429: "Too many attempts (`errorCode.tooManyAttempts`); see `Retry-After`",
    503: "The server is at capacity or a lock could not be had in time (`errorCode.serverBusy`); retry after "
    "`Retry-After` seconds",
}


class RuleError(BaseModel):
    code: str
    column: str | None = None
    message: str | None = None


class ErrorBody(BaseModel):
    """Every error answer of the OpenClinica-style API (SPEC §4)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})
    message: str = Field(
        description="The error code, e.g. `errorCode.studyNotExist`", examples=["errorCode.studyNotExist"]
    )
    params: dict[str, Any] = Field(description="Values the code refers to")
    detail: str = Field(description="One plain sentence")
    errors: list[RuleError] | None = Field(None, description="Single participant writes: every rule the record broke")


def errors(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the error answers a route gives besides the ones `install` adds."""
    return {status: {"model": model, "description": DESCRIPTIONS[status]} for status in statuses}


_MODELS: dict[str, type[BaseModel]] = {}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A `$ref` to `model`, which `build` adds to the components (for content FastAPI cannot derive)."""
    _MODELS[model.__name__] = model
    return {"$ref": COMPONENTS + model.__name__}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for an endpoint that parses its JSON body itself (after its permission checks)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref(model)}}}}


# The bulk upload reads the raw stream (never buffered whole), so FastAPI cannot see its body.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A CSV (UTF-8) or an Excel workbook (.xlsx)",
                        }
                    },
                },
                "encoding": {"file": {"contentType": "text/csv, application/octet-stream"}},
            }
        },
    }
}


def _error_schema(responses: dict[str, Any]) -> dict[str, Any]:
    """The error body an operation declared for itself (OpenSpecimen's path: a list), else §4's."""
    for status, answer in responses.items():
        schema = (answer.get("content") or {}).get("application/json", {}).get("schema", {})
        if (
            status.isdigit()
            and int(status) >= 400
            and schema
            and not schema.get("$ref", "").endswith("/HTTPValidationError")
        ):
            return schema
    return {"$ref": COMPONENTS + ErrorBody.__name__}


def _fix_operation(operation: dict[str, Any], gated: bool = True) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    error_schema = _error_schema(responses)
    parameters = operation.get("parameters", [])
    added: list[int] = []
    if operation.get("security"):
        added.append(401)
    if any(p.get("in") == "path" for p in parameters):
        added.append(404)
    if parameters or operation.get("requestBody"):
        added.append(422)
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        added.append(413)  # a JSON body over 1 MiB (roster.security)
    if gated:
        added.append(503)  # admission control and lock timeouts (roster.admission, roster.errors)
    for status in added:
        responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
    for code, answer in responses.items():
        if not (code.isdigit() and int(code) >= 400):
            continue
        schema = (answer.get("content") or {}).get("application/json", {}).get("schema")
        if schema is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
            schema = error_schema
            answer["description"] = DESCRIPTIONS.get(int(code), answer.get("description", ""))
        # Errors are JSON whatever the success answer is (text/plain, text/csv).
        answer["content"] = {"application/json": {"schema": schema}}
    if "204" in responses and responses.get("200", {}).get("description") == "Successful Response":
        responses.pop("200")


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [ErrorBody, *_MODELS.values()]
    for model in models:
        definition = model.model_json_schema(ref_template=COMPONENTS + "{model}", mode="validation")
        for name, sub in definition.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = definition
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            _fix_operation(operation, gated=path not in UNGATED)
    # Referenced by nothing any more: Roster never answers FastAPI's validation error shape.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Our OpenAPI document, and `/docs` with Swagger UI served from the installed package (no CDN)."""
    from fastapi_swagger import patch_fastapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # The token stays in the tab (persistAuthorization off), as on the Bulk Actions Log page.
    patch_fastapi(
        app,
        redirect_from_root_to_docs=False,
        title="Roster API",
        swagger_ui_parameters={"tryItOutEnabled": True, "persistAuthorization": False, "displayRequestDuration": True},
    )
