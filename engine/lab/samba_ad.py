"""The Samba AD domain the systemd lab image carries for its domain controller ``dc1``.

The domain is provisioned once, when the image is built (``samba-tool domain provision``
takes half a minute; a lab host must boot in seconds), into :data:`PROVISION_DIR` with its
own ``smb.conf``, so the file server ``sys1`` keeps its standalone ``/etc/samba/smb.conf``
from the same image. ``samba-ad-dc.service`` runs only on a host named :data:`HOST_NAME`
(``ConditionHost``). The staff test user :data:`STAFF_USER` gets a random password, written
only to :data:`PASSWORD_FILE` on the host (owner ``drill``, mode 0400): probes read it there
(``ldapsearch -y FILE``, ``kinit < FILE``), so it never appears in a playbook, an environment
file, a journal or a report. Every container of the image shares this lab domain and its
keys: it is a disposable test domain, not a template for a client's.
"""

from __future__ import annotations

__all__ = [
    "BUILD_ENV",
    "BUILD_HOOK",
    "CA_FILE",
    "DOMAIN",
    "FQDN",
    "HOST_NAME",
    "PASSWORD_FILE",
    "PROVISION_DIR",
    "REALM",
    "STAFF_PRINCIPAL",
    "STAFF_USER",
    "UNIT",
]

HOST_NAME = "dc1"
REALM = "BAKERY.LAB"
DOMAIN = "BAKERY"
FQDN = f"{HOST_NAME}.{REALM.lower()}"
UNIT = "samba-ad-dc.service"
STAFF_USER = "staff"
STAFF_PRINCIPAL = f"{STAFF_USER}@{REALM}"
PROVISION_DIR = "/var/lib/samba/ad-dc"
PASSWORD_FILE = "/etc/bcdrill/staff.password"  # noqa: S105 - where it is, not what
#: The DC's self-signed LDAPS certificate, readable by everyone (``/etc/ldap/ldap.conf`` trusts it).
CA_FILE = "/etc/bcdrill/dc1-ca.pem"
_CONF = f"{PROVISION_DIR}/etc/smb.conf"
_TLS = f"{PROVISION_DIR}/private/tls"

_KRB5_CONF = f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false

[realms]
    {REALM} = {{
        kdc = {FQDN}
    }}

[domain_realm]
    .{REALM.lower()} = {REALM}
"""

# The DC's own configuration, not /etc/samba/smb.conf (sys1's file server); only on dc1.
_DROP_IN = f"""[Unit]
ConditionHost={HOST_NAME}

[Service]
ExecCondition=
ExecStart=
ExecStart=/usr/sbin/samba --foreground --no-process-group --configfile={_CONF}
"""

#: An ``mmdebstrap --customize-hook`` (``$1`` is the root filesystem; the unit texts come from
#: :data:`BUILD_ENV`). Containers cannot write ``security.*`` extended attributes, so the
#: sysvol ACLs go to ``user.NTACL``. The LDAPS key is made here too: Samba would otherwise
#: generate one at the first start of every container (seconds of boot time).
BUILD_HOOK = f"""set -e
r="$1"
chroot "$r" samba-tool domain provision --targetdir={PROVISION_DIR} --realm={REALM} \\
    --domain={DOMAIN} --server-role=dc --dns-backend=NONE --host-name={HOST_NAME} \\
    --option='acl_xattr:security_acl_name = user.NTACL' > /dev/null
sed -i 's/^\\[global\\]$/[global]\\n\\tacl_xattr:security_acl_name = user.NTACL/' "$r{_CONF}"
install -d -m 0755 "$r/etc/bcdrill" "$r/etc/ldap"
pw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')Aa1."
(umask 277 && printf '%s' "$pw" > "$r{PASSWORD_FILE}")
chroot "$r" chown drill:drill {PASSWORD_FILE}
chroot "$r" samba-tool user create --configfile={_CONF} {STAFF_USER} "$pw" \\
    --given-name=Staff --surname=Member > /dev/null
chroot "$r" samba-tool user setexpiry --configfile={_CONF} {STAFF_USER} --noexpiry > /dev/null
install -d -m 0700 "$r{_TLS}"
chroot "$r" openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN={FQDN} \\
    -addext subjectAltName=DNS:{FQDN},DNS:{HOST_NAME} \\
    -keyout {_TLS}/key.pem -out {_TLS}/cert.pem 2> /dev/null
chmod 0600 "$r{_TLS}/key.pem"
cp "$r{_TLS}/cert.pem" "$r{_TLS}/ca.pem"
install -m 0644 "$r{_TLS}/cert.pem" "$r{CA_FILE}"
printf 'TLS_CACERT {CA_FILE}\\n' > "$r/etc/ldap/ldap.conf"
printf '%s' "$BCDRILL_KRB5_CONF" > "$r/etc/krb5.conf"
install -d "$r/etc/systemd/system/{UNIT}.d"
printf '%s' "$BCDRILL_ADDC_DROP_IN" > "$r/etc/systemd/system/{UNIT}.d/bcdrill.conf"
# The DC starts its own winbindd; the stand-alone winbind service would hold its pid file.
chroot "$r" systemctl mask winbind.service
"""
#: The environment :data:`BUILD_HOOK` reads its file texts from.
BUILD_ENV = {"BCDRILL_KRB5_CONF": _KRB5_CONF, "BCDRILL_ADDC_DROP_IN": _DROP_IN}
