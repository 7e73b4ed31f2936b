"""Checkpoints of a training run: written atomically by :func:`save_checkpoint`, continued by :func:`restore`,
and rebuilt into a model by :func:`load_model` (``ocrbench eval``, ``page``, ``viz``).

A checkpoint holds only plain data (the model's name, arguments and charset; state_dicts; RNG states; the
training state's fields), never a pickled class, so moving or renaming code cannot break loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import UserError
from ..records import atomic_write
from . import distributed

if TYPE_CHECKING:
    from .train import TrainState

CHECKPOINT = "checkpoint.pt"  # the file name in a run folder


def save_checkpoint(path: Path, model, optimizer, scaler, state: TrainState, config_hash: str,
                    rank_rng: list[dict] | None = None) -> None:
    """Atomic (a crash mid-write never leaves a broken checkpoint, nor a temp file). ``rank_rng``: every
    data-parallel rank's RNG states (:func:`ocrbench.harness.distributed.gather_rng_states`)."""
    checkpoint = {"meta": model_meta(model), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scaler": scaler.state_dict() if scaler is not None else None, "state": state.__dict__,
                  "config_hash": config_hash, "rng": torch.get_rng_state(),
                  # dropout on a GPU draws from the CUDA generators: without them a resumed run is not exact there
                  "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}
    if rank_rng is not None:
        checkpoint["rank_rng"] = rank_rng
    atomic_write(path, lambda tmp: save_torch(checkpoint, tmp))


def save_torch(obj, path: Path) -> None:
    """``torch.save`` through a Python file, so that a full disk is the ``OSError`` (ENOSPC) it is: torch's own
    file writer reports only "unexpected pos", a RuntimeError the suite would record as the model's failure."""
    try:
        with open(path, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                if isinstance(e.__context__, OSError):
                    raise e.__context__ from None
                raise
    except OSError as e:
        e.filename = e.filename or str(path)  # so the user's one line names the file
        raise


def model_meta(model) -> dict:
    """What is needed to rebuild the model from a checkpoint."""
    return {"name": model.name, "kwargs": model.create_kwargs, "charset": model.charset.chars}


CHECKPOINT_SOURCE = ("checkpoints come from `ocrbench train` or `ocrbench run` "
                     "(runs/<suite>/<model>-<hash>/checkpoint.pt)")


def load_model(path: str | Path):
    """Rebuild a trained model from a checkpoint written by :func:`train`; a clear error for a foreign
    ``.pt`` (a bare state_dict, a list)."""
    from ..data.charset import Charset  # the registry and the data are above the harness: looked up lazily
    from ..models import create_model

    ckpt = load_checkpoint(Path(path))
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    if not (isinstance(meta, dict) and {"name", "kwargs", "charset"} <= meta.keys()
            and isinstance(ckpt.get("model"), dict)):
        raise UserError(f"{path} is not an ocrbench checkpoint (no 'meta' with the model's name, arguments "
                        f"and charset, or no 'model' weights); {CHECKPOINT_SOURCE}")
    try:
        model = create_model(meta["name"], Charset(meta["charset"]), **meta["kwargs"])
    except TypeError as e:  # arguments of another version of the model
        raise UserError(f"{path}: its arguments do not fit {meta['name']} ({e}); {CHECKPOINT_MISMATCH}") from None
    problem = weights_problem(model.state_dict(), ckpt["model"])
    if problem:
        raise UserError(f"{path}: its weights do not fit {meta['name']} ({problem}); {CHECKPOINT_MISMATCH}")
    model.load_state_dict(ckpt["model"])
    return model.eval()


CHECKPOINT_MISMATCH = ("it was written for another architecture or model version: retrain it, or evaluate it with "
                       "the ocrbench version that wrote it")


def weights_problem(expected: dict, weights: dict) -> str | None:
    """What keeps ``weights`` from loading into a model whose state_dict is ``expected`` (a short phrase), or None."""
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    shapes = [k for k in expected if k in weights and getattr(weights[k], "shape", None) != expected[k].shape]
    parts = [f"{len(keys)} {what}, e.g. {keys[0]}" for keys, what in
             ((missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape")) if keys]
    return "; ".join(parts) or None


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself, or the checkpoint.pt of the run folder ``path`` names."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise UserError(f"{path} is a folder without a {CHECKPOINT}: pass a checkpoint file or a run "
                            "folder of `ocrbench train`/`run`")
        return path / CHECKPOINT
    return path


def load_checkpoint(path: Path) -> dict:
    path = checkpoint_file(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); delete it to train that "
                        "model afresh (other finished results are kept)") from None


def restore(path: Path, model, optimizer, scaler, config_hash: str, rank_seed: int | None = None) -> dict:
    """Load the weights, optimizer, scaler and RNG states of the checkpoint at ``path`` (written under
    ``config_hash``: another configuration is a one-line error) and return the training state's fields."""
    ckpt = load_checkpoint(path)
    if config_hash and ckpt.get("config_hash") and ckpt["config_hash"] != config_hash:
        raise UserError(f"{path} was written under a different configuration (hash {ckpt['config_hash']}, "
                        f"now {config_hash}); remove it or use another --out to start afresh")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"])
    if ckpt.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    if distributed.world_size() > 1:
        restore_rank_rng(ckpt.get("rank_rng"), rank_seed)
    return ckpt["state"]


def restore_rank_rng(states: list[dict] | None, rank_seed: int | None) -> None:
    """This rank's dropout stream from a data-parallel checkpoint. A checkpoint of another world size (or of
    a one-process run) has none for this rank: ranks > 0 then start a fresh stream from ``rank_seed`` rather
    than copy rank 0's (the run goes on correctly, but is no longer bit-exact with an uninterrupted one)."""
    rank, world = distributed.rank(), distributed.world_size()
    if states is not None and len(states) == world:
        distributed.set_rng_state(states[rank])
    elif rank > 0 and rank_seed is not None:
        torch.manual_seed(rank_seed)
