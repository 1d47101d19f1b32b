"""The official Zen-NAS / ZiCo evolutionary-search mutation for `zennas_imagenet`, and the search's own counts.

Reimplemented from idstcv/ZenNAS (used unchanged by SLDGroup/ZiCo): `SearchSpace/search_space_IDW_fixfc.py`
(`gen_search_space`), `evolution_search.py` (`get_new_random_structure_str`, `get_splitted_structure_str` and the
budget checks), `PlainNet/SuperResIDWEXKX.py` (`split`), `Masternet.py` (`get_num_layers`, `get_FLOPs`) and
`PlainNet/basic_blocks.py` (per-layer `get_FLOPs`).

Candidates for block i (`gen_search_space`), all keeping the block's in-channels and stride:
  * channel choices of c (`channel_choices`): c * {2.5, 2, 1.5, 1.25, 1, 1/1.25, 1/1.5, 1/2, 1/2.5}, each
    max(8, x), then smart_round(x, 8) = max(8, 8 * round(x / 8)) (Python's round: halves to even), deduplicated;
  * sub-layer choices of s (`sublayer_choices`): {s + 2, s + 1, s, s - 1, s - 2}, max(0, .), then those <= 0 dropped;
  * SuperConvK{k}BNRELU: the same type with sub_layers 1 and out-channels from the channel choices, except k = 1
    (the final 1x1 conv before the classifier, "never change fc"), whose only candidate is itself with sub_layers 1.
    The stem (block 0, SuperConvK3BNRELU(3, c, 2, 1)) therefore only changes width and stays a 3x3 conv on RGB;
  * SuperResIDWE{e}K{k}: every one of the 12 types E{1,2,4,6}K{3,5,7} x out choices x sub-layer choices x bottleneck
    choices (of the block's bottleneck).
The official function returns a list of candidate lists and the mutation draws uniformly from their concatenation.
For a res block it builds one list per type, but the official code keeps appending the next type's candidates to
the list it has already returned (Python aliasing: `student_blocks_list` is rebound to the deduplicated copy that was
appended, then extended in the next iteration). So list t holds types 0..t+1 (the last: all 12), and in the
concatenation a candidate of the t-th type (official order E1K3, E2K3, E4K3, E6K3, E1K5, ..., E6K7) appears
TYPE_MULTIPLICITY[t] = 12, 12, 11, 10, ..., 2 times (89 in all): E1K3 and E2K3 are drawn 6x as often as E6K7.
`gen_search_space` reproduces those lists (in a fixed order; the official order comes from `set`, which does not
change a uniform draw).

Mutation (`mutate`, official `get_new_random_structure_str(..., num_replaces)`): num_mutations times, draw a block
index uniformly over ALL blocks (the stem and the final 1x1 conv included - drawing the latter changes nothing);
an index already drawn in this call is skipped (so 2 replaces can give 1 change), else the block is replaced by a
uniform draw from the concatenated candidate lists (with the multiplicities above), computed on the current,
partly mutated network. Then every block's in-channels are set to the previous block's out-channels (block 0 keeps
3) and blocks are split (`split`). The official search uses num_mutations = 1 for children of the initial network
(population <= 10) and 2 otherwise (`zico_jax.search.evolution`).

Split (`split`, official `SuperResIDWEXKX.split(split_layer_threshold=6)`, PlainNet/SuperResIDWEXKX.py:119-130 of
both idstcv/ZenNAS and SLDGroup/ZiCo): a res block with sub_layers >= 6 becomes (in, out, stride, btl, 6 // 2)
followed by (out, out, 1, btl, sub_layers - 6 // 2): the first half has 3 sub-layers, the second the rest, so the
layer count is kept (6 -> 3 + 3, 7 -> 3 + 4, 8 -> 3 + 5). Conv blocks never split (`SuperConvKXBNRELU.split`
returns the block). The official search splits every child twice, once at the end of
`get_new_random_structure_str` and again in `get_splitted_structure_str` (evolution_search.py:96 and :103, both
threshold 6); `mutate` does the same (a second split only changes a block that still has >= 6 sub-layers after
the first, i.e. one of >= 9: 9 -> 3 + 6 -> 3 + 3 + 3).

Randomness: a `np.random.Generator` (`rng.integers(n)`) replaces the official Python `random.randint(0, n - 1)` and
`random.choice`: the same distribution of choices, not the same random stream.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Sequence

import numpy as np

from zico_jax.errors import InputError
from zico_jax.spaces.zennas_genotype import Block, ZenNASGenotype, smart_round
from zico_jax.spaces.zennas_genotype import as_genotype as _as_genotype

# search_space_IDW_fixfc.seach_space_block_type_list_list, in its order: (expansion, kernel)
RES_TYPES = tuple((e, k) for k in (3, 5, 7) for e in (1, 2, 4, 6))
# How often each RES_TYPES entry's candidates occur in the concatenated official lists (see the module docstring).
TYPE_MULTIPLICITY = (12, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2)
SPLIT_LAYER_THRESHOLD = 6  # evolution_search.py: the_net.split(split_layer_threshold=6)
_CHANNEL_SCALES_UP = (2.5, 2, 1.5, 1.25)
_CHANNEL_SCALES_DOWN = (1.25, 1.5, 2, 2.5)
MIN_CHANNELS = 8  # __block_type_min_channels_base_dict__ and __block_type_round_channels_base_dict__: 8 for all


def channel_choices(channels: int) -> list[int]:
    """Official `get_select_student_channels_list`: the distinct widths, largest first."""
    # Python float arithmetic in the official order, so that rounding ties land exactly where the official ones do.
    xs = [channels * s for s in _CHANNEL_SCALES_UP] + [channels] + [channels / s for s in _CHANNEL_SCALES_DOWN]
    return sorted({smart_round(max(8, x), 8) for x in xs}, reverse=True)


def sublayer_choices(sub_layers: int) -> list[int]:
    """Official `get_select_student_sublayers_list` (non-negative, largest first; gen_search_space drops 0)."""
    return sorted({max(0, round(x)) for x in (sub_layers, sub_layers + 1, sub_layers + 2, sub_layers - 1,
                                               sub_layers - 2)}, reverse=True)


@functools.lru_cache(maxsize=4096)
def _candidate_lists(block: Block) -> tuple[tuple[Block, ...], ...]:
    """The official candidate lists of one block; they depend on the block alone (cached: a search meets the same
    blocks again and again)."""
    if not block.is_res:
        outs = [block.out_channels] if block.kernel == 1 else channel_choices(block.out_channels)
        return (tuple(dataclasses.replace(block, out_channels=c, sub_layers=1) for c in outs),)
    outs, btls = channel_choices(block.out_channels), channel_choices(block.bottleneck)
    subs = [s for s in sublayer_choices(block.sub_layers) if s > 0]  # "no empty layer"
    # Re-rounding with smart_round(., 8) and the min-8 filter of the official loop are no-ops on these choices
    # (multiples of 8, at least 8), so every (type, out, sub, bottleneck) is one distinct candidate.
    lists, pending = [], []
    for e, k in RES_TYPES:
        pending.extend(Block(k, block.in_channels, c, block.stride, s, e, b) for c in outs for s in subs for b in btls)
        # The official code appends a deduplicated COPY and rebinds its accumulator to that copy, so the next type's
        # candidates are appended to the list already returned: emulated by extending the appended list object.
        pending = list(pending)
        lists.append(pending)
    return tuple(tuple(lst) for lst in lists)


def gen_search_space(blocks: Sequence[Block], block_id: int) -> list[list[Block]]:
    """Official `gen_search_space(block_list, block_id)`: the candidate lists that may replace `blocks[block_id]`
    (each candidate keeps the block's in-channels and stride; see the module docstring)."""
    if not 0 <= block_id < len(blocks):
        raise IndexError(f"gen_search_space: block_id {block_id} out of range for a network of {len(blocks)} blocks")
    return [list(lst) for lst in _candidate_lists(blocks[block_id])]


@functools.lru_cache(maxsize=4096)
def _flat_candidates(block: Block) -> tuple[Block, ...]:
    return tuple(b for lst in _candidate_lists(block) for b in lst)  # evolution_search: the flattened list


def split_block(block: Block, threshold: int = SPLIT_LAYER_THRESHOLD) -> tuple[Block, ...]:
    """Official `SuperResIDWEXKX.split` (PlainNet/SuperResIDWEXKX.py:119-130): a res block with
    sub_layers >= threshold becomes two blocks, the first of `threshold // 2` sub-layers (in, out, stride as the
    block), the second of `sub_layers - threshold // 2` with in = out and stride 1: no sub-layer is lost
    (threshold 6: 7 -> 3 + 4). Conv blocks (`SuperConvKXBNRELU.split`) and smaller blocks are unchanged."""
    if not block.is_res or block.sub_layers < threshold:
        return (block,)
    first_layers = threshold // 2  # new_sublayers_1 = split_layer_threshold // 2
    first = dataclasses.replace(block, sub_layers=first_layers)
    second = dataclasses.replace(block, in_channels=block.out_channels, stride=1,
                                 sub_layers=block.sub_layers - first_layers)  # self.sub_layers - new_sublayers_1
    return first, second


def split(genotype, threshold: int = SPLIT_LAYER_THRESHOLD) -> ZenNASGenotype:
    """Official `MasterNet.split` / `get_splitted_structure_str`: `split_block` on every block."""
    g = _as_genotype(genotype)
    return ZenNASGenotype(tuple(part for b in g.blocks for part in split_block(b, threshold)))


def check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"Zen-NAS mutation: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def mutate(genotype, rng: np.random.Generator, num_mutations: int = 1) -> ZenNASGenotype:
    """Official `get_new_random_structure_str(..., num_replaces=num_mutations)` followed by the split: see the module
    docstring. `genotype`: a ZenNASGenotype or its string. Returns a new, valid genotype."""
    if isinstance(num_mutations, bool) or not isinstance(num_mutations, numbers.Integral) or num_mutations < 1:
        raise InputError(f"Zen-NAS mutation: num_mutations must be an integer >= 1 (the official search uses 1 and "
                         f"2), got {num_mutations!r}")
    rng = check_rng(rng)
    blocks = list(_as_genotype(genotype).blocks)
    selected = set()
    for _ in range(int(num_mutations)):
        i = int(rng.integers(len(blocks)))  # random.randint(0, len(block_list) - 1)
        if i in selected:  # official: `continue` - the draw is spent, the block is not changed twice
            continue
        selected.add(i)
        candidates = _flat_candidates(blocks[i])
        new = candidates[int(rng.integers(len(candidates)))]  # random.choice over the concatenated lists
        if i > 0:  # official: new_student_block.set_in_channels(previous block's out_channels)
            new = dataclasses.replace(new, in_channels=blocks[i - 1].out_channels)
        blocks[i] = new
    # "adjust channels": each block takes the previous block's output (set_in_channels only rewrites in-channels)
    for i in range(1, len(blocks)):
        if blocks[i].in_channels != blocks[i - 1].out_channels:
            blocks[i] = dataclasses.replace(blocks[i], in_channels=blocks[i - 1].out_channels)
    # split twice, as the official search does: the end of get_new_random_structure_str (evolution_search.py:96),
    # then get_splitted_structure_str (evolution_search.py:258 -> :103)
    return split(split(ZenNASGenotype(tuple(blocks))))


def num_layers(genotype) -> int:
    """Official `MasterNet.get_num_layers`: the sum of `sub_layers` over all blocks, stem and final 1x1 conv
    included (a res sub-layer counts 1 although it has two inverted-bottleneck units). The search's `max_layers`
    (14 for 450M / 600M, 16 for 1G) bounds this."""
    return sum(b.sub_layers for b in _as_genotype(genotype).blocks)


def search_params(genotype, num_classes: int = 1000) -> int:
    """Official `MasterNet.get_model_size()` of the network the search checks against `budget_model_size`: built
    with no_reslink=False (residual links), BN, no SE (evolution_search.py:271-276), although the score is computed
    on the network without residual links (compute_nas_score, evolution_search.py:121-122). Per layer
    (`PlainNet/basic_blocks.py`): ConvKX cin * cout * k^2 / groups and ConvDW c * k^2 (weights only), BN c (ONE per
    channel), ResBlock / ResBlockProj shortcut cin * cout + cout (its 1x1 conv weight and one per channel; present
    under the same rule as in `search_flops`), Linear in * num_classes + 1 (its bias counted as 1:
    `int(self.use_bias)`). In terms of the flax network of `zennas_imagenet` with residual=True: every conv /
    dense kernel plus every BatchNorm scale, plus 1 (no BN shift, no conv or dense bias)."""
    total = 0
    for b in _as_genotype(genotype).blocks:
        cin = b.in_channels
        for j in range(b.sub_layers):
            stride = b.stride if j == 0 else 1
            if not b.is_res:  # ConvKX + BN + RELU
                total += cin * b.out_channels * b.kernel ** 2 + b.out_channels
                cin = b.out_channels
                continue
            units = ((cin, b.bottleneck, smart_round(b.bottleneck * b.expansion, 8), stride),
                     (b.bottleneck, b.out_channels, smart_round(b.out_channels * b.expansion, 8), 1))
            for u, (ci, co, dw, st) in enumerate(units):
                total += ci * dw + dw  # 1x1 expand + BN
                total += dw * b.kernel ** 2 + dw  # depthwise + BN
                total += dw * co + co  # 1x1 project + BN
                if (j == 0 and u == 0) or st > 1 or ci != co:  # ResBlockProj / projecting ResBlock
                    total += ci * co + co
            cin = b.out_channels
    return total + cin * num_classes + 1  # fc_linear: in * out + int(use_bias)


def search_flops(genotype, image_size: int = 224, num_classes: int = 1000) -> float:
    """Official `MasterNet.get_FLOPs(image_size)` of the network the search checks against `budget_flops`: built
    with no_reslink=False (residual links), BN, no SE. Per layer (`basic_blocks.py`), with r the input resolution:
      * ConvKX: cin * cout * k^2 * r^2 // s^2 (integer division); ConvDW: c * k^2 * r^2 // s^2; output r // s;
      * BN: r^2 * c (counted, unlike ReLU, which is 0); Linear: in * num_classes (its bias not counted);
      * ResBlock / ResBlockProj shortcut (ResBlockProj for unit 0 of a block's first sub-layer, ResBlock with a
        projection when its stride > 1 or in != out): cin * cout * (r_out / s)^2 + (r_out / s)^2 * cout, float.
        r_out is the unit's OUTPUT resolution, divided by the stride again: a stride-2 shortcut is counted at a
        quarter of its cost. This is a bug in the official code, reproduced here because the official budget
        check (and so the released networks) used it.
    The four released ZiCo genotypes give 438.39M, 590.29M, 979.22M (1G) and 450.0M (#Params) at 224."""
    res, total = image_size, 0.0
    for b in _as_genotype(genotype).blocks:
        cin = b.in_channels
        for j in range(b.sub_layers):
            stride = b.stride if j == 0 else 1
            if not b.is_res:  # ConvKX + BN + RELU
                total += cin * b.out_channels * b.kernel ** 2 * res ** 2 // stride ** 2
                res //= stride
                total += res ** 2 * b.out_channels
                cin = b.out_channels
                continue
            units = ((cin, b.bottleneck, smart_round(b.bottleneck * b.expansion, 8), stride),
                     (b.bottleneck, b.out_channels, smart_round(b.out_channels * b.expansion, 8), 1))
            for u, (ci, co, dw, st) in enumerate(units):
                flops = ci * dw * res ** 2 + res ** 2 * dw  # 1x1 expand + BN
                flops += dw * b.kernel ** 2 * res ** 2 // st ** 2  # depthwise
                res //= st
                flops += res ** 2 * dw + dw * co * res ** 2 + res ** 2 * co  # BN, 1x1 project, BN
                if (j == 0 and u == 0) or st > 1 or ci != co:  # ResBlockProj / projecting ResBlock
                    flops += ci * co * (res / st) ** 2 + (res / st) ** 2 * co  # the quarter-counting bug
                total += flops
            cin = b.out_channels
    return total + cin * num_classes  # fc_linear
