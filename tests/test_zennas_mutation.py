"""The official Zen-NAS / ZiCo search mutation (zico_jax.spaces.zennas_mutation): hand-derived candidate lists, the
split rule, the search's layer count and FLOPs against the released networks, mutation validity, and a short
evolution run."""

import collections
import dataclasses

import ml_collections
import numpy as np
import pytest

from zico_jax.data import data_dir
from zico_jax.search import AnalyticScorer, run_search
from zico_jax.spaces import get_space
from zico_jax.spaces import zennas_mutation as M
from zico_jax.spaces.base import GenotypeError
from zico_jax.spaces.zennas import INITIAL_GENOTYPE, ZenNASSpace, parse_genotype

# Official get_FLOPs(224) of the searched model (residual links, quarter-counted stride-2 shortcuts) in M, rounded
# to 0.01M, and get_num_layers: the max_layers budgets of the official scripts are 14 (450M, 600M) and 16 (1G).
RELEASED = {
    "ZiCo_imagenet1k_flops450M_res224.txt": (438.39, 14),
    "ZiCo_imagenet1k_flops600M_res224.txt": (590.29, 14),
    "ZiCo_imagenet1k_flops1G_res224.txt": (979.22, 16),
    "Params_imagenet1k_flops450M_res224.txt": (450.00, 6),
}
# Official order of seach_space_block_type_list_list.
TYPE_NAMES = ["E1K3", "E2K3", "E4K3", "E6K3", "E1K5", "E2K5", "E4K5", "E6K5", "E1K7", "E2K7", "E4K7", "E6K7"]
TINY = "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperConvK1BNRELU(32,2048,1,1)"


def type_name(block):
    return f"E{block.expansion}K{block.kernel}"


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_genotypes_search_flops_and_layers(name):
    g = parse_genotype((data_dir() / "zico_imagenet_genotypes" / name).read_text())
    flops_m, layers = RELEASED[name]
    assert round(M.search_flops(g) / 1e6, 2) == flops_m
    assert M.num_layers(g) == layers
    space = ZenNASSpace()
    assert space.search_flops(g) == M.search_flops(g) and space.num_layers(g) == layers
    # The quarter-counted shortcut: the search's count is below the analyze_model.py count of the same network.
    assert M.search_flops(g) < ZenNASSpace(residual=True).official_flops(g)


def test_search_flops_by_hand():
    # Stem 3->8 at 32: conv 3*8*9*32^2 // 4 = 55296, BN 16^2*8 = 2048. Res E1K3(8,8,2,8,1) at 16, dw = 8:
    # unit 0 (8->8, stride 2): expand 8*8*256 + BN 8*256, dw 8*9*256 // 4, BN 8*64, project 8*8*64 + BN 8*64,
    # ResBlockProj shortcut 8*8*(8/2)^2 + (8/2)^2*8 (the quarter count); unit 1 (8->8, stride 1, identity) at 8:
    # 2 * (8*8*64 + 8*64) + 8*9*64 + 8*64. Head: SuperConvK1BNRELU(8,16,1,1) at 8: 8*16*64 + 64*16; fc 16*10.
    stem = 55296 + 2048
    unit0 = 16384 + 2048 + 4608 + 512 + 4096 + 512 + 1024 + 128
    unit1 = 2 * (4096 + 512) + 4608 + 512
    head = 8192 + 1024 + 160
    g = "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE1K3(8,8,2,8,1)SuperConvK1BNRELU(8,16,1,1)"
    assert M.search_flops(g, image_size=32, num_classes=10) == stem + unit0 + unit1 + head
    assert ZenNASSpace(image_size=32, num_classes=10).search_flops(g) == stem + unit0 + unit1 + head


def test_num_layers_hand_counted():
    assert M.num_layers(INITIAL_GENOTYPE) == 6  # six blocks of one sub-layer
    g = "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K3(8,16,2,8,3)SuperResIDWE1K5(16,16,1,8,4)SuperConvK1BNRELU(16,32,1,1)"
    assert M.num_layers(g) == 1 + 3 + 4 + 1  # a res sub-layer (two units) counts once


