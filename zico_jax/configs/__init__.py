"""The default config of every command, as ml_collections ConfigDicts: `zico <command>` and
`python experiments/<script>.py` load the module of their command here (`--config` defaults to its file) and take
`--config.FIELD=VALUE` over it, with the config locked (a misspelt field is an error).

Each module has `get_config(preset="default")` and `PRESETS`, the names `--config=NAME` accepts. The scoring
fields that every scoring command shares (space, data, mini-batches, ZiCo-BC's beta, precision, backend) are
written once, by `scoring.add_scoring_fields`.
"""
