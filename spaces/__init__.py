"""Search spaces, registered by name: `get_space("nats_tss")`. Importing this package registers them all."""

from spaces.base import GenotypeError, LayerInfo, Space, get_space, parse_space_options, register_space, space_names
from spaces import nats_tss  # noqa: F401  (registers "nats_tss")
from spaces import nats_sss  # noqa: F401  (registers "nats_sss")
from spaces import nasbench101  # noqa: F401  (registers "nasbench101")
from spaces import transnas101  # noqa: F401  (registers "transnas101_micro", "transnas101_macro")
from spaces import zennas  # noqa: F401  (registers "zennas_imagenet")
from spaces import efficientnet  # noqa: F401  (registers "efficientnet_cls", "efficientnet_det")
from spaces import ffnet  # noqa: F401  (registers "ffnet_seg")

__all__ = ["GenotypeError", "LayerInfo", "Space", "get_space", "parse_space_options", "register_space", "space_names"]