def test_channel_and_sublayer_choices_by_hand():
    # 40 * {2.5, 2, 1.5, 1.25, 1, /1.25, /1.5, /2, /2.5} = 100, 80, 60, 50, 40, 32, 26.7, 20, 16; /8 rounds (halves to
    # even): 12.5 -> 12, 10, 7.5 -> 8, 6.25 -> 6, 5, 4, 3.33 -> 3, 2.5 -> 2, 2.
    assert M.channel_choices(40) == [96, 80, 64, 48, 40, 32, 24, 16]
    assert M.channel_choices(8) == [16, 8]  # 20 -> 16, 16, 12 -> 16, 10 -> 8, the rest clamped to 8
    assert M.channel_choices(32) == [80, 64, 48, 40, 32, 24, 16]
    assert M.sublayer_choices(5) == [7, 6, 5, 4, 3]
    assert M.sublayer_choices(1) == [3, 2, 1, 0]


def test_gen_search_space_res_block_by_hand():
    blocks = parse_genotype(INITIAL_GENOTYPE).blocks
    lists = M.gen_search_space(blocks, 1)  # SuperResIDWE6K3(8,32,2,8,1)
    # Hand-derived: out choices of 32, sub-layers {3, 2, 1} (1 + {2, 1, 0, -1, -2}, non-positive dropped), bottleneck
    # choices of 8; in-channels 8 and stride 2 kept.
    outs, subs, btls = [80, 64, 48, 40, 32, 24, 16], [3, 2, 1], [16, 8]
    per_type = {name: {f"SuperResIDWE{name[1]}K{name[3]}(8,{o},2,{b},{s})" for o in outs for s in subs for b in btls}
                for name in TYPE_NAMES}
    assert all(len(v) == 42 for v in per_type.values())
    # The official aliasing: list t holds types 0..t+1 (list 11: all 12 types).
    assert len(lists) == 12
    for t, lst in enumerate(lists):
        expected = set().union(*(per_type[n] for n in TYPE_NAMES[:min(t + 2, 12)]))
        assert len(lst) == len(expected) and {str(b) for b in lst} == expected
    counts = collections.Counter(type_name(b) for lst in lists for b in lst)
    assert [counts[n] // 42 for n in TYPE_NAMES] == [12, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]


def test_gen_search_space_stem_and_last_block():
    blocks = parse_genotype(INITIAL_GENOTYPE).blocks
    assert [sorted(str(b) for b in lst) for lst in M.gen_search_space(blocks, 0)] == [
        ["SuperConvK3BNRELU(3,16,2,1)", "SuperConvK3BNRELU(3,8,2,1)"]]
    assert [[str(b) for b in lst] for lst in M.gen_search_space(blocks, 5)] == [["SuperConvK1BNRELU(128,2048,1,1)"]]
    with pytest.raises(IndexError, match="block_id 6 out of range"):
        M.gen_search_space(blocks, 6)


@pytest.mark.parametrize("sub_layers, expected_halves", [
    # Official SuperResIDWEXKX.split(6) (PlainNet/SuperResIDWEXKX.py:119-130): new_sublayers_1 = 6 // 2 = 3,
    # new_sublayers_2 = sub_layers - 3; the first half keeps (in, out, stride), the second is (out, out, 1).
    (6, "SuperResIDWE2K5(8,24,2,16,3)SuperResIDWE2K5(24,24,1,16,3)"),
    (7, "SuperResIDWE2K5(8,24,2,16,3)SuperResIDWE2K5(24,24,1,16,4)"),  # 3 + 4: no sub-layer lost
    (8, "SuperResIDWE2K5(8,24,2,16,3)SuperResIDWE2K5(24,24,1,16,5)"),
    (9, "SuperResIDWE2K5(8,24,2,16,3)SuperResIDWE2K5(24,24,1,16,6)"),  # the second half splits again next time
])
def test_split_rule(sub_layers, expected_halves):
    g = parse_genotype(f"SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,{sub_layers})"
                       "SuperConvK1BNRELU(24,64,1,1)")
    once = M.split(g)
    assert str(once) == f"SuperConvK3BNRELU(3,8,2,1){expected_halves}SuperConvK1BNRELU(24,64,1,1)"
    assert M.num_layers(once) == M.num_layers(g) == sub_layers + 2  # the split keeps the official layer count


def test_split_twice_as_the_official_search():
    # evolution_search.py splits every child twice (:96 and :103): 9 -> 3 + 6 -> 3 + 3 + 3; 8 -> 3 + 5 stays.
    g9 = parse_genotype("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,9)SuperConvK1BNRELU(24,64,1,1)")
    assert str(M.split(M.split(g9))) == ("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,3)"
                                          "SuperResIDWE2K5(24,24,1,16,3)SuperResIDWE2K5(24,24,1,16,3)"
                                          "SuperConvK1BNRELU(24,64,1,1)")
    g8 = parse_genotype("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,8)SuperConvK1BNRELU(24,64,1,1)")
    assert M.split(M.split(g8)) == M.split(g8)


def test_mutation_to_seven_sub_layers_splits_three_plus_four():
    # A 5-sub-layer block may become 7 (s + 2); the child's split must then keep all 7 layers: 3 + 4 (the old rule
    # gave 3 + 3 and lost one).
    parent = parse_genotype("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,5)SuperConvK1BNRELU(24,64,1,1)")
    seen = collections.Counter()
    for seed in range(300):
        child = M.mutate(parent, np.random.default_rng(seed), 1)
        if len(child.blocks) == 4:  # block 1 was replaced by one of >= 6 sub-layers and split
            first, second = child.blocks[1], child.blocks[2]
            assert first.sub_layers == 3 and (second.in_channels, second.stride) == (first.out_channels, 1)
            seen[second.sub_layers] += 1
    assert set(seen) == {3, 4} and seen[4] > 0  # 6 -> 3 + 3, 7 -> 3 + 4


def test_split_rule_small_and_conv_blocks():
    g5 = parse_genotype("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K5(8,24,2,16,5)SuperConvK1BNRELU(24,64,1,1)")
    assert M.split(g5) == g5
    conv = parse_genotype("SuperConvK3BNRELU(3,8,2,6)SuperConvK1BNRELU(8,64,1,1)")
    assert M.split(conv) == conv  # conv blocks never split


def check_valid(g, parent_blocks=None):
    again = parse_genotype(str(g))  # parseable; parse checks the channel chain and the RGB input
    assert again == g
    first, last, middle = g.blocks[0], g.blocks[-1], g.blocks[1:-1]
    assert (first.is_res, first.kernel, first.in_channels, first.stride, first.sub_layers) == (False, 3, 3, 2, 1)
    assert (last.is_res, last.kernel, last.out_channels, last.stride, last.sub_layers) == (False, 1, 2048, 1, 1)
    assert all(b.is_res and b.sub_layers < 6 for b in middle)
    assert all(b.in_channels == a.out_channels for a, b in zip(g.blocks, g.blocks[1:]))


@pytest.mark.parametrize("num_mutations", [1, 2])
def test_mutate_gives_valid_genotypes(num_mutations):
    rng = np.random.default_rng(0)
    g, changed = parse_genotype(INITIAL_GENOTYPE), 0
    for _ in range(60):
        child = M.mutate(g, rng, num_mutations)
        check_valid(child)
        if len(child.blocks) == len(g.blocks):  # no split: at most num_mutations blocks changed (in-channels aside)
            diff = sum(dataclasses.replace(a, in_channels=0) != dataclasses.replace(b, in_channels=0)
                       for a, b in zip(g.blocks, child.blocks))
            assert diff <= num_mutations
        changed += child != g
        g = child
    assert changed > 30 and M.num_layers(g) > 6


def test_each_block_replaced_at_most_once():
    # 40 draws over 6 blocks: every block is drawn, but a repeated index is skipped (official `continue`), so each
    # block of the child is a one-step candidate of the parent's block at that position.
    parent = parse_genotype(INITIAL_GENOTYPE)
    for seed in range(5):
        child = M.mutate(parent, np.random.default_rng(seed), 40)
        assert len(child.blocks) == len(parent.blocks)  # sub-layers <= 3: no split
        for old, new in zip(parent.blocks, child.blocks):
            options = {dataclasses.replace(c, in_channels=0) for lst in M.gen_search_space([old], 0) for c in lst}
            assert dataclasses.replace(new, in_channels=0) in options


def test_mutate_type_frequencies_follow_the_official_multiplicity():
    rng = np.random.default_rng(1)
    parent = parse_genotype(TINY)
    counts = collections.Counter()
    for _ in range(3000):
        child = M.mutate(parent, rng, 1)
        assert str(child.blocks[2]) == f"SuperConvK1BNRELU({child.blocks[1].out_channels},2048,1,1)"
        if dataclasses.replace(child.blocks[1], in_channels=8) != parent.blocks[1]:  # block 1 was replaced
            counts[type_name(child.blocks[1])] += 1
    total = sum(counts.values())
    assert total > 800  # block 1 is drawn a third of the time
    assert abs(counts["E1K3"] / total - 12 / 89) < 0.035 and abs(counts["E6K7"] / total - 2 / 89) < 0.015
    assert counts["E1K3"] > 3 * counts["E6K7"]


def test_mutate_determinism_and_space_methods():
    space = get_space("zennas_imagenet")
    a = [str(space.mutate(INITIAL_GENOTYPE, np.random.default_rng(7), 2)) for _ in range(2)]
    assert a[0] == a[1]
    assert len({str(space.mutate(INITIAL_GENOTYPE, np.random.default_rng(s), 2)) for s in range(10)}) > 3
    assert str(space.initial_genotype()) == INITIAL_GENOTYPE
    assert space.num_layers(INITIAL_GENOTYPE) == 6
    samples = [space.sample(np.random.default_rng(s)) for s in (3, 3, 4)]
    assert samples[0] == samples[1]
    for g in samples:
        check_valid(g)
    assert len({str(space.sample(np.random.default_rng(s))) for s in range(10)}) > 5


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_mutate_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="num_mutations must be an integer >= 1"):
        M.mutate(INITIAL_GENOTYPE, np.random.default_rng(0), bad)


def test_mutate_rejects_bad_genotype_and_rng():
    with pytest.raises(GenotypeError, match="unknown block type"):
        M.mutate("SuperConvK3BNRELU(3,8,2,1)SuperFoo(8,8,1,1)", np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        M.mutate(INITIAL_GENOTYPE, 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        ZenNASSpace().sample(None)


def test_evolution_runs_under_a_flops_budget(tmp_path):
    space = ZenNASSpace()
    config = ml_collections.ConfigDict(dict(
        mode="evolution", proxy="params", iterations=40, population_size=12, children_per_round=4, seed=0,
        checkpoint_every=1000, resume=False, log_every=0,
        budgets=dict(flops=300e6, params=None, layers=14, latency=None)))
    summary = run_search(space, AnalyticScorer(space), config, output_dir=tmp_path)
    assert summary["iterations"] == 40 and summary["scored"] > 0 and summary["rejected"] > 0
    best = parse_genotype(summary["best"]["arch"])
    check_valid(best)
    assert space.search_flops(best) <= 300e6 and space.num_layers(best) <= 14
    assert summary["best"]["score"] == space.params(best) > space.params(INITIAL_GENOTYPE)
