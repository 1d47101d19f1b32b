"""The default config of every command, as ml_collections ConfigDicts: `zico <command>` and
`python experiments/<script>.py` load the module of their command here (`--config` defaults to its file) and take
`--config.FIELD=VALUE` over it, with the config locked (a misspelt field is an error).

Each module has `get_config(preset="default")` and `PRESETS`, the names `--config=NAME` accepts. The scoring
fields that every scoring command shares (space, data, mini-batches, ZiCo-BC's beta, precision, backend) are
written once, by `scoring.add_scoring_fields`.
"""

import ml_collections

from zico_jax.errors import UnknownNameError

placeholder = ml_collections.config_dict.placeholder


def check_preset(preset: str | None, presets: tuple[str, ...], command: str) -> str:
    """The preset's name ("default" for none); an UnknownNameError naming the valid ones otherwise."""
    name = (preset or "default").strip()
    if name not in presets:
        raise UnknownNameError.of(f"{command} preset", name, presets)
    return name
