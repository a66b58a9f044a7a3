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
need no token; operator routes under `/admin/v1` need `HERALD_ADMIN_TOKEN` and are audited with the operator as actor.

## Resource names and rules beyond the table

- **Canonical names.** `{id}` in a resource is the object's id as Herald stores and shows it, a lower-case
  UUID, however the request writes it (upper case, percent-encoded); addresses and domain names are
  case-folded; a policy name keeps its case. The REST routes and the Direct Mail compatibility endpoint
  (`POST /`, whose `DomainId`, `MailAddressId`, `TagId` and `ReceiverId` name the same objects) build
  resource names with the same function. `Resource` patterns in policies match without regard to case,
  so a `Deny` written with an upper-case id holds too.
- **Sends.** `dm:SingleSendMail` and `dm:BatchSendMail` (REST `POST /v1/mail/single`, `POST /v1/mail/batch`
  and the compatibility endpoint's `SingleSendMail`, `BatchSendMail`) need the `Allow` on the tenant
  (`acs:dm:*:<tenantId>:*`) and are also checked against the sender address,
  `acs:dm:*:<tenantId>:sender/<senderId>`, and its domain, `acs:dm:*:<tenantId>:domain/<domainId>`: a `Deny`
  on either refuses the send (403 `Forbidden.RAM`) and nothing is queued.
- **The root user.** Only the root user manages the root user: a sub-user gets 403 `Forbidden.RootUser`,
  whatever its policies allow, when it creates, lists or deletes the root user's AccessKeys, attaches or
  detaches the root user's policies, or updates or deletes the root user. Reading the root user
  (`GET /v1/users/{id}`, its policies) is an ordinary `dm:GetUser` / `dm:ListPoliciesForUser`.""")
