"""The systemd lab host's file-share backup: a ``tar`` of the share every few minutes.

Laid out at every ``host_up`` (idempotent, at run time, so the cached image stays as it is),
like the orders database's backup: the ``share-backup`` systemd timer runs :data:`BACKUP_UNIT`,
which archives the share into a side file and renames it over :data:`BACKUP_FILE`, so an
archive that fails (share gone during a drill) never replaces the last good one. The unit can
also be started by hand for a backup now. The MSP's restore (in the playbook
``systemd/share-wiped-smb``) unpacks the archive beside the share and renames it into place.
"""

from __future__ import annotations

__all__ = ["BACKUP_DIR", "BACKUP_FILE", "BACKUP_UNIT", "layout_argv"]

BACKUP_DIR = "/var/backups/share"
BACKUP_FILE = f"{BACKUP_DIR}/share.tar"
BACKUP_UNIT = "share-backup.service"
_TIMER_UNIT = BACKUP_UNIT.replace(".service", ".timer")


def _service(share: str) -> str:
    return f"""[Unit]
Description=Backup of the staff file share {share} (tar)

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'tar -cf {BACKUP_FILE}.part -C {share} . && mv {BACKUP_FILE}.part {BACKUP_FILE}'
"""


_TIMER = """[Unit]
Description=Scheduled backup of the staff file share

[Timer]
OnActiveSec=1min
OnUnitActiveSec=5min
AccuracySec=1s
"""

# $1 service unit text, $2 timer unit text. Idempotent.
_LAYOUT = f"""set -e
install -d -m 0700 {BACKUP_DIR}
printf '%s' "$1" > /etc/systemd/system/{BACKUP_UNIT}
printf '%s' "$2" > /etc/systemd/system/{_TIMER_UNIT}
systemctl daemon-reload
systemctl start {_TIMER_UNIT}
"""


def layout_argv(share: str) -> list[str]:
    """The command (run as root inside the host) that lays the share's backup out."""
    return ["sh", "-c", _LAYOUT, "sh", _service(share), _TIMER]
