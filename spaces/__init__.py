"""Search spaces, registered by name: `get_space("nats_tss")`. Importing this package registers them all."""

from zico_jax.spaces import (
    efficientnet,  # noqa: F401  (registers "efficientnet_cls", "efficientnet_det")
    ffnet,  # noqa: F401  (registers "ffnet_seg")
    nasbench101,  # noqa: F401  (registers "nasbench101")
    nats_sss,  # noqa: F401  (registers "nats_sss")
    nats_tss,  # noqa: F401  (registers "nats_tss")
    transnas101,  # noqa: F401  (registers "transnas101_micro", "transnas101_macro")
    zennas,  # noqa: F401  (registers "zennas_imagenet")
)
from zico_jax.spaces.base import (
    GenotypeError,
    LayerInfo,
    Space,
    get_space,
    parse_space_options,
    register_space,
    space_names,
)

__all__ = ["GenotypeError", "LayerInfo", "Space", "get_space", "parse_space_options", "register_space", "space_names"]
