"""Checks Stele's OpenAPI document with tools that are not Stele's own.

Usage: python3 openapi_check.py DOCUMENT.json [ANSWERS.json]

- The document is validated as OpenAPI 3.1 by openapi-spec-validator (PyPI).
- Each answer in ANSWERS.json ({"path": the documented path, "method": "get", "status": 200,
  "body": the JSON the server sent, "request": the JSON body sent, if any}) is validated, with
  jsonschema's Draft 2020-12 validator (the dialect of OpenAPI 3.1's schemas), against the
  schema the document gives that operation's response for that status; a request the server
  accepted (2xx), against the operation's request body schema.

Prints each problem and exits 1 if there is any.
"""

import json
import sys

import jsonschema

try:
    from openapi_spec_validator import validate
except ImportError:  # before 0.6 (Debian 12's package)
    from openapi_spec_validator import validate_spec as validate


def main():
    with open(sys.argv[1]) as f:
        document = json.load(f)
    validate(document)
    problems = []
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            answers = json.load(f)
        for answer in answers:
            problems.extend(check(document, answer))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


def check(document, answer):
    where = f"{answer['method'].upper()} {answer['path']} {answer['status']}"
    operation = document["paths"].get(answer["path"], {}).get(answer["method"])
    if operation is None:
        return [f"{where}: not in the document"]
    response = operation["responses"].get(str(answer["status"]))
    if response is None:
        return [f"{where}: the document gives no such status"]
    problems = against(document, response, answer["body"], where)
    if "request" in answer and 200 <= answer["status"] < 300:
        body = operation.get("requestBody")
        if body is None:
            problems.append(f"{where}: the document takes no request body")
        else:
            problems.extend(against(document, body, answer["request"], f"{where} (request)"))
    return problems


def against(document, described, value, where):
    """The problems of `value` against the JSON schema of a response or request body."""
    content = described.get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return [f"{where}: the document gives no JSON schema for it"]
    # The schema with the document's components beside it, so that its $refs resolve.
    schema = dict(content["schema"])
    schema["components"] = document.get("components", {})
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(value)
    ]


if __name__ == "__main__":
    main()
