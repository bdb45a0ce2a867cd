"""Bounds on every size a user can ask for, each with the reason for its value. A request past one is refused
with a message naming the field or option, the value and the bound; none of them changes a result.

They keep a typo (`instances: 1e15`, `per_day: 1e9`) from running for days or exhausting memory, far above what
a real study needs: on the 2-core reference machine Monte Carlo runs contract review at about 2.5 million
instances a second, the timeline engine about 30,000 arrivals a second.
"""

from __future__ import annotations

MAX_INSTANCES = 1_000_000_000
"""Instances per variant (Monte Carlo: about 7 minutes per variant for contract review; the CI half-width at
p = 0.2 is then 2.5e-5). Memory does not grow with it: instances are simulated in chunks."""

MAX_SEED = 2**63 - 1
"""Seeds are stored as 64-bit integers in the outputs."""

MAX_CHUNK = 1 << 22
"""Instances held in memory at once (4,194,304: about 1 GB for a 64-step workflow)."""

MAX_INSTANCE_ROWS = 50_000_000
"""Per-instance rows written per variant (a 1 GB parquet file; beyond it a sample is all a reader can use)."""

MAX_WORKERS = 256
"""Worker processes."""

MAX_REPLICATIONS = 10_000
"""Timeline replications (each one simulates the whole horizon)."""

MAX_ARRIVALS_PER_REPLICATION = 5_000_000
"""Expected arrivals in one timeline replication (about 3 minutes of simulated queues; memory grows with it)."""

MAX_ARRIVALS = 50_000_000
"""Expected arrivals over all timeline replications and variants (about half an hour)."""

MAX_AMOUNT = 1e15
"""Largest amount of money in any currency (a quadrillion): sums over a billion instances stay finite."""

MAX_PROBES = 100_000
"""Probe queries of one retriever measurement (each is embedded, searched twice, and its gold passage twinned)."""

MAX_PASSAGES = 1_000_000
"""Most passages (and queries, and tickets) a file may hold: each passage is embedded (about 400 a second here)."""

MAX_PASSAGE_CHARS = 10_000_000
"""Most characters in one passage, query or id. Longer texts are read, then cut to what the model reads
(`sim.retrieval.embedding.Embedder.readable`) before twins are made and vectors computed."""

MAX_ID_CHARS = 512
"""Most characters in a passage id."""

MAX_DATA_FILE_BYTES = 2 << 30
"""Largest corpus, queries or tickets file read (2 GiB): every record is held in memory, several times over."""

MAX_VARIANTS = 100
"""Variants of one scenario (each one is a whole run)."""

MAX_LLM_CONCURRENCY = 256
"""Model requests in flight at once (agent engine, `--llm-concurrency`): one thread each; servers that take
more at once are rare, and beyond it the threads cost more than they save."""

MAX_EXPORT_TRACES = 1_000_000
"""Traces per variant `cascade export` writes or sends (about 17 spans each for contract review: a 30 GB OTLP
JSON file at the bound; beyond it a sample is all a trace viewer can show)."""

MAX_TRACE_FILE_BYTES = 2 << 30
"""Largest span file `cascade import` reads (2 GiB): the file is parsed whole, as OTLP JSON is one document."""

MAX_IMPORT_SPANS = 10_000_000
"""Spans `cascade import` reads from one file (each becomes a protobuf message and a trace-table row)."""

MAX_UNCERTAINTY_DRAWS = 100_000
"""Parameter draws of one uncertainty run (point by point, about 20 minutes for a three-variant contract review;
the 5% and 95% quantiles of its outputs have settled to about 0.1% long before)."""

MAX_SWEEP_POINTS = 100_000
"""Points of one sweep, engines included (each sampled point is a whole run; the analytic engine evaluates about
200 points a second here, so the bound is minutes of exact figures or days of sampled ones)."""
