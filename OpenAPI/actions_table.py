#!/usr/bin/env python3
"""Writes docs/actions.md, the RAM action table, from OpenAPI/openapi.yaml (run by ops/openapi-generate)."""
import sys
import yaml

spec = yaml.safe_load(open(sys.argv[1]))
rows = []
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch") and str(op.get("x-dm-action", "none")).startswith("dm:"):
            rows.append(f"| {method.upper()} | `{path}` | `{op['x-dm-action']}` | `{op['x-dm-resource']}` |")
print("""# RAM actions of the REST API

Every `/v1` operation is authorized against a Direct Mail action name and a resource name
(`acs:dm:*:<tenantId>:<kind>/<name>`, or `acs:dm:*:<tenantId>:*` for collections). The tenant's root
user may do everything; sub-users need an `Allow` from an attached policy and no `Deny`.
`ReadOnlyAccess` allows `dm:Get*`, `dm:List*`, `dm:Query*`, `dm:Desc*`; `FullAccess` allows `dm:*`.
This table is generated from `OpenAPI/openapi.yaml` (`x-dm-action`, `x-dm-resource`) by
`ops/openapi-generate`, and `ContractTests` fails when a served operation and the contract disagree.

| method | path | action | resource |
| --- | --- | --- | --- |""")
print("\n".join(rows))
print("""
Public routes (`/healthz`, `/readyz`, `/metrics`, `/openapi.yaml`, `/.well-known/jwks.json`, `POST /v1/auth/token`)
need no token; operator routes under `/admin/v1` need `HERALD_ADMIN_TOKEN` and are audited with the operator as actor.""")
