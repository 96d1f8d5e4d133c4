"""Why verify is not the library's own in the flask-openapi3 trial: the idiomatic port (``form`` and ``body``
on one view) refuses both a JSON and a multipart request, documents JSON only, and the form reader turns the
text field ``person_id=123`` into an int.

    PYTHONPATH=/tmp/trialpkgs .venv/bin/python docs/trial/probe_flask_openapi3.py
"""
from __future__ import annotations

import io

from flask_openapi3 import OpenAPI
from pydantic import BaseModel


class Verify(BaseModel):
    person_id: str
    threshold: float | None = None


app = OpenAPI(__name__, validation_error_status=400)


@app.post("/both")
def both(form: Verify, body: Verify) -> dict:
    return {"form": form.model_dump(), "body": body.model_dump()}


@app.post("/form")
def form_only(form: Verify) -> dict:
    return {"form": form.model_dump()}


def show(what: str, response) -> None:  # type: ignore[no-untyped-def]
    print(f"{what}: {response.status_code} {response.get_data(as_text=True)[:140]}")


client = app.test_client()
show("JSON to form+body", client.post("/both", json={"person_id": "ada"}))
show("multipart to form+body", client.post("/both", data={"person_id": "ada", "image": (io.BytesIO(b"x"), "a.png")},
                                           content_type="multipart/form-data"))
show("form person_id=123", client.post("/form", data={"person_id": "123"}, content_type="multipart/form-data"))
print("documented media types:", list(app.api_doc["paths"]["/both"]["post"]["requestBody"]["content"]))
