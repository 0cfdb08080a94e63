"""The model analyses of a partitioned study, registered on the public functions.

Importing this module makes :func:`~backpain_outcomes.mixed.fit_mixed_model`,
:func:`~backpain_outcomes.curves.fit_recovery_curves` and
:func:`~backpain_outcomes.trajectories.fit_trajectories` accept a
:class:`~backpain_outcomes.registry.PartitionedStudy` (or any
:class:`~backpain_outcomes.registry.Partitions`) as ``study``, with the same
arguments and the same result types as for an in-memory Study:

* mixed model: per-group cross-products of every partition, merged
  (:mod:`backpain_outcomes.registry_mixed`); estimates equal the in-memory fit
  to about 1e-11;
* pooled recovery curves: per-(group, day) sums and per-episode scores
  (:mod:`backpain_outcomes.registry_curves`); ``se="bootstrap"`` is refused;
* trajectory classes: EM on per-partition sums, the episodes' statistics kept
  on the workers (:mod:`backpain_outcomes.registry_trajectories`); estimates
  equal the in-memory fit to about 1e-12, no measurement on the driver.

The public modules never import this one (no import cycle);
:mod:`backpain_outcomes.registry` imports it, so the registrations are in
place wherever a partitioned study can be loaded.
"""

from __future__ import annotations

from .curves import fit_recovery_curves
from .mixed import fit_mixed_model
from .registry_curves import fit_recovery_curves_partitioned
from .registry_mixed import fit_mixed_model_partitioned
from .registry_partitions import Partitions
from .registry_trajectories import fit_trajectories_partitioned
from .trajectories import fit_trajectories

__all__ = ["fit_mixed_model_partitioned", "fit_recovery_curves_partitioned", "fit_trajectories_partitioned"]

fit_mixed_model.register(Partitions, fit_mixed_model_partitioned)
fit_recovery_curves.register(Partitions, fit_recovery_curves_partitioned)
fit_trajectories.register(Partitions, fit_trajectories_partitioned)
