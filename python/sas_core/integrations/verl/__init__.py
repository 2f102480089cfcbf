"""SAS as verl's advantage estimator: ``algorithm.adv_estimator=sas`` (verl 0.9.x).

verl computes advantages in its ``TaskRunner`` Ray actor, in
``verl.trainer.ppo.ray_trainer.compute_advantage``, whose registered estimators see
rewards, the response mask and the prompt ``uid`` only. So sas-core (1) registers
``sas`` with ``register_adv_est`` (config validation accepts it; its GRPO part is
verl's own ``compute_grpo_outcome_advantage``) and (2) wraps ``compute_advantage``,
where the whole ``DataProto`` is at hand, to zero the selected steps of the final
per-token advantages. Both happen in any process that imports verl's trainer, through
the ``verl.plugins`` entry point of this package (:mod:`.plugin`, which verl loads on
``import verl``).

Options under ``algorithm.sas.*`` (:class:`.options.VerlSASOptions`), checked when the
trainer is built. Both of verl 0.9's trainers: the legacy one (``trainer.use_v1=False``)
and the V1 one (the default), whose advantage step fetches its inputs from the
TransferQueue without the response ids; :mod:`.v1` fetches them for it.
"""

from sas_core.integrations.verl.plugin import install_import_hook

__all__ = ["install_import_hook"]
