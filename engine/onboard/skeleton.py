"""The annotated environment file ``bcdrill env init`` writes: valid as it stands, every field explained."""

from __future__ import annotations

import re

from engine.errors import InputError

__all__ = ["environment_skeleton"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

_SKELETON = """\
# yaml-language-server: $schema={schema}
#
# Environment file for {client}'s staging systems. bcdrill reads it to find the systems a
# playbook's logical targets stand for, how to reach them and who responds.
# Next steps (docs/environments.md walks through them):
#   1. bcdrill env keyscan ADDRESS[:PORT]   for each SSH host: compare the fingerprint with the
#      one the host's owner reads on the console, then paste the host_key line it prints;
#   2. bcdrill validate THIS-FILE           every problem, located, offline;
#   3. bcdrill env check THIS-FILE          connects and shows what works (keys, sudo, Docker,
#      services, URLs);
#   4. bcdrill validate PLAYBOOK --env THIS-FILE, then bcdrill plan PLAYBOOK --env THIS-FILE.
format: environment/v1
name: {name}                      # short name: lowercase letters, digits, - and _
kind: staging                     # staging | test | production (production needs allow_production: true)
client: {client}

# The Docker Engine running the client's containers. unix:// for the local socket, or
# ssh://USER@HOST where HOST is an entry of ssh_hosts below: bcdrill tunnels to the remote
# Docker socket through its own SSH connection with the pinned host key.
docker:
  url: unix:///var/run/docker.sock
  timeout: 10s                    # deadline of every Docker API call

ssh_hosts:
  app1:                           # the name targets and docker.url refer to
    address: 192.0.2.10           # IP address or DNS name
    port: 22
    user: drill                   # a dedicated login for drills
    key: env:BCDRILL_APP1_KEY     # env:VAR (a path or the key text) or file:PATH — never the key itself
    # Pin the host key: paste the line `bcdrill env keyscan 192.0.2.10` prints, e.g.
    #   host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA..."
    # or point at a known_hosts file that already holds it:
    known_hosts: ~/.ssh/known_hosts
    sudo: true                    # fault commands run through `sudo -n` (give the user NOPASSWD rules)
    connect_timeout: 5s
    command_timeout: 30s
    services:
      web:                        # what host.service_stop / host.process_kill call `service: web`
        start: systemctl start nginx
        stop: systemctl stop nginx
        status: systemctl is-active --quiet nginx    # exit 0 = running
        process: nginx
        paths: {{www: /var/www/html}}                # directories file faults may touch

# Each logical target of your playbooks, bound to containers or to SSH hosts (not both).
targets:
  storefront:
    containers: [shop-web]
  app:
    hosts: [app1]

# Named URLs: a probe's params.url may name one of these (e.g. url: storefront).
urls:
  storefront: http://192.0.2.10/

# Who responds, per party (msp or client); drill desk links and injects go to them.
participants:
  - {{name: On-call Engineer, party: msp, role: on-call engineer, contact: oncall@msp.example}}
  - {{name: Office Manager, party: client, role: office manager, contact: office@client.example}}
"""


def environment_skeleton(name: str = "client-staging", client: str = "Client Ltd", schema: str = "") -> str:
    """The annotated environment file, valid as it stands (placeholders use documentation addresses)."""
    if not _NAME.fullmatch(name):
        raise InputError(f"environment name {name!r}: use lowercase letters, digits, '-' and '_'")
    if not client.strip() or any(c in client for c in "\n:#{}[]\"'"):
        raise InputError(
            f"client {client!r}: give a plain name without YAML punctuation (: # {{ }} [ ] quotes)"
        )
    return _SKELETON.format(
        name=name, client=client.strip(), schema=schema or "playbooks/schema/environment.schema.json"
    )
