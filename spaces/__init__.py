"""Search spaces, registered by name: `get_space("nats_tss")`. Importing this package registers them all."""

from spaces.base import GenotypeError, LayerInfo, Space, get_space, parse_space_options, register_space, space_names
from spaces import nats_tss  # noqa: F401  (registers "nats_tss")
from spaces import nats_sss  # noqa: F401  (registers "nats_sss")
from spaces import nasbench101  # noqa: F401  (registers "nasbench101")
from spaces import transnas101  # noqa: F401  (registers "transnas101_micro", "transnas101_macro")
from spaces import zennas  # noqa: F401  (registers "zennas_imagenet")

__all__ = ["GenotypeError", "LayerInfo", "Space", "get_space", "parse_space_options", "register_space", "space_names"]
