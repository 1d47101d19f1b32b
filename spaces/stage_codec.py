"""The genotype-as-data half of a space whose genotype is one choice per field per stage (ZiCo-BC's EfficientNet
and FFNet spaces): integer code, decoding with errors, uniform sampling, mutation and a stable id.

A space mixes in `StageChoiceCodec` and sets `gene_type` (a dataclass, one value per field), `genotype_type`
(holds `stages: tuple[gene, ...]`), `stage_fields(stage) -> ((field, choices), ...)` in the gene's field order,
and `code_name` (for errors); it provides `self.stages` and `parse`.

Code: per stage, the index of each field's value in its choice list, stages concatenated (int32).

Example:
    >>> space = get_space("ffnet_seg")
    >>> space.decode(space.encode("c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc"))
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Sequence

import numpy as np

from zico_jax.errors import GenotypeError


class StageChoiceCodec:
    gene_type: type
    genotype_type: type
    code_name: str = "stage"

    @staticmethod
    def stage_fields(stage) -> tuple:
        raise NotImplementedError

    def _as_genotype(self, g):
        if isinstance(g, self.genotype_type):
            return g
        if isinstance(g, str):
            return self.parse(g)
        return self.decode(g)

    def _sizes(self) -> list[int]:
        return [len(choices) for s in self.stages for _, choices in self.stage_fields(s)]

    def encode(self, genotype) -> np.ndarray:
        """Per stage the indices of its fields' values in their choice lists, as int32."""
        g = self._as_genotype(genotype)
        return np.array([choices.index(v) for s, gene in zip(self.stages, g.stages)
                         for (_, choices), v in zip(self.stage_fields(s), dataclasses.astuple(gene))], np.int32)

    def decode(self, code: Sequence[int]):
        code = np.asarray(code)
        per = len(self.stage_fields(self.stages[0]))
        n = per * len(self.stages)
        if code.shape != (n,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"{self.code_name} code: expected {n} integers ({per} per stage), got shape "
                                f"{code.shape} of {code.dtype}")
        genes = []
        for i, s in enumerate(self.stages):
            values = []
            for (field, choices), c in zip(self.stage_fields(s), code[per * i:per * (i + 1)].tolist()):
                if not 0 <= c < len(choices):
                    raise GenotypeError(f"{self.code_name} code: stage {i} {field} index {c}; "
                                        f"expected 0..{len(choices) - 1}")
                values.append(choices[c])
            genes.append(self.gene_type(*values))
        return self.genotype_type(tuple(genes))

    def sample(self, rng: np.random.Generator):
        """Every field of every stage uniformly from its choices."""
        return self.decode(np.array([rng.integers(n) for n in self._sizes()], np.int32))

    def mutate(self, genotype, rng: np.random.Generator, num_mutations: int = 1):
        """`num_mutations` times: pick a (stage, field) with more than one choice uniformly and change it to a
        different value (uniformly)."""
        code, sizes = self.encode(genotype), self._sizes()
        mutable = [i for i, n in enumerate(sizes) if n > 1]
        for _ in range(num_mutations):
            i = mutable[rng.integers(len(mutable))]
            code[i] = (code[i] + rng.integers(1, sizes[i])) % sizes[i]
        return self.decode(code)

    def arch_id(self, genotype) -> int:
        """sha1 of the canonical string, mod 2**31: stable across runs and machines."""
        return int(hashlib.sha1(str(self._as_genotype(genotype)).encode()).hexdigest(), 16) % 2**31
