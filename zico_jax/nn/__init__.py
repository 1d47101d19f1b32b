"""The building blocks below both the search spaces and the engine: layers with the benchmarks' initialisers and
BatchNorm semantics (`layers`), the task losses (`losses`) and the node type a network's tape is made of
(`tape_nodes`). Nothing here imports a space or the engine."""
