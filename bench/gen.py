#!/usr/bin/env python3
"""Generates what bench/load.sh needs: free ports, a JWKS from a PEM public key, stagedoor
configs with big route tables, and a big YAML policy.

The route table and policy follow benches/hot_path.rs: every route (a `prefix`) has the same
four rules, every role r{i} has an allow, a conditional allow and a deny entry and three members
(group:default/g{i}, group:default/h{i}, user:default/u{i}).

Subcommands:
  ports N                                     print N free 127.0.0.1 ports, one a line
  jwks --pub PEM --kid KID --out FILE         an ES256 (P-256) JWKS with one key
  policy --roles N --out FILE                 the N-role YAML policy
  gateway --out FILE --listen HOST:PORT --upstream URL [--routes N] [--jwks URL]
          [--policy FILE] [--header-read-timeout 10s] [--permission-api]
                                              a stagedoor config: one public route
                                              (/public/{*rest}), and, with --routes, N generated
                                              routes /api/svc{i} of four rules each; with
                                              --permission-api, `permission_api: { enabled: true }`
"""

import argparse
import base64
import json
import socket
import subprocess
import sys


def free_ports(n):
    # Bind them all at once so the same port is never handed out twice, then release them.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks(pub_pem, kid):
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", pub_pem, "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    # A P-256 SubjectPublicKeyInfo ends with the 65-byte uncompressed point 04 || x || y.
    point = der[-65:]
    if point[0] != 4:
        sys.exit(f"{pub_pem}: not an uncompressed P-256 point")
    key = {
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
        "kid": kid,
        "x": b64url(point[1:33]),
        "y": b64url(point[33:65]),
    }
    return json.dumps({"keys": [key]}, indent=1) + "\n"


def policy(n):
    out = ["super_users: [group:default/admins]", "roles:"]
    for i in range(n):
        out.append(
            f"""  - name: role:default/r{i}
    members: [group:default/g{i}, group:default/h{i}, user:default/u{i}]
    allow:
      - permission: svc{i}.entity.read
      - resource_type: svc{i}-entity
        actions: [update, delete]
        conditions:
          anyOf:
            - rule: IS_ENTITY_OWNER
              params: {{ claims: [$ownerRefs] }}
    deny:
      - permission: svc{i}.location.create"""
        )
    return "\n".join(out) + "\n"


def gateway(a):
    out = [
        f'server: {{ listen: "{a.listen}", worker_threads: {a.worker_threads}, shutdown_grace: 1s,'
        f" limits: {{ header_read_timeout: {a.header_read_timeout} }} }}",
        "permission: { enabled: true, unmatched: deny }",
    ]
    if a.jwks:
        out += [
            "identity:",
            "  issuers:",
            f'    - {{ name: bench, jwks_url: "{a.jwks}", algorithms: [ES256], user_claim: sub, groups_claim: ent }}',
        ]
    out += [
        "upstreams:",
        f'  up: {{ url: "{a.upstream}", timeout: 30s }}',
        "routes:",
        "  - prefix: /public",
        "    upstream: up",
        "    rules:",
        '      - { path: "/{*rest}", public: true }',
    ]
    for i in range(a.routes):
        out.append(
            f"""  - prefix: /api/svc{i}
    upstream: up
    rules:
      - {{ path: /health, public: true }}
      - {{ methods: [GET], path: "/entities/by-name/{{kind}}/{{namespace}}/{{name}}", permission: svc{i}.entity.read, action: read, resource_type: svc{i}-entity, resource_ref: "{{kind}}:{{namespace}}/{{name}}" }}
      - {{ methods: [DELETE], path: "/entities/by-uid/{{uid}}", permission: svc{i}.entity.delete, action: delete, resource_type: svc{i}-entity }}
      - {{ methods: [GET], path: "/{{*rest}}", authenticated: true }}"""
        )
    if a.permission_api:
        # Backstage's permission backend API (POST /api/permission/authorize), served by stagedoor.
        out.append("permission_api: { enabled: true }")
    if a.policy:
        out.append(f'policy: {{ file: "{a.policy}" }}')
    else:
        out.append("policy: allow-all")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("ports")
    sp.add_argument("n", type=int)
    sj = sub.add_parser("jwks")
    sj.add_argument("--pub", required=True)
    sj.add_argument("--kid", required=True)
    sj.add_argument("--out", required=True)
    so = sub.add_parser("policy")
    so.add_argument("--roles", type=int, required=True)
    so.add_argument("--out", required=True)
    sg = sub.add_parser("gateway")
    sg.add_argument("--out", required=True)
    sg.add_argument("--listen", required=True)
    sg.add_argument("--upstream", required=True)
    sg.add_argument("--routes", type=int, default=0)
    sg.add_argument("--jwks")
    sg.add_argument("--policy")
    sg.add_argument("--worker-threads", type=int, default=1)
    sg.add_argument("--header-read-timeout", default="10s")
    sg.add_argument("--permission-api", action="store_true")
    a = p.parse_args()
    if a.cmd == "ports":
        print("\n".join(map(str, free_ports(a.n))))
        return
    text = {"jwks": lambda: jwks(a.pub, a.kid), "policy": lambda: policy(a.roles), "gateway": lambda: gateway(a)}[a.cmd]()
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
