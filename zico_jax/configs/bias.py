"""Config of the bias study (`experiments/bias.py`, `zico_jax.bias.run_bias`): the correlation run's fields
(zico_jax/configs/correlation.py; proxies zico,zico_bc at `beta`, which must be > 0: the penalty of every
architecture is recovered from it exactly) plus:

  betas     ZiCo-BC's beta values to evaluate (0 = ZiCo), all from the one scoring run.
  bins      equal-count accuracy bins within which score and depth / width are correlated.
  top_k     how many top-scoring architectures the beta sweep describes (mean accuracy, mean depth).

Example:
    zico bias --config.num_archs=1000 --config.output_dir=runs/bias_nb201
"""

from zico_jax.configs import check_preset, correlation

PRESETS = ("default",)


def get_config(preset: str = "default"):
    check_preset(preset, PRESETS, "bias")
    config = correlation.get_config()
    config.proxies = "zico,zico_bc"
    config.beta = 1.0
    config.num_archs = 500
    config.betas = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    config.bins = 5
    config.top_k = 10
    return config
