"""A seeded sample path of a contact-centre workload (pure, no I/O).

Poisson arrivals at ``calls_per_hour`` over ``duration_s``; per call a handle (talk) time,
a ring time (how long the agent takes to pick up), a patience (how long the caller waits
before hanging up; infinite when not configured) and a VIP flag drawn with ``vip_share``.

Each attribute has its own random stream derived from the seed, so the sample path is the
same for a seed on every machine and Python run, and changing one distribution (say,
adding patience) leaves the arrivals, handle and ring times of the other runs untouched
(common random numbers: two scenarios differ only where their settings differ). The same
``Workload`` is replayed by the live simulation and by the ideal dispatcher.

Distributions are small frozen dataclasses, parsed from strings such as ``"exp:180"``,
``"lognormal:180,60"`` (mean, standard deviation), ``"fixed:5"`` and ``"uniform:2,8"``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Call",
    "Distribution",
    "Exponential",
    "Fixed",
    "Lognormal",
    "Uniform",
    "Workload",
    "WorkloadSpec",
    "generate",
    "parse_distribution",
    "parse_patience",
]


def _check(name: str, value: float, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with the given mean (seconds)."""

    mean: float

    def __post_init__(self) -> None:
        _check("exp mean", self.mean, positive=True)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def __str__(self) -> str:
        return f"exp:{_fmt(self.mean)}"


