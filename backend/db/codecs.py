"""The JSON columns' codecs (SQLAlchemy's json_serializer / json_deserializer): orjson, with the json module as
the fallback for what orjson would encode differently."""
from __future__ import annotations

import json

import orjson

# JSON columns (documents, regions, revisions: every annotation save writes several) are encoded with orjson, about
# 10x faster than the json module. Values orjson does not take the same way (integers beyond 64 bits, types it
# would encode differently: datetimes, dataclasses) fall back to json.dumps, so nothing changes for them. NaN and
# infinities, which JSON does not allow (PostgreSQL refuses them; the API never accepts them), are stored as null.
ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS \
    | orjson.OPT_PASSTHROUGH_SUBCLASS


def _json_default(value):
    raise TypeError(f"{type(value).__name__} is not handled by orjson here")


def json_dumps(value) -> str:
    try:
        return orjson.dumps(value, default=_json_default, option=ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def json_loads(text):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. NaN written by json.dumps before: the json module reads it back
        return json.loads(text)
