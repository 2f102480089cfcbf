#!/usr/bin/env bash
# The SAS paper's run (arXiv 2604.24003) in OpenRLHF 0.11: DeepScaleR-1.5B-Preview
# post-trained with GRPO at a 4K response window, with SAS or as the plain GRPO baseline.
#
#   bash train_deepscaler_4k.sh sas     # SAS (ratio 0.3, both rollout kinds, confidence)
#   bash train_deepscaler_4k.sh grpo    # the GRPO-4K baseline: same run, group_norm
#
# Paper settings: 8 rollouts per prompt, rollout batch 128 prompts, lr 1e-6, 500 steps,
# temperature 0.6, 4096 response tokens. Here one optimiser step per rollout batch
# (train batch 128 x 8 = 1024), 2 episodes over 32,000 prompts = 500 steps.
#
# Assumes ONE NODE WITH 8 GPUs of 80 GB (A100/H100, or MI300 with ROCm builds of vLLM
# and DeepSpeed): actor, reference and 8 vLLM engines (TP 1) colocated on all 8 GPUs.
# Set GPUS for another count (it must divide 1024 / TRAIN_MICRO_BATCH).
# Needs: pip install "sas-core[openrlhf]" vllm; the data from prepare_deepscaler_data.py.
set -euo pipefail

RUN=${1:-sas}
case "$RUN" in
  sas) ESTIMATOR=sas ;;
  grpo) ESTIMATOR=group_norm ;;
  *) echo "usage: $0 sas|grpo" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python}
MODEL=${MODEL:-agentica-org/DeepScaleR-1.5B-Preview}
DATA=${DATA:-$HOME/data/deepscaler/train.jsonl}
GPUS=${GPUS:-8}
TRAIN_MICRO_BATCH=${TRAIN_MICRO_BATCH:-4}
OUT=${OUT:-./runs/deepscaler-1.5b-4k-$RUN}
REWARD=$("$PYTHON" -m sas_core.integrations.openrlhf.reward_func)

WANDB=()
if [[ -n "${WANDB_API_KEY:-}" ]]; then
  WANDB=(--logger.wandb.key "$WANDB_API_KEY" --logger.wandb.project sas-deepscaler
         --logger.wandb.run_name "deepscaler-1.5b-4k-$RUN")
fi

# OpenRLHF's own CLI module: sas-core's wheel registers `sas` with it at start (its .pth
# hook). `sas-openrlhf-train` (python -m sas_core.integrations.openrlhf) takes the same
# arguments and is the explicit alternative where the hook is off (SAS_CORE_OPENRLHF_HOOK=0).
exec "$PYTHON" -m openrlhf.cli.train_ppo_ray \
  --actor.model_name_or_path "$MODEL" \
  --actor.num_nodes 1 --actor.num_gpus_per_node "$GPUS" \
  --ref.num_nodes 1 --ref.num_gpus_per_node "$GPUS" \
  --vllm.num_engines "$GPUS" --vllm.tensor_parallel_size 1 \
  --vllm.gpu_memory_utilization 0.6 --vllm.enable_sleep --ds.enable_sleep \
  --train.colocate_all \
  --data.prompt_dataset "$DATA" --data.input_key prompt --data.label_key answer \
  --data.apply_chat_template \
  --data.max_samples 32000 --train.num_episodes 2 \
  --data.max_len 5120 --rollout.max_new_tokens 4096 \
  --rollout.batch_size 128 --rollout.n_samples_per_prompt 8 \
  --rollout.micro_batch_size 16 \
  --rollout.temperature 0.6 --rollout.top_p 1.0 \
  --train.batch_size 1024 --train.micro_batch_size "$TRAIN_MICRO_BATCH" \
  --actor.adam.lr 1e-6 --actor.lr_warmup_ratio 0 --actor.lr_scheduler constant \
  --algo.advantage.estimator "$ESTIMATOR" \
  --algo.advantage.sas.ratio 0.3 --algo.advantage.sas.mode both \
  --algo.advantage.sas.selection confidence --algo.advantage.sas.logprobs action \
  --algo.kl.use_loss --algo.kl.init_coef 0.001 --algo.kl.estimator k3 \
  --reward.remote_url "$REWARD" \
  --ds.zero_stage 2 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable \
  --ds.packing_samples --ds.attn_implementation flash_attention_2 \
  --train.seed 42 \
  --ckpt.output_dir "$OUT" --ckpt.path "$OUT/ckpt" --ckpt.save_steps 50 \
  --logger.logging_steps 1 --logger.tensorboard_dir "$OUT/tensorboard" \
  "${WANDB[@]}" "${@:2}"
