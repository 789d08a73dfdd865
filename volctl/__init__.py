"""volctl: Cinder's LVM + LIO iSCSI attach flow on one host, with no services."""

__version__ = "0.1.0"
