"""Search spaces, registered by name: `get_space("nats_tss")`. Importing this package registers them all."""

from spaces.base import GenotypeError, LayerInfo, Space, get_space, register_space, space_names
from spaces import nats_tss  # noqa: F401  (registers "nats_tss")

__all__ = ["GenotypeError", "LayerInfo", "Space", "get_space", "register_space", "space_names"]
