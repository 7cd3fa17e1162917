"""norm_precision (``model/precision.py``): LayerNorms in the autocast dtype, the same parameters."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_batch, small_model


@pytest.mark.parametrize("backend", ["transformers", "bert-cpu"])
def test_layer_norms_in_the_autocast_dtype_keep_the_model_and_its_loss(backend):
    model = small_model(backend=backend).eval()
    names = list(model.state_dict())
    batch = make_batch()
    outputs = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for precision in ("fp32", "autocast"):
            model.norm_precision(precision)
            seen = []
            hook = model.mlm.bert.encoder.layer[0].output.LayerNorm.register_forward_hook(
                lambda module, args, out: seen.append(out.dtype))
            outputs[precision] = model(**batch)
            hook.remove()
            assert seen == [torch.float32 if precision == "fp32" else torch.bfloat16]
    assert list(model.state_dict()) == names
    torch.testing.assert_close(outputs["autocast"].loss, outputs["fp32"].loss, rtol=2e-2, atol=2e-2)
    outputs["autocast"].loss.backward()
    assert model.mlm.bert.embeddings.LayerNorm.weight.grad is not None
    model.norm_precision("autocast")
    plain = model(**batch).loss  # outside autocast: float32, as before
    model.norm_precision("fp32")
    assert torch.equal(plain, model(**batch).loss)
