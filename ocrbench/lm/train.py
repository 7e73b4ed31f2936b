"""Training, evaluation, storage and caching of the character LM.

The LM is trained only on ``austen-train`` (random word windows shaped like text lines) and scored on
held-out text wrapped into lines. Scores: bits per character and perplexity, over every predicted token of a
line (its characters and its end-of-line token, the analogue of the newline in a character stream).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import LMConfig, config_hash
from ..data.cache import cache_home
from ..data.integrity import file_hash
from ..datasets._build_assets import HELD_OUT_SOURCE, split_corpus
from ..errors import UserError
from ..records import atomic_write
from ..runtime import resolve_device
from .model import CharLM
from .schedule import one_cycle_factor
from .text import TRAIN_CORPUS, LineSampler, corpus_path, load_sentences, record_key, wrap_lines

HELD_OUT = (split_corpus("test"), HELD_OUT_SOURCE)  # scored after training and stored with the checkpoint
TRAIN_FIELDS = ("hidden", "layers", "embed", "dropout", "steps", "batch_size", "lr", "max_chars", "seed",
                "eval_lines")  # the LMConfig fields a cached LM depends on (not weight, bonus, beam width)
FORMAT = 1  # checkpoint layout version


@dataclass
class LMScore:
    corpus: str
    lines: int
    tokens: int  # characters + one end-of-line token per line
    nll: float  # nats per token

    @property
    def bpc(self) -> float:
        return self.nll / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)

    def as_dict(self) -> dict:
        return {"corpus": self.corpus, "lines": self.lines, "tokens": self.tokens,
                "bpc": round(self.bpc, 4), "perplexity": round(self.perplexity, 4)}


def cache_root(cache_dir: str | None = None) -> Path:
    return cache_home(cache_dir) / "lm"


def default_lm_path(cfg: LMConfig, chars: str, cache_dir: str | None = None) -> Path:
    """Where the LM trained with ``cfg``'s settings for ``chars`` is cached: the name hashes everything the
    weights depend on (settings, charset, training text)."""
    text = file_hash(corpus_path(cfg.corpus), "sha1")[:12]
    key = config_hash({f: getattr(cfg, f) for f in TRAIN_FIELDS}, chars, text, FORMAT)
    return cache_root(cache_dir) / f"charlm-{key}.pt"


def train_lm(cfg: LMConfig, chars: str, device: str = "auto", log=None) -> tuple[CharLM, dict]:
    """Train a :class:`CharLM` on the training text with AdamW and a one-cycle schedule.

    Returns the model (in eval mode, on the CPU) and a summary (steps, seconds, final training bpc).
    """
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    lm = CharLM(chars, hidden=cfg.hidden, layers=cfg.layers, embed=cfg.embed, dropout=cfg.dropout)
    lm.to(dev).train()
    sampler = LineSampler(load_sentences(cfg.corpus, chars), cfg.max_chars, cfg.seed)
    opt = torch.optim.AdamW(lm.parameters(), lr=cfg.lr, weight_decay=0.01)
    recent, t0 = [], time.perf_counter()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * one_cycle_factor(step, cfg.steps, 0.05)
        inputs, targets = lm.encode_lines(sampler.batch(cfg.batch_size))
        nll = lm.nll(inputs.to(dev), targets.to(dev)).sum() / (targets != 0).sum().to(dev)
        opt.zero_grad(set_to_none=True)
        nll.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        recent = (recent + [nll.item()])[-50:]
        if log and (step + 1) % 200 == 0:
            log(f"lm step {step + 1}/{cfg.steps}: {sum(recent) / len(recent) / math.log(2):.3f} bits/char "
                f"({time.perf_counter() - t0:.0f}s)")
    seconds = time.perf_counter() - t0
    info = {"train_steps": cfg.steps, "train_seconds": round(seconds, 2), "train_corpus": cfg.corpus,
            "train_bpc": round(sum(recent) / len(recent) / math.log(2), 4), "device": dev.type,
            "params": lm.num_params(), "config": {f: getattr(cfg, f) for f in TRAIN_FIELDS}}
    return lm.cpu().eval(), info


@torch.no_grad()
def evaluate_lm(lm: CharLM, corpus: str, max_chars: int = 48, max_lines: int | None = None,
                batch_size: int = 256, device: str = "cpu") -> LMScore:
    """Score ``corpus`` (a vendored corpus name or a text file) wrapped into lines of ``max_chars``."""
    lines = wrap_lines(load_sentences(corpus, lm.chars), max_chars)[:max_lines]
    if not lines:
        raise UserError(f"corpus {corpus!r} has no text")
    dev = resolve_device(device)
    lm.to(dev).eval()
    lines = sorted(lines, key=len)  # similar lengths per batch: little padding
    total, tokens = 0.0, 0
    for i in range(0, len(lines), batch_size):
        inputs, targets = lm.encode_lines(lines[i:i + batch_size])
        total += lm.nll(inputs.to(dev), targets.to(dev)).sum().item()
        tokens += int((targets != 0).sum())
    return LMScore(corpus, len(lines), tokens, total / tokens)


def save_lm(lm: CharLM, path: str | Path, info: dict) -> None:
    """Write atomically (temp file + rename): an interrupted save never leaves a broken checkpoint."""
    checkpoint = {"format": FORMAT, "kind": "ocrbench-charlm", "chars": lm.chars, "hparams": lm.hparams,
                  "state_dict": lm.state_dict(), "info": info}
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def load_lm(path: str | Path) -> CharLM:
    """Load an LM saved by :func:`save_lm`; its summary (training, held-out scores) is ``lm.info``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"language model checkpoint not found: {path} (train one with `ocrbench lm train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot read language model checkpoint {path}: {e}") from None
    if ckpt.get("kind") != "ocrbench-charlm":
        raise UserError(f"{path} is not an ocrbench character LM checkpoint")
    lm = CharLM(ckpt["chars"], **ckpt["hparams"])
    lm.load_state_dict(ckpt["state_dict"])
    lm.info = ckpt.get("info", {})
    lm.path = str(path)
    return lm.eval()


