"""Payload validation: pydantic payload models per task_type, JSON Schemas for any process.

`payloads` checks a payload against an engine's declared pydantic model (the worker's side);
`json_schema` checks one against a JSON Schema (an engine card's, or an inline one); `request`
is the `validation` capability's pure logic. No I/O here: the card lookup is the engine's.
"""
