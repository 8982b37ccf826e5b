"""`roster study create`, `site create`, `user create`, `role grant` (SPEC §12): the setup API over HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from roster.client.http import P, Server, fail, path_part

ROLES = ("data_manager", "investigator", "clinical_research_coordinator", "monitor", "viewer")


def cmd_study_create(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"oid": args.oid, "name": args.name, "participateActive": args.participate_active}
    if args.enrollment_cap is not None:
        body["enrollmentCap"] = args.enrollment_cap
    if args.id_template:
        body |= {"participantIdMethod": "system", "participantIdTemplate": args.id_template}
    study = Server(args.url).json("POST", f"{P}/admin/studies", json=body)
    cap = "no enrollment cap" if study["enrollmentCap"] is None else f"enrollment cap {study['enrollmentCap']}"
    print(f"created study {study['oid']} ({study['name']}; {cap})")


def cmd_site_create(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"oid": args.site_oid, "name": args.name}
    if args.enrollment_cap is not None:
        body["enrollmentCap"] = args.enrollment_cap
    site = Server(args.url).json("POST", f"{P}/admin/studies/{path_part(args.study_oid)}/sites", json=body)
    print(f"created site {site['oid']} ({site['name']}) in study {site['studyOid']}")


def cmd_user_create(args: argparse.Namespace) -> None:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("give the password on stdin, e.g. `printf '%s\\n' \"$PASSWORD\" | roster user create NAME`")
    body = {"username": args.username, "password": password, "admin": args.admin}
    user = Server(args.url).json("POST", f"{P}/admin/users", json=body)
    print(f"created user {user['username']}{' (admin)' if user['admin'] else ''}")


def cmd_role_grant(args: argparse.Namespace) -> None:
    body = {"studyOid": args.study, "role": args.role, **({"siteOid": args.site} if args.site else {})}
    role = Server(args.url).json("POST", f"{P}/admin/users/{path_part(args.username)}/roles", json=body)
    where = f"site {role['siteOid']} of study {role['studyOid']}" if role["siteOid"] else f"study {role['studyOid']}"
    print(f"granted {role['role']} at {where} to {args.username} (role id {role['id']})")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    study = sub.add_parser("study", help="set up studies (admins)")
    study_sub = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    create = study_sub.add_parser("create", parents=[common], help="create a study")
    create.add_argument("oid", metavar="OID", help="the study's OID, e.g. 'S_JUNO(TEST)'")
    create.add_argument("--name", required=True, help="the study's name")
    create.add_argument(
        "--participate-active", action="store_true", help="Participate is active: uploads may register participants"
    )
    create.add_argument(
        "--enrollment-cap",
        type=int,
        metavar="N",
        help="at most N participants (not removed) in the study; default: no cap",
    )
    create.add_argument(
        "--id-template",
        metavar="TEMPLATE",
        help="generate participant IDs from this template, e.g. JUNO-#### (method system)",
    )
    create.set_defaults(func=cmd_study_create)

    site = sub.add_parser("site", help="set up sites (admins)")
    site_sub = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    create = site_sub.add_parser("create", parents=[common], help="create a site of a study")
    create.add_argument("study_oid", metavar="STUDY_OID", help="the study's OID")
    create.add_argument("site_oid", metavar="SITE_OID", help="the new site's OID")
    create.add_argument("--name", required=True, help="the site's name")
    create.add_argument(
        "--enrollment-cap", type=int, metavar="N", help="at most N participants at this site; default: no cap"
    )
    create.set_defaults(func=cmd_site_create)

    user = sub.add_parser("user", help="set up users (admins)")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    create = user_sub.add_parser("create", parents=[common], help="create a user; the password is read from stdin")
    create.add_argument("username", metavar="USERNAME", help="letters, digits and . _ @ + -")
    create.add_argument("--admin", action="store_true", help="the user manages studies, sites, users and roles")
    create.set_defaults(func=cmd_user_create)

    role = sub.add_parser("role", help="grant roles (admins)")
    role_sub = role.add_subparsers(dest="role_command", metavar="ACTION", required=True)
    grant = role_sub.add_parser("grant", parents=[common], help="give a user a role at a study or one of its sites")
    grant.add_argument("username", metavar="USERNAME", help="the user")
    grant.add_argument("role", metavar="ROLE", choices=ROLES, help=f"one of {', '.join(ROLES)}")
    grant.add_argument("--study", required=True, metavar="STUDY_OID", help="the study")
    grant.add_argument("--site", metavar="SITE_OID", help="only this site of the study (default: the whole study)")
    grant.set_defaults(func=cmd_role_grant)