@dataclass(frozen=True, slots=True)
class Lognormal:
    """Lognormal with the given mean and standard deviation (seconds), not log-scale ones."""

    mean: float
    sd: float

    def __post_init__(self) -> None:
        _check("lognormal mean", self.mean, positive=True)
        _check("lognormal sd", self.sd)

    def sample(self, rng: random.Random) -> float:
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2.0
        return rng.lognormvariate(mu, math.sqrt(sigma2))

    def __str__(self) -> str:
        return f"lognormal:{_fmt(self.mean)},{_fmt(self.sd)}"


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``value`` seconds."""

    value: float

    def __post_init__(self) -> None:
        _check("fixed value", self.value)

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: random.Random) -> float:
        rng.random()  # keep the stream in step with the other distributions
        return self.value

    def __str__(self) -> str:
        return f"fixed:{_fmt(self.value)}"


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low, high] seconds."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check("uniform low", self.low)
        _check("uniform high", self.high)
        if self.high < self.low:
            raise ValueError(f"uniform needs low <= high, got {self.low!r},{self.high!r}")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        return f"uniform:{_fmt(self.low)},{_fmt(self.high)}"


Distribution = Exponential | Lognormal | Fixed | Uniform

_ARITY: dict[str, tuple[type[Distribution], int]] = {
    "exp": (Exponential, 1),
    "exponential": (Exponential, 1),
    "lognormal": (Lognormal, 2),
    "fixed": (Fixed, 1),
    "uniform": (Uniform, 2),
}


def parse_distribution(text: str) -> Distribution:
    """Parse ``"exp:180"``, ``"lognormal:180,60"``, ``"fixed:5"``, ``"uniform:2,8"``.

    A bare number means ``fixed``. ``str(parse_distribution(s))`` gives a canonical spec back.
    """
    spec = text.strip().lower()
    name, sep, args = spec.partition(":")
    if not sep:
        try:
            return Fixed(float(name))
        except ValueError:
            pass
        raise ValueError(
            f"bad distribution {text!r}: expected kind:args, e.g. exp:180, lognormal:180,60, "
            f"fixed:5, uniform:2,8"
        )
    if name not in _ARITY:
        raise ValueError(
            f"bad distribution {text!r}: unknown kind {name!r} (exp, lognormal, fixed, uniform)"
        )
    cls, arity = _ARITY[name]
    parts = [p.strip() for p in args.split(",")]
    if len(parts) != arity:
        raise ValueError(f"bad distribution {text!r}: {name} takes {arity} number(s)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"bad distribution {text!r}: not a number in {args!r}") from None
    try:
        return cls(*values)
    except ValueError as exc:
        raise ValueError(f"bad distribution {text!r}: {exc}") from None


def parse_patience(text: str | None) -> Distribution | None:
    """Like :func:`parse_distribution`, but ``None``, ``""``, ``"inf"`` or ``"none"`` mean
    callers never hang up."""
    if text is None or text.strip().lower() in {"", "inf", "infinite", "none"}:
        return None
    return parse_distribution(text)


@dataclass(frozen=True, slots=True)
class Call:
    """One call of the sample path. Times in seconds from the start of the run."""

    call_id: int
    arrival_s: float
    handle_s: float  # talk time once the agent picks up (wrap-up is the agent's, added later)
    ring_s: float  # from pairing to the agent picking up
    patience_s: float  # the caller hangs up after waiting this long; math.inf = never
    vip: bool
    priority: int  # higher is served first


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """What to draw. ``vip_priority`` is the priority of VIP calls (others get 0)."""

    calls_per_hour: float
    duration_s: float
    handle: Distribution = Exponential(180.0)
    ring: Distribution = Fixed(0.0)
    patience: Distribution | None = None
    vip_share: float = 0.0
    vip_priority: int = 1

    def __post_init__(self) -> None:
        _check("calls_per_hour", self.calls_per_hour)
        _check("duration_s", self.duration_s)
        _check("vip_share", self.vip_share)
        if self.vip_share > 1:
            raise ValueError(f"vip_share must be in [0, 1], got {self.vip_share!r}")


@dataclass(frozen=True, slots=True)
class Workload:
    """A drawn sample path: the spec, the seed and the calls in arrival order."""

    spec: WorkloadSpec
    seed: int
    calls: tuple[Call, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (distributions as their spec strings; infinite patience as None)."""
        s = self.spec
        return {
            "seed": self.seed,
            "spec": {
                "calls_per_hour": s.calls_per_hour,
                "duration_s": s.duration_s,
                "handle": str(s.handle),
                "ring": str(s.ring),
                "patience": None if s.patience is None else str(s.patience),
                "vip_share": s.vip_share,
                "vip_priority": s.vip_priority,
            },
            "calls": [
                [
                    c.call_id,
                    c.arrival_s,
                    c.handle_s,
                    c.ring_s,
                    None if math.isinf(c.patience_s) else c.patience_s,
                    c.vip,
                    c.priority,
                ]
                for c in self.calls
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workload:
        """Inverse of :meth:`to_dict`."""
        s = data["spec"]
        spec = WorkloadSpec(
            calls_per_hour=float(s["calls_per_hour"]),
            duration_s=float(s["duration_s"]),
            handle=parse_distribution(s["handle"]),
            ring=parse_distribution(s["ring"]),
            patience=parse_patience(s["patience"]),
            vip_share=float(s["vip_share"]),
            vip_priority=int(s["vip_priority"]),
        )
        calls = tuple(
            Call(
                int(i),
                float(a),
                float(h),
                float(r),
                math.inf if p is None else float(p),
                bool(v),
                int(pr),
            )
            for i, a, h, r, p, v, pr in data["calls"]
        )
        return cls(spec=spec, seed=int(data["seed"]), calls=calls)


def _stream(seed: int, name: str) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed (version 2): stable across runs.
    return random.Random(f"hotline-workload:{seed}:{name}")


def generate(spec: WorkloadSpec, seed: int) -> Workload:
    """Draw the sample path for ``spec`` and ``seed`` (deterministic)."""
    arrivals = _stream(seed, "arrivals")
    handle = _stream(seed, "handle")
    ring = _stream(seed, "ring")
    patience = _stream(seed, "patience")
    vip = _stream(seed, "vip")
    rate = spec.calls_per_hour / 3600.0
    calls: list[Call] = []
    if rate > 0:
        t = arrivals.expovariate(rate)
        while t < spec.duration_s:
            is_vip = vip.random() < spec.vip_share
            patient = math.inf if spec.patience is None else spec.patience.sample(patience)
            calls.append(
                Call(
                    call_id=len(calls),
                    arrival_s=t,
                    handle_s=spec.handle.sample(handle),
                    ring_s=spec.ring.sample(ring),
                    patience_s=patient,
                    vip=is_vip,
                    priority=spec.vip_priority if is_vip else 0,
                )
            )
            t += arrivals.expovariate(rate)
    return Workload(spec=spec, seed=seed, calls=tuple(calls))
