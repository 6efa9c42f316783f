"""Problem kinds. A task declares one (``task.kind``); a loss declares the ones it serves (``task_kinds``)."""

REGRESSION = "regression"
SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
TOKEN = "token_classification"
ORDINAL = "ordinal"
CAUSAL_LM = "causal_lm"
SEQ2SEQ = "seq2seq"  # encoder-decoder: decoder logits (batch, target tokens, vocab) against unshifted targets
ANY = (REGRESSION, SINGLE_LABEL, MULTI_LABEL, TOKEN, ORDINAL, CAUSAL_LM, SEQ2SEQ)
IGNORE_INDEX = -100  # a label element no loss or metric counts (the Trainer's and the collators' padding)
