"""Transfer learning: start a run from the weights of a checkpoint of the same model, on another charset.

Every parameter must match in shape, except those the model declares charset-sized
(``class_parameters()``): their rows are mapped by label (``class_labels()``), so a character keeps its
learned row wherever the new charset puts it, the special classes (blank, start, end, padding) keep theirs,
characters new to the target keep their fresh initialisation, and source characters absent from the target
are dropped. The counts go into the run's record.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.integrity import file_hash
from ..errors import UnknownNameError, UserError
from .checkpoint import checkpoint_file, load_model, weights_problem


def load_init_weights(model, path: str | Path) -> dict:
    """Load the weights of the checkpoint at ``path`` (a file or a run folder) into the fresh ``model``.

    Args:
        model: a model of the checkpoint's registered name, freshly created (possibly on another charset).
        path: a checkpoint written by :func:`ocrbench.harness.checkpoint.save_checkpoint`, or its run folder.

    Returns:
        The record's fields: ``init_from_sha256``, ``init_model``, ``init_copied_classes`` (characters whose
        rows were copied), ``init_new_classes`` and ``init_dropped_classes`` (the characters, as one string),
        ``init_charset_overlap`` (share of the target's characters found in the source).

    Raises:
        UserError: a missing or unreadable file, a checkpoint of another model, or a parameter of another
            shape (one line naming the file).
    """
    path = checkpoint_file(path)
    try:
        source = load_model(path)  # one-line UserErrors that name the file: missing, corrupt, foreign
    except UnknownNameError as e:  # a model that is not installed here
        raise UserError(f"{path}: {e}") from None
    if source.name != model.name:
        raise UserError(f"{path} holds a checkpoint of {source.name}, not of {model.name}: initialise "
                        f"{model.name} from a run of the same model")
    classes = model.class_parameters()
    target_state, source_state = model.state_dict(), source.state_dict()
    check_fits(target_state, source_state, classes, path, model.name)
    target_labels, source_labels = model.class_labels(), source.class_labels()
    with torch.no_grad():  # state_dict tensors share the parameters' storage: copy_rows writes into the model
        for key, axis in classes.items():
            copy_rows(target_state[key], source_state[key], axis, target_labels, source_labels)
        model.load_state_dict({k: v if k in classes else source_state[k] for k, v in target_state.items()})
    return transfer_record(path, source, model)


def check_fits(target: dict, source: dict, classes: dict[str, int], path: Path, name: str) -> None:
    """A one-line UserError unless ``source`` has the keys of ``target`` and the same shapes (class axes apart)."""
    for key, tensor in target.items():
        if key in source and other_axes(source[key], classes.get(key)) != other_axes(tensor, classes.get(key)):
            raise UserError(f"{path}: parameter {key} has shape {tuple(source[key].shape)} in the checkpoint but "
                            f"{tuple(tensor.shape)} in {name}: create the model with the checkpoint's arguments")
    # class-indexed sizes differ by design: compared above without their class axis, here by key only
    problem = weights_problem(target, {k: target[k] if k in classes else v for k, v in source.items()})
    if problem:
        raise UserError(f"{path}: its weights do not fit {name} ({problem}): create the model with the "
                        "checkpoint's arguments")


def other_axes(tensor: torch.Tensor, axis: int | None) -> tuple[int, ...]:
    """The shape of ``tensor`` without its class axis (all of it where ``axis`` is None)."""
    shape = tuple(tensor.shape)
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def copy_rows(target: torch.Tensor, source: torch.Tensor, axis: int, target_labels: list[str],
              source_labels: list[str]) -> None:
    """Copy, in place, the slices of ``source`` along ``axis`` into those of ``target`` of the same label; the
    axis holds the first ``size`` labels (an auxiliary head may lack the trailing special classes)."""
    where = {label: i for i, label in enumerate(source_labels[: source.shape[axis]])}
    pairs = [(i, where[label]) for i, label in enumerate(target_labels[: target.shape[axis]]) if label in where]
    if not pairs:
        return
    dst, src = (torch.tensor(index, device=target.device) for index in zip(*pairs))
    target.index_copy_(axis, dst, source.to(target).index_select(axis, src))


def transfer_record(path: Path, source, model) -> dict:
    """What the run's record says about its initial weights (counts of characters; special classes aside)."""
    source_chars, target_chars = source.charset.chars, model.charset.chars
    copied = [c for c in target_chars if c in source_chars]
    return {"init_from_sha256": file_hash(path), "init_model": source.name,
            "init_copied_classes": len(copied),
            "init_new_classes": "".join(c for c in target_chars if c not in source_chars),
            "init_dropped_classes": "".join(c for c in source_chars if c not in target_chars),
            "init_charset_overlap": len(copied) / len(target_chars) if target_chars else 1.0}

