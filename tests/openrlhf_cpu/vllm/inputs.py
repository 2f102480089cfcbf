"""``vllm.inputs.TokensPrompt``: a dict holding ``prompt_token_ids``."""

TokensPrompt = dict
