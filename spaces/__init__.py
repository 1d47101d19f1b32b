"""Search spaces, registered by name: `get_space("nats_tss")`. Importing this package registers them all.

A space is one module: a `Space` subclass decorated with `@register_space(name)` that declares what it is
(task, datasets and their options, ground-truth columns, ZiCo-BC's default beta, descriptors for the bias study)
and, by defining the method, what it can do (`HasTape`, `HasTorchNames`, `Mutable`, `HasInitialGenotype`).
Nothing else in zico-jax keeps a table keyed by a space's name. A space registered from outside the library (a
user's module) works with every command once its module is imported.
"""

from zico_jax.spaces import (  # noqa: F401  (each module registers its spaces)
    efficientnet,
    ffnet,
    nasbench101,
    nats_sss,
    nats_tss,
    transnas101,
    zennas,
)
from zico_jax.spaces.base import (
    GenotypeError,
    HasInitialGenotype,
    HasTape,
    HasTorchNames,
    LayerInfo,
    Mutable,
    Space,
    get_space,
    parse_space_options,
    register_space,
    space_class,
    space_names,
)

__all__ = ["GenotypeError", "HasInitialGenotype", "HasTape", "HasTorchNames", "LayerInfo", "Mutable", "Space",
           "get_space", "parse_space_options", "register_space", "space_class", "space_names"]
