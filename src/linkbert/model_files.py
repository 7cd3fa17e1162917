"""A model folder's files checked before a library reads them: what is wrong with a damaged or
foreign folder (given to ``init=``, ``--model`` or ``export``) is a ``BadInput`` of one line
naming the file and what was expected, never the library's traceback, and a folder whose weights
would leave the model at its random initial values (names that match nothing) or poison it (NaN)
is refused rather than trained from.

* :func:`read_config`: ``config.json``, a JSON object naming an architecture transformers knows;
* :func:`tensor_shapes`: every ``*.safetensors`` file's header (names, shapes), which safetensors
  checks against the file's size (a truncated file is found without reading its data);
* :func:`check_weights`: those shapes against an empty model of a class built from the config
  (on the meta device: no memory), and at least one weight of its encoder among them;
* :func:`nonfinite_tensors`: the tensors holding NaN or infinity (reads every tensor once).

Example::

    >>> config = read_config(folder)
    >>> check_weights(folder, AutoModelForMaskedLM, AutoConfig.for_model(**config))
"""

from __future__ import annotations

from pathlib import Path

from linkbert.errors import BadInput
from linkbert.json_input import load_file

CONFIG = "config.json"
INDEX = "model.safetensors.index.json"


def read_config(folder, *, name: str = CONFIG) -> dict:
    """``folder/config.json`` as a dict, its ``model_type`` one transformers knows."""
    from transformers import CONFIG_MAPPING

    path = Path(folder) / name
    config = load_file(path)
    if not isinstance(config, dict):
        raise BadInput(str(path), "", "bad_config", f"a JSON {type(config).__name__}, not a model config (a JSON object)")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise BadInput(str(path), "", "bad_config", f"model_type {model_type!r} is not an architecture transformers "
                                                    "knows (bert, roberta, modernbert, ...)")
    return config


def weight_files(folder) -> list[Path]:
    """The folder's safetensors files: those its index names, else every ``*.safetensors``."""
    folder = Path(folder)
    if (folder / INDEX).is_file():
        index = load_file(folder / INDEX)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise BadInput(str(folder / INDEX), "", "bad_config", 'expected {"weight_map": {tensor: file}}')
        return [folder / name for name in sorted(set(weight_map.values()))]
    return sorted(folder.glob("*.safetensors"))


def tensor_shapes(folder) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """``{tensor name: (its file, its shape)}`` from the headers of the folder's weight files."""
    from safetensors import SafetensorError, safe_open

    shapes = {}
    for path in weight_files(folder):
        try:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():
                    shapes[name] = (path, tuple(f.get_slice(name).get_shape()))
        except FileNotFoundError:
            raise BadInput(str(path), "", "missing_weights", "missing (named by the folder's index)") from None
        except SafetensorError as e:  # safetensors' one error type for every way a file is damaged
            raise BadInput(str(path), "", "damaged_weights",
                           f"not a readable safetensors file ({_first_line(e)}): truncated or damaged?") from None
    return shapes


def check_weights(folder, model_class, config, rename=None) -> None:
    """The weights of ``folder`` fit a ``model_class`` of ``config``: no tensor the model has (by
    its name, with or without the base model's prefix) of another shape, and at least one weight
    of the encoder among them (else every weight would start at random). The model is built on
    the meta device: shapes only. ``rename(shapes, base model prefix)``: the names an older
    checkpoint format's tensors have in this one (``model.pretraining.upgrade_weights``)."""
    import torch

    shapes = tensor_shapes(folder)
    with torch.device("meta"):  # an Auto class builds from a config, a model class is one
        model = model_class.from_config(config) if hasattr(model_class, "from_config") else model_class(config)
    if rename is not None:
        shapes = rename(shapes, model.base_model_prefix)
    own = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    prefix = f"{model.base_model_prefix}."
    matched = 0
    for name, (path, shape) in shapes.items():
        for candidate in (name, prefix + name, name.removeprefix(prefix)):
            if candidate in own:
                if own[candidate] != shape:
                    raise BadInput(str(path), "", "shape_mismatch",
                                   f"tensor {name} has shape {list(shape)} where a {type(model).__name__} of the "
                                   f"folder's {CONFIG} has {list(own[candidate])}: weights and config of different "
                                   "models?")
                matched += candidate.startswith(prefix)
                break
    if not matched:
        examples = ", ".join(sorted(shapes)[:3]) or "none"
        files = sorted({str(path) for path, _ in shapes.values()})
        raise BadInput(files[0] if len(files) == 1 else str(Path(folder)), "", "weights_match_nothing",
                       f"none of its {len(shapes)} tensors is a weight of {type(model).__name__}'s encoder (found: "
                       f"{examples}; expected names such as {next(iter(own))}): the model would start from random "
                       "weights")


def nonfinite_tensors(folder) -> list[str]:
    """The names of the tensors holding NaN or infinity, in file order."""
    import torch
    from safetensors import safe_open

    bad = []
    for path in weight_files(folder):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    bad.append(name)
    return bad


def check_finite(folder) -> None:
    """A ``BadInput`` naming the tensors that hold NaN or infinity: a model that starts from them
    computes NaN losses from its first step, which the run would blame on its learning rate."""
    bad = nonfinite_tensors(folder)
    if bad:
        raise BadInput(str(Path(folder)), "", "nonfinite_weights",
                       f"{len(bad)} tensor(s) hold NaN or infinity ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}):"
                       " the weights are damaged (a run that diverged?), not a model to start from")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

