"""mocli's held-out motion: the people and motions that training leaves out so that generalisation can be measured.

The generalisation benchmark (``mocli eval generalisation``) scores only sequences that a lifter trained with
``data.holdout = true`` never sees:

- HDM05 actors ``mm`` and ``tr`` (the subset's own test actors): two people of other bodies, filmed on another rig;
- HDM05 motion classes ``lieDownFloor`` and ``throwBasketball``, for every actor: a whole-body motion unlike any
  training motion (the body goes to the floor) and an arm motion;
- ReActIdle person 012 (both recordings; the validation split of ``mocli prepare dataset bvh``, so earlier lifters
  did not see it either).

Sequences are matched by their HDF5 ``source``, ``subject``, ``action`` and name. The rules are data, fixed so that
figures stay comparable between lifters; a change to them is a new benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HeldOut", "HELD_OUT", "held_out_reason", "is_held_out"]


@dataclass(frozen=True)
class HeldOut:
    """Held-out sequences of one source: by subject, by action, or by name prefix (any one suffices)."""

    subjects: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    name_prefixes: tuple[str, ...] = ()


HELD_OUT: dict[str, HeldOut] = {
    "hdm05": HeldOut(subjects=frozenset({"mm", "tr"}), actions=frozenset({"lieDownFloor", "throwBasketball"})),
    "reactidle": HeldOut(name_prefixes=("012_",)),
}


def held_out_reason(source: str, name: str, subject: str = "", action: str = "") -> str | None:
    """Why a sequence is held out ('person' or 'motion'), or None if training may use it."""
    rule = HELD_OUT.get(source)
    if rule is None:
        return None
    if action in rule.actions:
        return "motion"
    if subject in rule.subjects or name.startswith(rule.name_prefixes):
        return "person"
    return None


def is_held_out(source: str, name: str, subject: str = "", action: str = "") -> bool:
    """True for a sequence that the generalisation benchmark scores and training with holdout leaves out."""
    return held_out_reason(source, name, subject, action) is not None
