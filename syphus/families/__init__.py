"""Scene families: each MIMIC-IT image family one module declaring what it needs, and the registry.

A family (``family.Family``) says its id pattern, how ``convert`` reads its public source, where a
query's images are by its id, the release's known id defects and its published archives. Everything
that lists or branches on scenes reads ``FAMILIES``: the scene codes and image families (``scenes``),
the CLI's choices, what ``convert`` accepts, the MD5 table (``checksum``). Adding a scene is one
module here and one entry in ``FAMILIES``.

>>> family("LACONV").code, family("SD").pairs, family("XX").code
('LA', True, 'XX')
"""

from __future__ import annotations

from syphus.families.cgd import CGD
from syphus.families.dc import DC
from syphus.families.e4d import E4D
from syphus.families.family import Archive, Family, QueryImages
from syphus.families.la import LA
from syphus.families.sd import SD
from syphus.families.sn import SN
from syphus.families.tvc import TVC
from syphus.families.vst import VST

FAMILIES: tuple[Family, ...] = (LA, CGD, DC, TVC, VST, SD, SN, E4D)  # the registry, in the order lists show

__all__ = ["FAMILIES", "Archive", "Family", "QueryImages", "family", "registered"]


def registered(scene: str) -> Family | None:
    """The registered family whose images scene code ``scene`` uses, or None."""
    return next((f for f in FAMILIES if f.owns(scene)), None)


def family(scene: str) -> Family:
    """The family of scene code ``scene``: a registered one, else the defaults under that code."""
    return registered(scene) or Family(scene)
