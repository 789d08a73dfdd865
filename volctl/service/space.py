"""Admission: before a create, snapshot, clone or extend takes its claim, whether the pool (thin)
or the group (thick) has the room, by Cinder's capacity filter and volctl's pool limits
(volctl/space.py). A refusal is exit 5 naming the numbers, and leaves nothing behind: no row, no
history (the admission's own `lvs` or `vgs` is filed nowhere), nothing on the host.

Races: the check and the claim run under the group's space lock (Locks.space), and the thin
check counts what the inventory has provisioned, which the claim's row (or, for an extend, the
settled size) carries; so of two creates that would together over-commit the pool, the second
waits for the first's row and is refused. The lock is let go once the row is in, so creates of
different volumes still make their LVs side by side (and a clone's copy holds up nobody); an
extend, whose new size the inventory has only once settled, holds it until its lvextend is done
(a quick metadata change). For thick LVs the group's free space comes from `vgs`, which does not
yet show an admitted create whose lvcreate is still to come: for that narrow window lvcreate's
own refusal (exit 6, the volume in 'error', as before) remains the backstop.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from volctl.errors import NoSpace
from volctl.service.core import ServiceCore


class Space(ServiceCore):
    @contextmanager
    def _admitted(self, vg: str, requested_gib: int, what: str, *, thick_gib: int | None = None) -> Iterator[None]:
        """Hold the group's space lock, refuse (NoSpace) when `requested_gib` more does not fit,
        and yield for the claim (and whatever else must be counted before the next check). A thick
        request may need more than it provisions (a clone's temporary snapshot): `thick_gib`."""
        with self.locks.space(vg).held():
            self._admit(vg, requested_gib, what, requested_gib if thick_gib is None else thick_gib)
            yield

    def _admit(self, vg: str, requested_gib: int, what: str, thick_gib: int) -> None:
        from volctl import space
        from volctl.lvm import ThinPool, new_pool_gib
        from volctl.model import GIB

        previous, self._subject = self._subject, None  # a refusal leaves no history row, not even a command
        try:
            lvm = self.lvm(vg)
            if self.settings.lvm_type == "thin":  # the backend's type decides, as in Cinder's stats
                pool = lvm.thin_pool(self.settings.thin_pool)
                if pool is None:  # the first create makes it: judged at the size it will have
                    pool = ThinPool(vg, self.settings.thin_pool, new_pool_gib(lvm.volume_group()) * GIB, None, None, 0, "")
                why = space.thin_refusal(self.settings, pool, self.inventory().provisioned_gib(vg), requested_gib)
            else:
                why = space.thick_refusal(self.settings, lvm.volume_group(), thick_gib)
        finally:
            self._subject = previous
        if why:
            raise NoSpace(f"{what} refused: {why}")