def train_and_save(cfg: LMConfig, chars: str, path: str | Path, device: str = "auto", log=None,
                   held_out: tuple[str, ...] = HELD_OUT) -> CharLM:
    """Train, score on the held-out corpora (all their lines, or the first ``cfg.eval_lines``), save; the
    scores travel with the checkpoint (``lm.info``)."""
    lm, info = train_lm(cfg, chars, device=device, log=log)
    info["eval"] = {c: evaluate_lm(lm, c, cfg.max_chars, cfg.eval_lines).as_dict() for c in held_out}
    save_lm(lm, path, info)
    lm.info, lm.path = info, str(path)
    return lm


def get_lm(cfg: LMConfig, chars: str, device: str = "auto", cache_dir: str | None = None, log=None,
           held_out: tuple[str, ...] | None = None) -> CharLM:
    """The LM of ``cfg``: its ``checkpoint`` if set, else the cached LM for these settings, trained (about a
    minute on a CPU) and cached on first use, then scored on ``held_out`` (default: ``cfg.held_out``, else the
    vendored held-out corpora when it trains on the vendored text, else none)."""
    if cfg.checkpoint:
        return load_lm(cfg.checkpoint)
    path = default_lm_path(cfg, chars, cache_dir)
    if path.is_file():
        return load_lm(path)
    if log:
        log(f"training the character LM once ({cfg.steps} steps), cached as {path}")
    held_out = held_out_texts(cfg) if held_out is None else held_out
    return train_and_save(cfg, chars, path, device=device, log=log, held_out=held_out)


def held_out_texts(cfg: LMConfig) -> tuple[str, ...]:
    """What an LM of ``cfg`` is scored on: ``cfg.held_out`` (a suite's validation transcriptions), else the
    vendored held-out corpora when it trains on the vendored text, else nothing."""
    return (cfg.held_out,) if cfg.held_out else HELD_OUT if cfg.corpus == TRAIN_CORPUS else ()


def summary(lm: CharLM) -> dict:
    """Fields for result records: where the LM is and its held-out scores."""
    info = getattr(lm, "info", {})
    out = {"lm_checkpoint": getattr(lm, "path", None), "lm_params": lm.num_params()}
    for corpus, score in info.get("eval", {}).items():
        key = record_key(corpus)
        out[f"lm_bpc_{key}"] = score["bpc"]
        out[f"lm_ppl_{key}"] = score["perplexity"]
    return out



