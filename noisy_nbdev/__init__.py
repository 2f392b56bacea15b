"""Training neural networks under label noise: ASIF and LIMIT, literate, tested and reproducible

Modules:

- `noisy_nbdev.asif`: An identifier that tries to tell training samples apart within each class, held at maximum uncertainty by Dynamic Gradient Reversal, so that the features stop carrying what memorisation needs.
- `noisy_nbdev.batched`: Train M runs of the same network and method in lockstep in one process: stacked parameters, one optimiser, each member with its own data, seed, noise, batch order, early stopping and records.
- `noisy_nbdev.cleanlab_compare`: cleanlab as a third detector of wrong labels: its noise-matrix convention against ours, out-of-sample probabilities by K-fold cross-validation with the run's own model and budget, and one detection table per run.
- `noisy_nbdev.ddp`: Data-parallel training under `torchrun`: `noisy-train ... --ddp` runs one process per device, each on its part of every batch, with the gradients, the BatchNorm statistics, the per-sample records and ASIF's per-class state combined across processes so that the run equals one process training on the whole batch.
- `noisy_nbdev.declarations`: Every table and figure of ASIF and LIMIT as an `Experiment`: the paper's protocol (`paper` profile) and what two CPU cores can run on the data we have (`local` profile), with each substitution written down.
- `noisy_nbdev.executors`: Where a sweep's runs execute: `local` worker processes, Ray tasks, or SLURM jobs through submitit. The run folders stay the unit of truth, so the same `noisy-sweep` command works on a laptop, a Ray cluster and a SLURM cluster, and gives the same records on each.
- `noisy_nbdev.experiments`: Every table and figure of both papers declared once: data, model, noise, sizes, methods with their grids, seeds, selection rule, and a `paper` and a `local` profile. Runs expand from a declaration; tables come back from the runs' records, beside the papers' numbers.
- `noisy_nbdev.limit`: An auxiliary network predicts the classifier's logit gradient without seeing labels; the classifier trains on the prediction, so the labels' noise cannot flow into its weights.
- `noisy_nbdev.own_data`: Noisy labels in; the samples whose labels look wrong, and a model trained without them, out; cleanlab's answer beside ours.
- `noisy_nbdev.probes`: Linear probes on frozen features: how well they identify single training samples (ASIF Table VI) and how many feature dimensions classification really uses (ASIF Fig. 4).
- `noisy_nbdev.sweep`: The sweep runner: from a declared experiment to finished run folders. What is left to run and what it costs (`plan`), running it in worker processes with the CE runs that others start from first (`run_sweep`), and the post-run analyses each run gets (`ANALYSES`). `noisy-sweep smoke` checks an installation in seconds."""

__version__ = "0.0.1"
