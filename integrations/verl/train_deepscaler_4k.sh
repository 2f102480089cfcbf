#!/usr/bin/env bash
# The SAS paper's run (arXiv 2604.24003) in verl 0.9, the paper's own framework:
# DeepScaleR-1.5B-Preview post-trained with GRPO at a 4K response window, with SAS or
# as the plain GRPO baseline, through verl's own `python -m verl.trainer.main_ppo`.
#
#   bash train_deepscaler_4k.sh sas     # SAS (ratio 0.3, both rollout kinds, confidence)
#   bash train_deepscaler_4k.sh grpo    # the GRPO-4K baseline: same run, adv_estimator=grpo
#   SAS_VERL_DRY_RUN=1 bash train_deepscaler_4k.sh sas   # print the command, run nothing
#   bash train_deepscaler_4k.sh sas trainer.use_v1=False  # verl's legacy trainer instead
#
# Paper settings: 8 rollouts per prompt, batch 128 prompts, lr 1e-6, 500 steps,
# temperature 0.6, 4096 response tokens. Assumes one node with 8 GPUs of 80 GB.
# Needs: pip install "sas-core[verl]" vllm; parquet data (prompt, reward_model.ground_truth)
# as verl's examples/data_preprocess make them.
set -euo pipefail

RUN=${1:-sas}
case "$RUN" in
  sas) ESTIMATOR=sas ;;
  grpo) ESTIMATOR=grpo ;;
  *) echo "usage: $0 sas|grpo" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python}
MODEL=${MODEL:-agentica-org/DeepScaleR-1.5B-Preview}
DATA=${DATA:-$HOME/data/deepscaler}
GPUS=${GPUS:-8}
REWARD=$("$PYTHON" -m sas_core.integrations.verl.reward)

# The SAS options' defaults, each left out when the user adds that key (+ or
# ++: Hydra refuses to add a key twice); a plain algorithm.sas.KEY=... overrides it.
SAS=()
for opt in ratio=0.3 mode=both selection=confidence logprobs=old shield=all; do
  key=${opt%%=*}
  for arg in "${@:2}"; do
    [[ "$arg" =~ ^\+{1,2}algorithm\.sas\.$key= ]] && continue 2
  done
  SAS+=("+algorithm.sas.$opt")
done

CMD=("$PYTHON" -m verl.trainer.main_ppo
  algorithm.adv_estimator="$ESTIMATOR"
  "${SAS[@]}"
  algorithm.use_kl_in_reward=False
  data.train_files="$DATA/train.parquet" data.val_files="$DATA/test.parquet"
  data.train_batch_size=128 data.max_prompt_length=1024 data.max_response_length=4096
  actor_rollout_ref.model.path="$MODEL"
  actor_rollout_ref.actor.optim.lr=1e-6
  actor_rollout_ref.actor.ppo_mini_batch_size=128
  actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.001
  actor_rollout_ref.actor.kl_loss_type=low_var_kl
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=8
  actor_rollout_ref.rollout.temperature=0.6
  reward.custom_reward_function.path="$REWARD" reward.custom_reward_function.name=compute_score
  trainer.n_gpus_per_node="$GPUS" trainer.nnodes=1
  trainer.total_training_steps=500
  trainer.project_name=sas-deepscaler trainer.experiment_name="deepscaler-1.5b-4k-$RUN"
  "${@:2}")

if [[ -n "${SAS_VERL_DRY_RUN:-}" ]]; then
  # The command, then verl's own config composed with these overrides (options checked)
  printf '%q ' "${CMD[@]}"; echo
  exec "$PYTHON" -m sas_core.integrations.verl.dry_run "${CMD[@]:3}"
fi
exec "${CMD[@]}"
